#!/usr/bin/env python3
"""A small Kubernetes client for deploy/local (the machine has no kubectl):
only the Python standard library, the admin client certificate from
RUN_DIR/pki, and the API server on 127.0.0.1.

  kube.py --run-dir D --server URL apply < objects.json
      server-side apply (field manager sparkvc-local-up) of a JSON list of
      objects; idempotent, so up can run it on every start.
  kube.py --run-dir D --server URL get PATH
      GET an API path (e.g. /api/v1/namespaces/NS/pods?labelSelector=...)
      and print the body (JSON, or text for .../log).
  kube.py --run-dir D --server URL delete PATH
      DELETE an API path (404 is fine).
  kube.py --run-dir D --server URL dns --server IP --port P --name N --want IP
      one DNS query (A record, over UDP) to CoreDNS; exit 0 if the answer
      contains the wanted address.
  kube.py --run-dir D --server URL probe --image REF [--timeout S]
      the real node's end-to-end check: runs a pod on the real node that
      (a) resolves a headless Service name through CoreDNS to its own pod IP,
      (b) gets an HTTP answer from https://kubernetes.default.svc:443
      (through kube-proxy's Service rules), (c) calls itself through a
      ClusterIP Service by name, and (d) reaches neither the
      host's gateway, nor the host's own address, nor a host port on the
      node IP, nor resolves an outside name; then reads the pod's log through
      the API server (which fetches it from the kubelet) and deletes the
      namespace. Exit status 0 only if both checks passed.
"""
import argparse
import json
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

FIELD_MANAGER = "sparkvc-local-up"

