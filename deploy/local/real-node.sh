# The optional real node of the local environment (started by up as root; SPARKVC_REAL_NODE):
# containerd + runc + CNI bridge (Debian's packages), and kubelet, kube-proxy
# and CoreDNS (from the pinned Go modules, in sparkvc-localkube), beside the
# kwok nodes. Sourced by deploy/local/up (real_node_up) and deploy/local/down
# (real_node_down). See the README's "Real node" section for why each
# setting is what it is.
# shellcheck shell=bash

# Host-only addresses. The node's IP lives on an interface of its own that
# routes nowhere; pods live on a bridge with no masquerading and a FORWARD rule that
# drops anything leaving the bridge, so no pod can reach any outside network.
# 10.245.0.0/24 is not the kwok pods' 10.244.0.0/16, so a real pod's IP never
# equals a simulated one.
NODE_IP="${SPARKVC_REAL_NODE_IP:-10.254.0.1}"
NODE_IF=sparkvc0
POD_BRIDGE=sparkvc-br0
POD_SUBNET=10.245.0.0/24
POD_GATEWAY=10.245.0.1
SERVICE_CIDR=10.96.0.0/16
DNS_SERVICE_IP=10.96.0.10
CGROUP_ROOT=sparkvc
# One real node per machine (interfaces, bridge, cgroups and
# /run/containerd are machine-wide); this file names the run directory
# that owns it.
REAL_NODE_OWNER=/run/sparkvc-real-node.owner

RN_DIR="$RUN_DIR/real-node"
CTR_SOCK="$RN_DIR/containerd/containerd.sock"
FWD_CHAIN=SPARKVC-NODE-FWD
IN_CHAIN=SPARKVC-NODE-IN
# nftables: nft, to record and later remove the nf_tables tables that
# iptables-nft creates (a fresh machine has the iptables package only).
REAL_NODE_PACKAGES=(containerd runc containernetworking-plugins iptables nftables conntrack mmdebstrap socat)
# Paths outside the run directory that containerd, the CNI plugins or the
# kubelet create even when configured to keep their state elsewhere;
# down removes those that did not exist before up.
HOST_PATHS=(/run/containerd /var/lib/cni /var/log/containers /var/log/pods /var/lib/kubelet /opt/containerd)
# Host sysctls that up (ip_forward, by the CNI bridge) or the kubelet
# (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops: it sets them
# unless protectKernelDefaults) change; down restores the saved values.
HOST_SYSCTLS=(net/ipv4/ip_forward vm/overcommit_memory kernel/panic kernel/panic_on_oops
  net/bridge/bridge-nf-call-iptables)

ctr_() { ctr --address "$CTR_SOCK" --namespace k8s.io "$@"; }

# write_file PATH: write stdin to PATH only if the content differs, and
# atomically. kube-proxy exits when its config file changes (it even saw a
# rewrite with equal content, mid-write, as a change), and a repeated up
# must not restart anything.
write_file() {
  cat >"$1.tmp"
  if cmp -s "$1.tmp" "$1"; then rm -f "$1.tmp"; else mv -f "$1.tmp" "$1"; fi
}

