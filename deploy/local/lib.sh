# Shared settings and helpers for deploy/local/up and deploy/local/down.
# shellcheck shell=bash

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${SPARKVC_RUN_DIR:-$LOCAL_DIR/.run}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
PID_DIR="$RUN_DIR/pids"
LOG_DIR="$RUN_DIR/logs"
CACHE_DIR="${SPARKVC_CACHE:-$HOME/.cache/sparkvc}"
VENV="${SPARKVC_VENV:-$LOCAL_DIR/.venv}"
CONTEXT="${SPARKVC_KUBE_CONTEXT:-sparkvc-local}"
KUBECONFIG_ADMIN="$RUN_DIR/kubeconfig"

ETCD_PORT="${SPARKVC_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${SPARKVC_ETCD_PEER_PORT:-23800}"
APISERVER_PORT="${SPARKVC_APISERVER_PORT:-26443}"
KCM_PORT="${SPARKVC_KCM_PORT:-26444}"
SCHEDULER_PORT="${SPARKVC_SCHEDULER_PORT:-26445}"
MOTO_PORT="${SPARKVC_MOTO_PORT:-25000}"
NODES="${SPARKVC_NODES:-4}"

# The real node (see real-node.sh and the README): SPARKVC_REAL_NODE=1
# always, 0 never, auto (the default) when run as root and no other run
# directory's real node is running. Its addresses are fixed host-only ones (a
# dummy interface and a bridge that only this node uses), so only one real
# node can run on a machine at a time; its ports can move like the others.
REAL_NODE="${SPARKVC_REAL_NODE:-auto}"
REAL_NODE_NAME="${SPARKVC_REAL_NODE_NAME:-real-node-0}"
KUBELET_PORT="${SPARKVC_KUBELET_PORT:-26450}"
KUBELET_HEALTHZ_PORT="${SPARKVC_KUBELET_HEALTHZ_PORT:-26451}"
KUBE_PROXY_METRICS_PORT="${SPARKVC_KUBE_PROXY_METRICS_PORT:-26452}"
KUBE_PROXY_HEALTHZ_PORT="${SPARKVC_KUBE_PROXY_HEALTHZ_PORT:-26453}"
DNS_PORT="${SPARKVC_DNS_PORT:-26454}"
DNS_HEALTH_PORT="${SPARKVC_DNS_HEALTH_PORT:-26455}"
DNS_READY_PORT="${SPARKVC_DNS_READY_PORT:-26456}"