# kind -> (API path prefix, plural, namespaced)
RESOURCES = {
    "Namespace": ("/api/v1", "namespaces", False),
    "Service": ("/api/v1", "services", True),
    "Pod": ("/api/v1", "pods", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
}


class Client:
    def __init__(self, run_dir, server):
        self.server = server.rstrip("/")
        ctx = ssl.create_default_context(cafile=f"{run_dir}/pki/ca.crt")
        ctx.load_cert_chain(f"{run_dir}/pki/admin.crt", f"{run_dir}/pki/admin.key")
        self.ctx = ctx

    def request(self, method, path, body=None, content_type="application/json", raw=False):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        req.add_header("Accept", "application/json")
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
            out = resp.read()
        return out.decode() if raw else json.loads(out or b"{}")

    def path(self, obj, name=True):
        prefix, plural, namespaced = RESOURCES[obj["kind"]]
        p = prefix
        if namespaced:
            p += "/namespaces/" + obj["metadata"].get("namespace", "default")
        p += "/" + plural
        if name:
            p += "/" + obj["metadata"]["name"]
        return p

    def apply(self, obj):
        q = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true"})
        return self.request("PATCH", self.path(obj) + "?" + q, obj, "application/apply-patch+yaml")

    def get(self, obj):
        return self.request("GET", self.path(obj))

    def delete(self, obj):
        try:
            self.request("DELETE", self.path(obj))
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise


def cmd_apply(c, _args):
    for obj in json.load(sys.stdin):
        try:
            c.apply(obj)
        except urllib.error.HTTPError as e:
            print(f"apply {obj['kind']} {obj['metadata']['name']}: HTTP {e.code}: {e.read().decode()}", file=sys.stderr)
            return 1
        print(f"applied {obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}",
              file=sys.stderr)


# Runs inside the probe pod (python3 from Debian's packages; busybox-static's
# wget segfaults in a container on this kernel, see the README).
PROBE_SCRIPT = r'''
import json, os, socket, ssl, sys, time, urllib.request, urllib.error
name = os.environ["HEADLESS"]
pod_ip = os.environ["POD_IP"]
ok = True
# A tiny HTTP server in this pod, the endpoint of a ClusterIP Service that
# the pod then calls by name: DNS for a ClusterIP Service, kube-proxy's DNAT
# and the bridge's hairpin back into the same pod.
import http.server, threading
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + pod_ip).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Hello)
threading.Thread(target=srv.serve_forever, daemon=True).start()
ips, deadline = [], time.time() + 60
while time.time() < deadline:
    try:
        ips = sorted({ai[4][0] for ai in socket.getaddrinfo(name, None, socket.AF_INET)})
        if pod_ip in ips:
            break
    except socket.gaierror as e:
        ips = [str(e)]
    time.sleep(1)
print("dns", name, "->", ips, "pod ip", pod_ip, "OK" if pod_ip in ips else "FAIL", flush=True)
ok &= pod_ip in ips
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
req = urllib.request.Request("https://kubernetes.default.svc:443/version")
req.add_header("Authorization", "Bearer " + open(sa + "/token").read().strip())
try:
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        status, body = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read().decode()
except Exception as e:
    status, body = 0, repr(e)
print("https://kubernetes.default.svc:443/version ->", status, body.replace("\n", " ")[:200], flush=True)
ok &= status in (200, 401, 403)
svc = os.environ["CLUSTERIP_SVC"]
answer, deadline = "", time.time() + 30
while time.time() < deadline:
    try:
        with urllib.request.urlopen(f"http://{svc}/", timeout=3) as r:
            answer = r.read().decode()
        break
    except Exception as e:
        answer = repr(e)
        time.sleep(1)
print(f"http://{svc}/ (ClusterIP) ->", answer, "OK" if answer == "hello from " + pod_ip else "FAIL", flush=True)
ok &= answer == "hello from " + pod_ip
# Isolation: nothing outside the cluster answers. Each target must time out
# or be refused (DROP gives a timeout); connecting in parallel keeps it short.
import concurrent.futures
def reach(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1.5).close()
        return target, "CONNECTED"
    except OSError as e:
        return target, type(e).__name__
targets = [t for t in os.environ.get("OUTSIDE", "").split(",") if t]
with concurrent.futures.ThreadPoolExecutor(max(1, len(targets))) as ex:
    for target, res in ex.map(reach, targets):
        print("isolation", target, "->", res, "OK" if res != "CONNECTED" else "FAIL", flush=True)
        ok &= res != "CONNECTED"
try:
    outside = socket.getaddrinfo("deb.debian.org", 80)
    print("isolation dns deb.debian.org ->", outside[0][4][0], "FAIL", flush=True)
    ok = False
except socket.gaierror as e:
    print("isolation dns deb.debian.org ->", e, "OK", flush=True)
print("PROBE", "OK" if ok else "FAIL", flush=True)
sys.exit(0 if ok else 1)
'''


def outside_targets(args):
    """Addresses a pod must not reach: the host's default gateway (a
    forwarded packet), the host's own address on that interface and a host
    port on the node IP that is not the API server relay or DNS (local
    delivery: process_api listens on 0.0.0.0:2024 on these machines)."""
    import socket
    import struct
    targets = []
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            iface, dest, gw = line.split()[:3]
            if dest == "00000000":
                gw_ip = socket.inet_ntoa(struct.pack("<L", int(gw, 16)))
                targets.append(f"{gw_ip}:53")
                try:
                    import fcntl
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    addr = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", iface.encode()[:15]))  # SIOCGIFADDR
                    targets.append(f"{socket.inet_ntoa(addr[20:24])}:{args.host_port}")
                except OSError:
                    pass
                break
    targets.append(f"{args.node_ip}:{args.host_port}")
    return targets


def cmd_probe(c, args):
    ns, name = "sparkvc-probe", "sparkvc-probe"
    nsobj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"sparkvc.io/node": "real"},
            "tolerations": [{"key": "sparkvc.io/real-node", "operator": "Exists", "effect": "NoSchedule"}],
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "probe", "image": args.image, "imagePullPolicy": "Never",
                "command": ["python3", "-c", PROBE_SCRIPT],
                "env": [
                    {"name": "HEADLESS", "value": name},  # short name: resolv.conf search path
                    {"name": "CLUSTERIP_SVC", "value": name + "-svc"},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "OUTSIDE", "value": ",".join(outside_targets(args))},
                ],
                "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}},
            }],
        },
    }
    svc = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": "None", "selector": {"app": name}, "publishNotReadyAddresses": True,
                 "ports": [{"name": "none", "port": 80}]},
    }
    svc_ip = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name + "-svc", "namespace": ns},
        "spec": {"selector": {"app": name}, "publishNotReadyAddresses": True,
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    t0 = time.time()
    # A previous probe's namespace may still be terminating: objects cannot
    # be created in it until it is gone.
    while True:
        try:
            if c.get(nsobj).get("status", {}).get("phase") != "Terminating":
                c.delete(pod)
                break
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            break
        if time.time() > t0 + args.timeout:
            print(f"namespace {ns} still terminating", file=sys.stderr)
            return 1
        time.sleep(0.5)
    while True:  # and its pod may still be there
        try:
            c.get(pod)
            time.sleep(0.5)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                break
            raise
    c.apply(nsobj)
    # The namespace's default ServiceAccount (for the token) comes from the
    # controller-manager a moment after the namespace.
    # Right after an API server restart the controller-manager's informers
    # may take a while to recover, so wait as long as the whole probe may.
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}
    while True:
        try:
            c.get(sa)
            break
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        if time.time() > t0 + args.timeout:
            print(f"the ServiceAccount {ns}/default never appeared (is kube-controller-manager running?)",
                  file=sys.stderr)
            return 1
        time.sleep(0.5)
    c.apply(svc)
    c.apply(svc_ip)
    c.apply(pod)
    phase, status = "", {}
    deadline = t0 + args.timeout
    while time.time() < deadline:
        status = c.get(pod).get("status", {})
        phase = status.get("phase", "")
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    elapsed = time.time() - t0
    try:
        log = c.request("GET", c.path(pod) + "/log", raw=True)
    except urllib.error.HTTPError as e:
        log = f"(pod log not available: HTTP {e.code} {e.read().decode()[:300]})"
    print(log.rstrip())
    print(f"probe pod phase {phase or '?'} after {elapsed:.1f}s", file=sys.stderr)
    if phase != "Succeeded":
        print(json.dumps(status, indent=1)[:3000], file=sys.stderr)
    if not args.keep:
        c.delete(nsobj)
    return 0 if phase == "Succeeded" and "PROBE OK" in log else 1