real_node_packages() {
  local missing=() p
  for p in "${REAL_NODE_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
  done
  (( ${#missing[@]} == 0 )) && return 0
  log "installing ${missing[*]} (apt-get)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Save what up changes on the host, once per real-node lifetime.
save_host_state() {
  [[ -f $RN_DIR/host-state ]] && return 0
  local s p
  {
    for s in "${HOST_SYSCTLS[@]}"; do
      [[ -f /proc/sys/$s ]] && echo "sysctl $s $(cat "/proc/sys/$s")"
    done
    for p in "${HOST_PATHS[@]}"; do
      [[ -e $p ]] && echo "existed $p"
    done
    # nf_tables tables (iptables-nft creates ip6 filter/nat/mangle when the
    # kubelet and kube-proxy first use ip6tables).
    { nft list tables 2>/dev/null || true; } | sed 's/^table /nft /'
  } >"$RN_DIR/host-state.tmp"
  mv "$RN_DIR/host-state.tmp" "$RN_DIR/host-state"
}

# cgroup_mounts: every cgroup v1 hierarchy and the cgroup2 mount (the
# machine is hybrid: memory, cpu, ... are v1; /sys/fs/cgroup/unified is v2).
cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/mounts; }

setup_host() {
  local m
  # The node's address, on an interface of its own that leads nowhere. This
  # kernel has no dummy driver ("Unknown device type"); a bridge without
  # ports does the same job (its addresses are local, it forwards nothing).
  if ! ip link show "$NODE_IF" >/dev/null 2>&1; then
    ip link add "$NODE_IF" type dummy 2>/dev/null || ip link add "$NODE_IF" type bridge
  fi
  ip addr replace "$NODE_IP/32" dev "$NODE_IF"
  ip link set "$NODE_IF" up

  # The kubelet's cgroupRoot must exist in every hierarchy beforehand. A new
  # v1 cpuset cgroup starts with no CPUs and no memory nodes: copy them.
  for m in $(cgroup_mounts); do
    mkdir -p "$m/$CGROUP_ROOT"
  done
  if [[ -f /sys/fs/cgroup/cpuset/cpuset.cpus ]]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$CGROUP_ROOT/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$CGROUP_ROOT/cpuset.mems"
  fi

  # Pod networking: one bridge, host-local IPAM with its state in the run
  # directory. ipMasq false: nothing from a pod is ever NATed to the host's
  # address, so it could not leave even if the FORWARD rule were missing.
  # isGateway gives the bridge 10.245.0.1, the pods' route to Service IPs
  # and to the node IP (API server, DNS).
  mkdir -p "$RN_DIR/cni/net.d" "$RN_DIR/cni/ipam"
  write_file "$RN_DIR/cni/net.d/10-sparkvc.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "sparkvc",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$RN_DIR/cni/ipam"
      }
    }
  ]
}
EOF

  # Isolation (iptables, nf_tables backend). In FORWARD, a pod's packet may
  # only go back onto the pod bridge (pod to pod, also after a Service's
  # DNAT), and nothing from another interface is forwarded to pods (the
  # host itself reaches pods directly, not through FORWARD). In INPUT, pods may only reach the node IP's API server relay and
  # DNS ports (and replies); nothing else that listens on the host.
  iptables -N "$FWD_CHAIN" 2>/dev/null || iptables -F "$FWD_CHAIN"
  iptables -A "$FWD_CHAIN" -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j RETURN
  iptables -A "$FWD_CHAIN" -i "$POD_BRIDGE" -j DROP
  iptables -A "$FWD_CHAIN" -o "$POD_BRIDGE" -j DROP
  iptables -N "$IN_CHAIN" 2>/dev/null || iptables -F "$IN_CHAIN"
  iptables -A "$IN_CHAIN" -i "$POD_BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
  iptables -A "$IN_CHAIN" -i "$POD_BRIDGE" -d "$NODE_IP" -p tcp --dport "$APISERVER_PORT" -j RETURN
  iptables -A "$IN_CHAIN" -i "$POD_BRIDGE" -d "$NODE_IP" -p udp --dport "$DNS_PORT" -j RETURN
  iptables -A "$IN_CHAIN" -i "$POD_BRIDGE" -d "$NODE_IP" -p tcp --dport "$DNS_PORT" -j RETURN
  iptables -A "$IN_CHAIN" -i "$POD_BRIDGE" -j DROP
  first_rule FORWARD "$FWD_CHAIN"
  first_rule INPUT "$IN_CHAIN"

  # The pod's resolv.conf comes from clusterDNS; the kubelet merges in the
  # host's resolv.conf for the Default DNS policy. An empty file keeps the
  # host's resolver (and search domains) away from pods.
  : >"$RN_DIR/resolv.conf"
}

# first_rule CHAIN TARGET: make "-j TARGET" the first rule of CHAIN (kube-proxy
# prepends its own jumps; ours must still come first).
first_rule() {
  local chain=$1 target=$2
  if [[ "$(iptables -S "$chain" 2>/dev/null | sed -n 2p)" != "-A $chain -j $target" ]]; then
    while iptables -D "$chain" -j "$target" 2>/dev/null; do :; done
    iptables -I "$chain" 1 -j "$target"
  fi
}