# Start order; down stops them in reverse.
COMPONENTS=(moto etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
# The real node's processes, in start order (down stops them in reverse,
# before the control plane).
REAL_COMPONENTS=(containerd kubelet kube-proxy coredns apiserver-proxy)

log() { printf '[sparkvc-local] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# Process start time (clock ticks since boot, field 22 of /proc/PID/stat), so
# a recorded PID is only trusted while it still names the same process.
proc_start() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  # The command name (field 2) may contain spaces; fields after it are fixed.
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -f -- $stat
  set +f
  # $1 is the state; a zombie has exited even if nobody reaped it yet.
  [[ $1 != Z && $1 != X ]] || return 1
  echo "${20}"
}

# alive NAME: the recorded process for NAME is running.
alive() {
  local f="$PID_DIR/$1.pid" pid start
  [[ -f $f ]] || return 1
  read -r pid start <"$f" || return 1
  [[ -n $pid && -n $start ]] || return 1
  [[ "$(proc_start "$pid" 2>/dev/null)" == "$start" ]]
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop NAME [GRACE]: SIGTERM the recorded process for NAME (only while the
# PID still names the process that was started), SIGKILL after GRACE seconds.
stop() {
  local name=$1 grace=${2:-10} f="$PID_DIR/$1.pid" pid deadline
  [[ -f $f ]] || return 0
  if ! alive "$name"; then
    rm -f "$f"
    return 0
  fi
  read -r pid _ <"$f"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(( $(date +%s) + grace ))
  while alive "$name" && (( $(date +%s) < deadline )); do
    sleep 0.2
  done
  if alive "$name"; then
    log "$name (pid $pid) did not stop in ${grace}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$name"; do sleep 0.1; done
  fi
  rm -f "$f"
  log "stopped $name (pid $pid)"
}

# start NAME PORT CMD...: start CMD detached, logging to logs/NAME.log and
# recording "PID STARTTIME" in pids/NAME.pid, unless NAME is already running.
start() {
  local name=$1 port=$2
  shift 2
  if alive "$name"; then
    log "$name already running (pid $(cut -d' ' -f1 "$PID_DIR/$name.pid"))"
    return 0
  fi
  if [[ -n $port ]] && port_in_use "$port"; then
    die "$name: 127.0.0.1:$port is already in use by another process (set SPARKVC_*_PORT to move it)"
  fi
  mkdir -p "$PID_DIR" "$LOG_DIR"
  {
    printf '### %s started %s\n### %s\n' "$name" "$(date -Is)" "$*"
  } >>"$LOG_DIR/$name.log"
  # setsid: own session, so a Ctrl-C in the calling terminal does not reach it.
  if command -v setsid >/dev/null 2>&1; then
    setsid "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  else
    nohup "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  fi
  local pid=$! st=""
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    st="$(proc_start "$pid" 2>/dev/null)" && break
    sleep 0.1
  done
  [[ -n $st ]] || { tail -n 40 "$LOG_DIR/$name.log" >&2; die "$name exited immediately"; }
  echo "$pid $st" >"$PID_DIR/$name.pid"
  log "started $name (pid $pid, log $LOG_DIR/$name.log)"
}

# wait_for NAME TIMEOUT CMD...: retry CMD until it succeeds; on timeout or if
# NAME's process died, print the tail of its log and fail.
wait_for() {
  local name=$1 timeout=$2 deadline
  shift 2
  deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>"$RUN_DIR/.probe.err"; do
    if ! alive "$name"; then
      tail -n 40 "$LOG_DIR/$name.log" >&2
      die "$name is not running (log: $LOG_DIR/$name.log)"
    fi
    if (( $(date +%s) >= deadline )); then
      cat "$RUN_DIR/.probe.err" >&2 || true
      tail -n 40 "$LOG_DIR/$name.log" >&2
      die "$name not ready after ${timeout}s (log: $LOG_DIR/$name.log)"
    fi
    sleep 0.5
  done
  rm -f "$RUN_DIR/.probe.err"
}

seconds_to_ms() {
  python3 -c 'import sys; print(int(round(float(sys.argv[1]) * 1000)))' "$1"
}

# ensure_venv: create the moto virtualenv, reinstalling only when
# requirements.txt or the Python version changed.
ensure_venv() {
  local want
  want="$({ python3 --version; cat "$LOCAL_DIR/requirements.txt"; } | sha256sum | cut -c1-16)"
  if [[ -x $VENV/bin/moto_server && "$(cat "$VENV/.sparkvc-stamp" 2>/dev/null)" == "$want" ]]; then
    return 0
  fi
  echo "creating $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  PIP_CACHE_DIR="$CACHE_DIR/pip" "$VENV/bin/python" -m pip install --disable-pip-version-check \
    --no-input -r "$LOCAL_DIR/requirements.txt"
  echo "$want" >"$VENV/.sparkvc-stamp"
}

write_env() {
  cat >"$RUN_DIR/env.tmp" <<EOF
# Generated by deploy/local/up; source it to use the local environment.
export SPARKVC_LOCAL_RUN_DIR='$RUN_DIR'
export KUBECONFIG='$KUBECONFIG_ADMIN'
export SPARKVC_KUBECONFIG='$KUBECONFIG_ADMIN'
export SPARKVC_KUBE_CONTEXT='$CONTEXT'
export SPARKVC_KUBE_API='https://127.0.0.1:$APISERVER_PORT'
export SPARKVC_LOCAL_NODES='$NODES'
export AWS_ENDPOINT_URL='http://127.0.0.1:$MOTO_PORT'
export AWS_REGION='us-east-1'
export AWS_DEFAULT_REGION='us-east-1'
export AWS_ACCESS_KEY_ID='testing'
export AWS_SECRET_ACCESS_KEY='testing'
export AWS_EC2_METADATA_DISABLED='true'
EOF
  if [[ $REAL_NODE == 1 && -f $RUN_DIR/real-node/images.env ]]; then
    # shellcheck disable=SC1091
    source "$RUN_DIR/real-node/images.env"
    cat >>"$RUN_DIR/env.tmp" <<EOF
export SPARKVC_REAL_NODE_NAME='$REAL_NODE_NAME'
export SPARKVC_REAL_NODE_PROBE_IMAGE='$PROBE_REF'
export SPARKVC_REAL_NODE_SPARK_IMAGE='${SPARK_REF:-}'
EOF
  fi
  mv -f "$RUN_DIR/env.tmp" "$RUN_DIR/env"
}