def cmd_get(c, args):
    try:
        body = c.request("GET", args.path, raw=True)
    except urllib.error.HTTPError as e:
        print(f"GET {args.path}: HTTP {e.code}: {e.read().decode()[:500]}", file=sys.stderr)
        return 1
    sys.stdout.write(body if body.endswith("\n") else body + "\n")


def cmd_delete(c, args):
    try:
        c.request("DELETE", args.path)
    except urllib.error.HTTPError as e:
        if e.code != 404:
            print(f"DELETE {args.path}: HTTP {e.code}: {e.read().decode()[:500]}", file=sys.stderr)
            return 1


def cmd_dns(_c, args):
    import random
    import socket
    import struct
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in args.name.rstrip(".").split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)  # A, IN
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(q, (args.dns_server, args.port))
    resp = s.recv(4096)
    rid, flags, _qd, an, _ns, _ar = struct.unpack(">HHHHHH", resp[:12])
    if rid != qid or flags & 0xF:
        print(f"dns: rcode {flags & 0xF}", file=sys.stderr)
        return 1
    # The answers' A records are the 4-byte rdata fields; scan them.
    ips, off = [], len(q)
    for _ in range(an):
        off += 2 if resp[off] & 0xC0 == 0xC0 else resp.index(b"\0", off) + 1 - off
        typ, _cls, _ttl, rdlen = struct.unpack(">HHIH", resp[off:off + 10])
        off += 10
        if typ == 1 and rdlen == 4:
            ips.append(socket.inet_ntoa(resp[off:off + 4]))
        off += rdlen
    print(f"dns: {args.name} -> {ips}", file=sys.stderr)
    return 0 if args.want in ips else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--server", required=True)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("apply")
    p = sub.add_parser("probe")
    p.add_argument("--image", required=True)
    p.add_argument("--timeout", type=float, default=180)
    p.add_argument("--keep", action="store_true", help="keep the probe namespace")
    p.add_argument("--node-ip", default="10.254.0.1")
    p.add_argument("--host-port", type=int, default=2024,
                   help="a port that listens on the host's addresses (0.0.0.0) but must not be reachable from pods")
    sub.add_parser("get").add_argument("path")
    sub.add_parser("delete").add_argument("path")
    p = sub.add_parser("dns")
    p.add_argument("--server", dest="dns_server", required=True)
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--name", required=True)
    p.add_argument("--want", required=True)
    args = ap.parse_args()
    c = Client(args.run_dir, args.server)
    command = {"apply": cmd_apply, "probe": cmd_probe, "dns": cmd_dns, "get": cmd_get,
               "delete": cmd_delete}[args.cmd]
    try:
        sys.exit(command(c, args) or 0)
    except urllib.error.HTTPError as e:
        # The API server's Status says why (which admission plugin, which
        # object); the bare "403 Forbidden" does not.
        print(f"{e.url}: HTTP {e.code}: "
              f"{e.read().decode(errors='replace')[:1000]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