write_containerd_config() {
  mkdir -p "$RN_DIR/containerd"
  # containerd 1.6 (config version 2). Everything under the run directory,
  # except what 1.6 hard-codes: shim sockets in /run/containerd/s (down
  # removes them). The settings that matter here:
  # - restrict_oom_score_adj: the machine lacks CAP_SYS_RESOURCE, so nothing
  #   can lower an oom_score_adj; without this, runc fails every sandbox
  #   ("can't get final child's PID from pipe: EOF", from nsexec's "failed
  #   to update /proc/self/oom_score_adj: Permission denied").
  # - SystemdCgroup false: there is no systemd (cgroupfs, as the kubelet).
  # - netns_mounts_under_state_dir: pod network namespaces under the run
  #   directory instead of /var/run/netns.
  # - the stream server (exec, attach, port-forward) on 127.0.0.1 only.
  # - no registry configuration: images are imported, never pulled.
  write_file "$RN_DIR/containerd.toml" <<EOF
version = 2
root = "$RN_DIR/containerd/root"
state = "$RN_DIR/containerd/state"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$RN_DIR/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_REF"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "$RN_DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RN_DIR/cni/net.d"
    max_conf_num = 1
EOF
}

write_kubelet_config() {
  # KubeletConfiguration for this machine:
  # - failCgroupV1 false: the kernel's memory/cpu controllers are cgroup v1
  #   (hybrid mount; v2 has only hugetlb), which kubelet 1.36 refuses by
  #   default but still supports. containerd 1.6 has no RuntimeConfig RPC, so
  #   the kubelet takes cgroupDriver from here: cgroupfs (no systemd).
  # - cgroupRoot /sparkvc: all pod cgroups under one root that down removes.
  # - oomScoreAdj 0: -999 cannot be set without CAP_SYS_RESOURCE.
  # - authentication by client certificate (our CA) or token (webhook),
  #   authorization through the API server: logs/exec need
  #   sparkvc-apiserver-kubelet-client's system:kubelet-api-admin binding.
  # - resolvConf: an empty file, so pods see only the cluster DNS.
  # - imageGC at 100%: imported images cannot be pulled again.
  # - the registration taint keeps every pod without the toleration (all
  #   the kwok-targeted tests and benchmarks) off this node.
  # - nodeStatusReportFrequency 10s (default 5m): after an API server outage
  #   (tests/e2e/tests/outage.rs) the node controller marks the node Unknown
  #   and taints it unreachable; the kubelet, which compares against its own
  #   last report, saw no change and re-posted Ready only after 5 minutes,
  #   so every pod for this node waited that long. One node reporting every
  #   10 s costs the API server nothing.
  write_file "$RN_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
containerRuntimeEndpoint: unix://$CTR_SOCK
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $RUN_DIR/pki/kubelet-server.crt
tlsPrivateKeyFile: $RUN_DIR/pki/kubelet-server.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $RUN_DIR/pki/ca.crt
authorization:
  mode: Webhook
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
resolvConf: $RN_DIR/resolv.conf
failSwapOn: true
oomScoreAdj: 0
nodeStatusUpdateFrequency: 10s
nodeStatusReportFrequency: 10s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
podLogsDir: $RN_DIR/pod-logs
volumePluginDir: $RN_DIR/kubelet-plugins
registerWithTaints:
- key: sparkvc.io/real-node
  value: "true"
  effect: NoSchedule
maxPods: 30
serializeImagePulls: false
EOF
}

write_kube_proxy_config() {
  # iptables mode (the kernel has no IP_VS). Addresses: NodePorts only on the
  # node IP; no localhost NodePorts (needs route_localnet); conntrack sysctls
  # left as they are (maxPerCore 0, timeouts 0s); oomScoreAdj 0 (see above).
  write_file "$RN_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $RUN_DIR/kube-proxy.kubeconfig
mode: iptables
hostnameOverride: $REAL_NODE_NAME
clusterCIDR: $POD_SUBNET
nodePortAddresses: [$NODE_IP/32]
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
oomScoreAdj: 0
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
EOF
}

