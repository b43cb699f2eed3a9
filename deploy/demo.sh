#!/usr/bin/env bash
# The main job on local defaults (`make demo`):
#
# 1. the local cluster (deploy/local: real kube-apiserver, controller-manager,
#    scheduler, kwok nodes; moto as AWS) comes up; run as root, also its real
#    node (containerd, kubelet, kube-proxy, CoreDNS) and the Spark image;
# 2. sparkvc-server starts on a fresh embedded store, serving that cluster;
#    with the real node it places every job pod there ([cluster.job_pods]);
# 3. with the sparkvc CLI: a virtual cluster on namespace spark-demo, then
#    a SparkPi job run that reaches COMPLETED (start-job-run --wait),
#    a job run that fails, and a job run cancelled while its driver runs.
#
# On the real node all of it is real: the job-runner pod runs spark-submit,
# which creates the driver pod, which creates two executor pods, which
# compute; the demo shows what the driver logged.
#
# Without the real node (not root, or SPARKVC_REAL_NODE=0) nothing can run a
# container: local-job-runner then runs each job-runner pod's spark-submit on
# this machine (deploy/local/spark-env's Apache Spark, submitting to the
# local API server with the pod's service account token), and kwok simulates
# the driver pods (Running, then Succeeded after 5 s, running no Spark code).
#
# The cluster is stopped at the end unless it was already up before.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
run_dir="${SPARKVC_RUN_DIR:-$repo/deploy/local/.run}"

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }

cluster_was_up=0
if [[ -f $run_dir/env ]] && (
  # shellcheck disable=SC1091
  source "$run_dir/env"
  curl -sf --max-time 2 --cacert "$run_dir/pki/ca.crt" "$SPARKVC_KUBE_API/readyz" >/dev/null
); then
  cluster_was_up=1
fi

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $cluster_was_up == 0 ]]; then deploy/local/down; fi
}
trap cleanup EXIT

say "starting the local cluster (the first time builds Kubernetes and the Spark image: several minutes)"
deploy/local/up
# shellcheck disable=SC1091
source "$run_dir/env"
real_node=${SPARKVC_REAL_NODE_NAME:-}
# Built as deploy/test.sh builds them (same features, so no rebuilds between
# the two). Cargo's progress shows: a first build takes several minutes.
say "building sparkvc-server and the sparkvc CLI"
cargo build -p sparkvc-server -p sparkvc-cli
if [[ -z $real_node ]]; then
  say "no real node: installing Apache Spark and building local-job-runner, to run spark-submit on this machine"
  deploy/local/spark-env >/dev/null
  cargo build -p sparkvc-cluster-tests --bin local-job-runner
fi
bin=target/debug

data=$(mktemp -d "${TMPDIR:-/tmp}/sparkvc-demo.XXXXXX")
namespace=spark-demo

# Reads and writes the local cluster as its administrator.
kube() {
  curl -sS --cacert "$run_dir/pki/ca.crt" --cert "$run_dir/pki/admin.crt" \
    --key "$run_dir/pki/admin.key" -H 'Content-Type: application/json' "$@"
}
# The tenant's namespace; sparkvc requires it to exist (and never creates it).
kube -o /dev/null -X POST "$SPARKVC_KUBE_API/api/v1/namespaces" \
  -d "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$namespace\"}}"

if [[ -z $real_node ]]; then
  "$bin/local-job-runner" --namespace "$namespace" --work-dir "$data/job-runner" 2>"$data/job-runner.log" &
  runner=$!
  pids+=("$runner")
fi

# Local pod templates are read only from directories the operator allows
# (by default none: templates then come from S3, read as the run's role).
mkdir -p "$data/pod-templates"
cat >"$data/server.toml" <<EOF
listen = "127.0.0.1:0"
data_dir = "$data/store"
pod_template_dirs = ["$data/pod-templates"]

[[cluster]]
id = "local"
kubeconfig = "$KUBECONFIG"
context = "$SPARKVC_KUBE_CONTEXT"
EOF
if [[ -n $real_node ]]; then
  # The real node is tainted, so that pods meant for the kwok nodes stay off
  # it; this cluster's job pods go there and tolerate the taint.
  cat >>"$data/server.toml" <<'EOF'

[cluster.job_pods]
node_selector = { "sparkvc.io/node" = "real" }
tolerations = [{ key = "sparkvc.io/real-node", operator = "Exists", effect = "NoSchedule" }]
EOF
fi
"$bin/sparkvc-server" --config "$data/server.toml" >"$data/address" 2>"$data/server.log" &
server=$!
pids+=("$server")
for _ in $(seq 100); do
  grep -q listening "$data/address" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$data/server.log"; exit 1; }
  sleep 0.1
done
if [[ -z $real_node ]]; then
  for _ in $(seq 300); do # until it watches, kwok would finish job-runner pods by itself
    grep -q "watching job-runner pods" "$data/job-runner.log" && break
    kill -0 "$runner" 2>/dev/null || { cat "$data/job-runner.log"; exit 1; }
    sleep 0.1
  done
fi
export SPARKVC_ENDPOINT_URL="http://$(sed -n 's/.*listening on //p' "$data/address")"
say "sparkvc-server (pid $server) at $SPARKVC_ENDPOINT_URL; its configuration, store and log in $data"

# Runs the CLI, echoing the command; keeps its stdout in $out and shows it
# (quiet: does not show it).
run() {
  echo; echo "\$ sparkvc $*"
  out=$("$bin/sparkvc" "$@") || return $?
  [ -z "$out" ] || echo "$out"
}
quiet() {
  echo; echo "\$ sparkvc $*"
  out=$("$bin/sparkvc" "$@")
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)" <<<"$out"; }
# Polls describe-job-run until the run is in one of the given states.
wait_for_state() {
  local id=$1; shift
  for _ in $(seq 240); do
    state=$("$bin/sparkvc" describe-job-run --virtual-cluster-id "$vc" --id "$id" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["jobRun"]["state"])')
    for want in "$@"; do [[ $state == "$want" ]] && return 0; done
    sleep 0.5
  done
  echo "job run $id did not reach $* (it is $state)" >&2
  return 1
}
history() {
  "$bin/sparkvc" describe-job-run --virtual-cluster-id "$vc" --id "$1" | python3 -c '
import json, sys
run = json.load(sys.stdin)["jobRun"]
print("# " + " -> ".join(t["state"] for t in run["stateHistory"]))
print("#   failureReason:", run.get("failureReason", "-"))
print("#   stateDetails: ", run.get("stateDetails", "-"))'
}
# The pods of a job run that are still there, with their node and phase.
run_pods() {
  kube "$SPARKVC_KUBE_API/api/v1/namespaces/$namespace/pods?labelSelector=sparkvc.io/job-run-id%3D$1" |
    python3 -c '
import json, sys
pods = json.load(sys.stdin)["items"]
for p in pods:
    print("#   %-48s %-12s %s" % (p["metadata"]["name"], p["spec"].get("nodeName", "-"), p["status"].get("phase")))
if not pods:
    print("#   (none)")'
}

role=arn:aws:iam::000000000000:role/spark-job
vc=

if [[ -n $real_node ]]; then
  release=emr-7.10.0-sparkvc-local  # the Spark image deploy/local/node/images built
  # The node has 2 CPUs: the job-runner (500m), the driver and two executors
  # (250m each) fit side by side.
  small="--conf spark.executor.instances=2 --conf spark.kubernetes.driver.request.cores=250m --conf spark.kubernetes.executor.request.cores=250m --conf spark.driver.memory=512m --conf spark.executor.memory=512m"
  overrides='{}'
  sparkpi="\"entryPoint\": \"local:///opt/spark/examples/jars/sparkvc-examples.jar\", \"entryPointArguments\": [\"100\"], \"sparkSubmitParameters\": \"--class sparkvc.examples.SparkPi $small\""
  failing="\"entryPoint\": \"local:///opt/spark/examples/src/main/python/pi.py\", \"entryPointArguments\": [\"many\"], \"sparkSubmitParameters\": \"$small\""
  failing_what="a PySpark job that raises (pi.py given \"many\" partitions)"
  long="\"entryPoint\": \"local:///opt/spark/examples/src/main/python/pi.py\", \"entryPointArguments\": [\"100000\"], \"sparkSubmitParameters\": \"$small\""
  long_overrides='{}'