write_corefile() {
  # Cluster names only: no forward plugin, so pods resolve nothing outside
  # the cluster. Listens on the node IP (the kube-dns Service's endpoint).
  write_file "$RN_DIR/Corefile" <<EOF
cluster.local:$DNS_PORT in-addr.arpa:$DNS_PORT {
  bind $NODE_IP
  ready 127.0.0.1:$DNS_READY_PORT
  health 127.0.0.1:$DNS_HEALTH_PORT
  errors
  log . {
    class denial error
  }
  cache 5
  kubernetes cluster.local in-addr.arpa {
    kubeconfig $RUN_DIR/coredns.kubeconfig $CONTEXT
    pods disabled
    ttl 5
  }
}
EOF
}

# The cluster objects the real node needs, server-side applied by node/kube.py.
real_node_objects() {
  cat <<EOF
[
 {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
  "metadata": {"name": "sparkvc:coredns"},
  "rules": [
   {"apiGroups": [""], "resources": ["services", "namespaces"], "verbs": ["list", "watch"]},
   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]},
 {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
  "metadata": {"name": "sparkvc:coredns"},
  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sparkvc:coredns"},
  "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "sparkvc-coredns"}]},
 {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
  "metadata": {"name": "sparkvc:apiserver-kubelet-client"},
  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:kubelet-api-admin"},
  "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "sparkvc-apiserver-kubelet-client"}]},
 {"apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
  "spec": {"clusterIP": "$DNS_SERVICE_IP", "ports": [
   {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": $DNS_PORT},
   {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": $DNS_PORT}]}},
 {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "kube-dns-$REAL_NODE_NAME", "namespace": "kube-system",
   "labels": {"kubernetes.io/service-name": "kube-dns", "endpointslice.kubernetes.io/managed-by": "sparkvc-local-up"}},
  "addressType": "IPv4",
  "endpoints": [{"addresses": ["$NODE_IP"], "conditions": {"ready": true}, "nodeName": "$REAL_NODE_NAME"}],
  "ports": [{"name": "dns", "protocol": "UDP", "port": $DNS_PORT}, {"name": "dns-tcp", "protocol": "TCP", "port": $DNS_PORT}]},
 {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "kubernetes-$REAL_NODE_NAME", "namespace": "default",
   "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "sparkvc-local-up"}},
  "addressType": "IPv4",
  "endpoints": [{"addresses": ["$NODE_IP"], "conditions": {"ready": true}}],
  "ports": [{"name": "https", "protocol": "TCP", "port": $APISERVER_PORT}]}
]
EOF
}

# real_node_preflight: fail before anything starts if the real node cannot.
# real_node_unavailable: prints why this machine cannot have the real node
# now and succeeds, or fails (prints nothing) if it can.
real_node_unavailable() {
  local owner
  if [[ $(id -u) != 0 ]]; then
    echo "it needs root: network set-up, cgroups, containerd"
    return 0
  fi
  owner="$(cat "$REAL_NODE_OWNER" 2>/dev/null || true)"
  if [[ -n $owner && $owner != "$RUN_DIR" && -f $owner/real-node/host-state ]]; then
    echo "a real node from $owner is running on this machine; stop it with its down first (only one fits)"
    return 0
  fi
  return 1
}

real_node_preflight() {
  local why
  if why="$(real_node_unavailable)"; then
    die "cannot start the real node: $why (SPARKVC_REAL_NODE=0 starts the cluster without it)"
  fi
}

# real_node_up BIN: start (or check) the real node. Needs root.
real_node_up() {
  local bin=$1 t0 ref archive
  t0=$(date +%s)
  real_node_preflight
  real_node_packages
  mkdir -p "$RN_DIR"
  echo "$RUN_DIR" >"$REAL_NODE_OWNER"
  save_host_state

  "$bin" pki --dir "$RUN_DIR" --server "https://127.0.0.1:$APISERVER_PORT" --context "$CONTEXT" \
    --node "$REAL_NODE_NAME" --node-ip "$NODE_IP"
  setup_host

  # Images (cached by input hash; imported only if containerd lacks them).
  local images
  # The Spark image (~1 GB unpacked, minutes to build cold) only when wanted.
  local wanted=(pause probe)
  [[ ${SPARKVC_REAL_NODE_SPARK:-1} == 1 ]] && wanted+=(spark)
  images="$(SPARKVC_CACHE="$CACHE_DIR" "$LOCAL_DIR/node/images" "${wanted[@]}")" || die "building the node images failed"
  PAUSE_REF="$(awk '$1 ~ /pause/ {print $1}' <<<"$images")"
  PROBE_REF="$(awk '$1 ~ /probe/ {print $1}' <<<"$images")"
  SPARK_REF="$(awk '$1 ~ /\/spark:/ {print $1}' <<<"$images")"
  printf 'PAUSE_REF=%s\nPROBE_REF=%s\nSPARK_REF=%s\n' "$PAUSE_REF" "$PROBE_REF" "$SPARK_REF" >"$RN_DIR/images.env"
  log "node images ready ($(( $(date +%s) - t0 ))s)"

  write_containerd_config
  start containerd "" containerd --config "$RN_DIR/containerd.toml"
  wait_for containerd 60 ctr --address "$CTR_SOCK" version
  # Import unless containerd holds exactly this build: the same reference
  # with the archive's manifest digest (the Spark image keeps its tag across
  # rebuilds, the others carry their input hash in the tag).
  local want have
  while read -r ref archive; do
    want="$(tar -xOf "$archive" index.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')"
    have="$(ctr_ images ls | awk -v r="$ref" '$1 == r {print $3}')"
    if [[ $have != "$want" ]]; then
      ctr_ images import "$archive" >/dev/null || die "importing $archive into containerd failed"
      log "imported $ref ($want)"
    fi
  done <<<"$images"
  # Older builds of our images (containerd's root survives down): remove
  # them, the kubelet's image GC never would (threshold 100%).
  while read -r ref; do
    if ! awk '{print $1}' <<<"$images" | grep -qxF "$ref"; then
      ctr_ images rm "$ref" >/dev/null && log "removed old image $ref"
    fi
  done < <(ctr_ images ls -q | grep '^localhost/sparkvc/' || true)

  python3 "$LOCAL_DIR/node/kube.py" --run-dir "$RUN_DIR" --server "https://127.0.0.1:$APISERVER_PORT" apply \
    < <(real_node_objects) 2>>"$LOG_DIR/real-node-objects.log" ||
    die "creating the real node's cluster objects failed (log: $LOG_DIR/real-node-objects.log)"

  write_kubelet_config
  start kubelet "$KUBELET_HEALTHZ_PORT" "$bin" kubelet \
    --config="$RN_DIR/kubelet.yaml" \
    --kubeconfig="$RUN_DIR/kubelet.kubeconfig" \
    --root-dir="$RN_DIR/kubelet" \
    --hostname-override="$REAL_NODE_NAME" \
    --node-ip="$NODE_IP" \
    --node-labels="sparkvc.io/node=real"

  write_kube_proxy_config
  start kube-proxy "$KUBE_PROXY_HEALTHZ_PORT" "$bin" kube-proxy --config="$RN_DIR/kube-proxy.yaml"

  write_corefile
  start coredns "$DNS_READY_PORT" "$bin" coredns -conf "$RN_DIR/Corefile"

  # Pods reach the API server as https://kubernetes.default.svc:443. The API
  # server listens on 127.0.0.1 only, which no pod can reach and which an
  # EndpointSlice cannot name. Option A of the recon: a TCP relay (socat) on
  # the node IP to 127.0.0.1, and an EndpointSlice for the kubernetes Service
  # pointing at it. Chosen over binding the API server to 0.0.0.0 and
  # advertising the node IP (option B) because the control plane then stays
  # exactly as it is without the real node: loopback only, same flags, and
  # nothing for the kwok tests changes. The relay is plain TCP, so TLS and
  # client identity are still end to end (the serving certificate has the
  # kubernetes.default.svc names and 10.96.0.1).
  start apiserver-proxy "" socat \
    "TCP-LISTEN:$APISERVER_PORT,bind=$NODE_IP,fork,reuseaddr" "TCP:127.0.0.1:$APISERVER_PORT"

  wait_for kubelet 120 curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz"
  wait_for kubelet 120 "$bin" check node --kubeconfig "$KUBECONFIG_ADMIN" --name "$REAL_NODE_NAME"
  wait_for kube-proxy 60 curl -fsS -o /dev/null "http://127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT/healthz"
  wait_for coredns 60 curl -fsS -o /dev/null "http://127.0.0.1:$DNS_READY_PORT/ready"
  wait_for coredns 30 python3 "$LOCAL_DIR/node/kube.py" --run-dir "$RUN_DIR" --server "https://127.0.0.1:$APISERVER_PORT" \
    dns --server "$NODE_IP" --port "$DNS_PORT" --name kubernetes.default.svc.cluster.local --want 10.96.0.1
  # kube-proxy has prepended its own jumps by now.
  first_rule FORWARD "$FWD_CHAIN"
  first_rule INPUT "$IN_CHAIN"
  log "real node $REAL_NODE_NAME Ready, CoreDNS answering ($(( $(date +%s) - t0 ))s)"

  if [[ ${SPARKVC_REAL_NODE_PROBE:-1} == 1 ]]; then
    python3 "$LOCAL_DIR/node/kube.py" --run-dir "$RUN_DIR" --server "https://127.0.0.1:$APISERVER_PORT" \
      probe --image "$PROBE_REF" --node-ip "$NODE_IP" >"$LOG_DIR/real-node-probe.log" 2>&1 || {
      cat "$LOG_DIR/real-node-probe.log" >&2
      die "the real node's probe pod failed (DNS, kubernetes.default.svc or isolation); log: $LOG_DIR/real-node-probe.log"
    }
    log "probe pod on $REAL_NODE_NAME: headless Service DNS, https://kubernetes.default.svc:443 and isolation OK ($(( $(date +%s) - t0 ))s)"
  else
    log "probe pod skipped (a repair of a running real node, or SPARKVC_REAL_NODE_PROBE=0)"
  fi
}

# ipt_remove_chain CMD TABLE CHAIN: delete every rule that jumps to CHAIN,
# then the chain itself.
ipt_remove_chain() {
  local cmd=$1 table=$2 chain=$3 rule
  $cmd -t "$table" -S "$chain" >/dev/null 2>&1 || return 0
  while read -r rule; do
    # shellcheck disable=SC2086
    $cmd -t "$table" ${rule/-A /-D } 2>/dev/null || true
  done < <($cmd -t "$table" -S 2>/dev/null | grep -E -- "-j $chain( |\$)" || true)
  $cmd -t "$table" -F "$chain" 2>/dev/null || true
  $cmd -t "$table" -X "$chain" 2>/dev/null || true
}

# kill_pids SIGNAL PID...: signal the processes that are still there.
kill_pids() {
  local sig=$1 p
  shift
  for p in "$@"; do kill "-$sig" "$p" 2>/dev/null || true; done
}

# Processes that our containerd started and that outlive it: shims (they
# carry our socket in -address) and anything left in our cgroups.
leftover_pids() {
  local p cmd m
  for p in /proc/[0-9]*; do
    cmd="$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" || continue
    if [[ $cmd == *containerd-shim* && $cmd == *"-address $CTR_SOCK "* ]]; then
      echo "${p#/proc/}"
    fi
  done
  for m in $(cgroup_mounts); do
    [[ -d $m/$CGROUP_ROOT ]] || continue
    find "$m/$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -u
}

# real_node_down GRACE: stop the real node and undo everything up did on the
# host. Safe to run when no real node was started (does nothing).
real_node_down() {
  local grace=$1 name i pids m line what val owner bin="$RUN_DIR/sparkvc-localkube"
  if [[ ! -f $RN_DIR/host-state ]]; then
    for name in "${REAL_COMPONENTS[@]}"; do alive "$name" && stop "$name" "$grace"; done
    return 0
  fi
  [[ $(id -u) == 0 ]] || die "stopping the real node needs root"
  for (( i=${#REAL_COMPONENTS[@]}-1; i>=0; i-- )); do
    name=${REAL_COMPONENTS[$i]}
    [[ $name == containerd ]] && continue
    stop "$name" "$grace"
  done
  # Remove the pods through the CRI as the kubelet would: containers stop,
  # CNI DEL releases the IPs and veths, the rootfs and netns are unmounted.
  if alive containerd; then
    "$bin" cri rm-pods --endpoint "unix://$CTR_SOCK" --timeout 60s >&2 ||
      log "removing pods through the CRI failed; cleaning up by hand"
  fi
  stop containerd "$grace"
  # Whatever outlived containerd (by PID, only shims of our socket and
  # processes in our cgroups).
  mapfile -t pids < <(leftover_pids)
  if (( ${#pids[@]} > 0 )); then
    log "stopping ${#pids[@]} leftover container processes: ${pids[*]}"
    kill_pids TERM "${pids[@]}"
    sleep 2
    mapfile -t pids < <(leftover_pids)
    kill_pids KILL "${pids[@]}"
    sleep 0.5
  fi

  # Service rules: kube-proxy's own clean-up (iptables and nftables), then
  # the chains the kubelet creates, then ours.
  if [[ -x $bin ]]; then
    "$bin" kube-proxy --cleanup >>"$LOG_DIR/kube-proxy.log" 2>&1 || true
  fi
  for cmd in iptables ip6tables; do
    for chain in KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT KUBE-FIREWALL KUBE-MARK-DROP KUBE-MARK-MASQ KUBE-POSTROUTING; do
      for table in filter nat mangle; do ipt_remove_chain "$cmd" "$table" "$chain"; done
    done
  done
  ipt_remove_chain iptables filter "$FWD_CHAIN"
  ipt_remove_chain iptables filter "$IN_CHAIN"

  # Mounts under the run directory (rootfs overlays, netns, secrets and
  # service-account tmpfs volumes) and containerd's hard-coded paths,
  # deepest first.
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done < <(awk '{print $5}' /proc/self/mountinfo | grep -E "^($RN_DIR|/run/containerd)/" | awk '{print length, $0}' |
    sort -rn | cut -d' ' -f2-)

  # cgroups, deepest first (empty now).
  for m in $(cgroup_mounts); do
    [[ -d $m/$CGROUP_ROOT ]] && find "$m/$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null
    [[ -d $m/$CGROUP_ROOT ]] && log "could not remove $m/$CGROUP_ROOT"
  done

  ip link del "$POD_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_IF" 2>/dev/null || true

  # Host paths and sysctls as they were before up.
  while read -r what val line; do
    case $what in
      sysctl) echo "$line" >"/proc/sys/$val" 2>/dev/null || log "could not restore $val=$line" ;;
    esac
  done <"$RN_DIR/host-state"
  while read -r fam table; do
    if ! grep -qxF "nft $fam $table" "$RN_DIR/host-state"; then
      nft delete table "$fam" "$table" 2>/dev/null || log "could not delete nft table $fam $table"
    fi
  done < <(nft list tables 2>/dev/null | awk '$1 == "table" {print $2, $3}')
  for m in "${HOST_PATHS[@]}"; do
    if [[ -e $m ]] && ! grep -qxF "existed $m" "$RN_DIR/host-state"; then
      rm -rf "$m"
    fi
  done
  rm -rf "$RN_DIR/containerd/state" "$RN_DIR/kubelet" "$RN_DIR/cni/ipam" "$RN_DIR/pod-logs"
  rm -f "$RN_DIR/host-state"
  owner="$(cat "$REAL_NODE_OWNER" 2>/dev/null || true)"
  [[ $owner == "$RUN_DIR" ]] && rm -f "$REAL_NODE_OWNER"
  log "real node stopped and host set-up removed"
}