else
  release=emr-7.9.0-latest
  # Every job-runner pod is created with kwok's stay-running annotation, so
  # that kwok leaves its end to local-job-runner (which reports spark-submit's exit).
  on_local_runner='{"classification": "emr-job-submitter", "properties": {"jobsubmitter.annotation.sparkvc.io/kwok-stay-running": "true"}}'
  overrides="{\"applicationConfiguration\": [$on_local_runner]}"
  sparkpi='"entryPoint": "local:///opt/spark/examples/src/main/python/pi.py", "entryPointArguments": ["100"], "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=1g"'
  failing='"entryPoint": "local:///opt/spark/examples/src/main/python/pi.py", "sparkSubmitParameters": "--driver-memory 0"'
  failing_what="a job run whose spark-submit fails: --driver-memory 0"
  long='"entryPoint": "local:///opt/spark/examples/src/main/python/pi.py", "entryPointArguments": ["100000"]'
  cat >"$data/pod-templates/long-driver.yaml" <<'EOF'
# kwok keeps this (simulated) driver running for 10 minutes.
apiVersion: v1
kind: Pod
metadata:
  annotations:
    sparkvc.io/kwok-run-seconds: "600"
EOF
  long_overrides="{\"applicationConfiguration\": [$on_local_runner, {\"classification\": \"spark-defaults\", \"properties\": {\"spark.kubernetes.driver.podTemplateFile\": \"$data/pod-templates/long-driver.yaml\"}}]}"
fi

say "a virtual cluster on namespace $namespace of cluster 'local'"
run create-virtual-cluster --name demo \
  --container-provider "id=local,type=EKS,info={eksInfo={namespace=$namespace}}"
vc=$(field '["id"]')

say "1. SparkPi, followed until it ends"
quiet start-job-run --virtual-cluster-id "$vc" --name spark-pi --wait \
  --execution-role-arn "$role" --release-label "$release" \
  --job-driver "{\"sparkSubmitJobDriver\": {$sparkpi}}" --configuration-overrides "$overrides"
pi=$(field '["jobRun"]["id"]')
history "$pi"
if [[ -n $real_node ]]; then
  echo "# its pods ran on $real_node; what the driver logged:"
  kube "$SPARKVC_KUBE_API/api/v1/namespaces/$namespace/pods/spark-$pi-driver/log" |
    grep -E "Registered executor|Pi is roughly" | sed -E 's/NettyRpcEndpointRef\([^)]*\) //; s/^/#   /' | cut -c1-160
  echo "# the run's pods now (the driver deleted its executors when it ended):"
  run_pods "$pi"
else
  # The job-runner pod is named after the run; local-job-runner kept its output.
  log="$data/job-runner/$namespace/$pi/spark-submit.log"
  echo "# spark-submit ran on this machine ($log):"
  grep -E "Waiting for application|with application ID .* finished" "$log" | cut -c1-160 | sed 's/^/#   /'
fi

say "2. $failing_what"
if quiet start-job-run --virtual-cluster-id "$vc" --name failing --wait \
  --execution-role-arn "$role" --release-label "$release" \
  --job-driver "{\"sparkSubmitJobDriver\": {$failing}}" --configuration-overrides "$overrides"; then
  echo "expected this job run to fail" >&2
  exit 1
fi
failed=$("$bin/sparkvc" list-job-runs --virtual-cluster-id "$vc" --states FAILED |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["jobRuns"][0]["id"])')
history "$failed"

say "3. a long job run, cancelled while its driver runs"
run start-job-run --virtual-cluster-id "$vc" --name long-pi \
  --execution-role-arn "$role" --release-label "$release" \
  --job-driver "{\"sparkSubmitJobDriver\": {$long}}" --configuration-overrides "$long_overrides"
long_id=$(field '["id"]')
wait_for_state "$long_id" RUNNING
echo "# $long_id is RUNNING"
if [[ -n $real_node ]]; then
  sleep 10 # the executors start
  run_pods "$long_id"
fi
run cancel-job-run --virtual-cluster-id "$vc" --id "$long_id"
wait_for_state "$long_id" CANCELLED
history "$long_id"
if [[ -n $real_node ]]; then
  for _ in $(seq 60); do # the pods terminate gracefully
    [[ $(run_pods "$long_id") == *"(none)"* ]] && break
    sleep 1
  done
  echo "# the run's pods now:"
  run_pods "$long_id"
fi

say "the virtual cluster's job runs"
"$bin/sparkvc" list-job-runs --virtual-cluster-id "$vc" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["jobRuns"]:
    print("#   %s  %-10s  %-9s  %s" % (r["id"], r["name"], r["state"], r.get("failureReason", "")))'
