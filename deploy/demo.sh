#!/usr/bin/env bash
# The main job on local defaults (`make demo`):
#
# 1. the local cluster (deploy/local: real kube-apiserver, controller-manager,
#    scheduler, kwok nodes; moto as AWS) and Apache Spark (pyspark) come up;
# 2. sparkvc-server starts on a fresh embedded store, serving that cluster;
# 3. local-job-runner starts: kwok runs no containers, so it runs each
#    job-runner pod's spark-submit on this machine (the real Spark, submitting
#    to the local API server with the pod's service account token);
# 4. with the sparkvc CLI: a virtual cluster on namespace spark-demo, then
#    a SparkPi job run that reaches COMPLETED (start-job-run --wait),
#    a job run that fails (spark-submit rejects its arguments), and
#    a job run cancelled while its driver runs.
#
# The driver pods spark-submit creates are simulated by kwok: they go Running
# and then Succeeded (after 5 s) without running Spark code.
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

say "starting the local cluster and installing Apache Spark (the first time builds Kubernetes: several minutes)"
deploy/local/up
deploy/local/spark-env >/dev/null
# shellcheck disable=SC1091
source "$run_dir/env"
# Built as deploy/test.sh builds them (same features, so no rebuilds between
# the two). Cargo's progress shows: a first build takes several minutes.
say "building sparkvc-server, the sparkvc CLI and local-job-runner"
cargo build -p sparkvc-server -p sparkvc-cli
cargo build -p sparkvc-cluster-tests --bin local-job-runner
bin=target/debug

data=$(mktemp -d "${TMPDIR:-/tmp}/sparkvc-demo.XXXXXX")
namespace=spark-demo

# The tenant's namespace; sparkvc requires it to exist (and never creates it).
kube() {
  curl -sS --cacert "$run_dir/pki/ca.crt" --cert "$run_dir/pki/admin.crt" \
    --key "$run_dir/pki/admin.key" -H 'Content-Type: application/json' "$@"
}
kube -o /dev/null -X POST "$SPARKVC_KUBE_API/api/v1/namespaces" \
  -d "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$namespace\"}}"

"$bin/local-job-runner" --namespace "$namespace" --work-dir "$data/job-runner" 2>"$data/job-runner.log" &
runner=$!
pids+=("$runner")

# Local pod templates are read only from directories the operator allows
# (by default none: templates then come from S3, read as the run's role).
mkdir -p "$data/pod-templates"
"$bin/sparkvc-server" --listen 127.0.0.1:0 --data-dir "$data/store" \
  --cluster "local=$SPARKVC_KUBE_CONTEXT" --kubeconfig "$KUBECONFIG" \
  --pod-template-dir "$data/pod-templates" \
  >"$data/address" 2>"$data/server.log" &
server=$!
pids+=("$server")
for _ in $(seq 100); do
  grep -q listening "$data/address" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$data/server.log"; exit 1; }
  sleep 0.1
done
for _ in $(seq 300); do # until it watches, kwok would finish job-runner pods by itself
  grep -q "watching job-runner pods" "$data/job-runner.log" && break
  kill -0 "$runner" 2>/dev/null || { cat "$data/job-runner.log"; exit 1; }
  sleep 0.1
done
export SPARKVC_ENDPOINT_URL="http://$(sed -n 's/.*listening on //p' "$data/address")"
say "sparkvc-server (pid $server) at $SPARKVC_ENDPOINT_URL; store, logs and spark-submit output in $data"

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
runner_log() { # the spark-submit output of a job run, as local-job-runner kept it
  echo "$data/job-runner/$namespace/$1/spark-submit.log"  # the job-runner pod is named after the run
}

role=arn:aws:iam::000000000000:role/spark-job
# Every job-runner pod is created with kwok's stay-running annotation, so that
# kwok leaves its end to local-job-runner (which reports spark-submit's exit).
on_local_runner='{"classification": "emr-job-submitter", "properties": {"jobsubmitter.annotation.sparkvc.io/kwok-stay-running": "true"}}'

release=emr-7.9.0-latest

say "a virtual cluster on namespace $namespace of cluster 'local'"
run create-virtual-cluster --name demo \
  --container-provider "id=local,type=EKS,info={eksInfo={namespace=$namespace}}"
vc=$(field '["id"]')

say "1. SparkPi, followed until it ends"
quiet start-job-run --virtual-cluster-id "$vc" --name spark-pi --wait \
  --execution-role-arn "$role" --release-label "$release" \
  --job-driver '{"sparkSubmitJobDriver": {"entryPoint": "local:///opt/spark/examples/src/main/python/pi.py", "entryPointArguments": ["100"], "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=1g"}}' \
  --configuration-overrides "{\"applicationConfiguration\": [$on_local_runner]}"
pi=$(field '["jobRun"]["id"]')
history "$pi"
echo "# spark-submit ran on this machine ($(runner_log "$pi")):"
grep -E "Waiting for application|with application ID .* finished" "$(runner_log "$pi")" | cut -c1-160 | sed 's/^/#   /' 

say "2. a job run whose spark-submit fails: --driver-memory 0"
if quiet start-job-run --virtual-cluster-id "$vc" --name bad-memory --wait \
  --execution-role-arn "$role" --release-label "$release" \
  --job-driver '{"sparkSubmitJobDriver": {"entryPoint": "local:///opt/spark/examples/src/main/python/pi.py", "sparkSubmitParameters": "--driver-memory 0"}}' \
  --configuration-overrides "{\"applicationConfiguration\": [$on_local_runner]}"; then
  echo "expected this job run to fail" >&2
  exit 1
fi
failed=$("$bin/sparkvc" list-job-runs --virtual-cluster-id "$vc" --states FAILED |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["jobRuns"][0]["id"])')
history "$failed"

say "3. a long job run, cancelled while its driver runs"
cat >"$data/pod-templates/long-driver.yaml" <<'EOF'
# kwok keeps this (simulated) driver running for 10 minutes.
apiVersion: v1
kind: Pod
metadata:
  annotations:
    sparkvc.io/kwok-run-seconds: "600"
EOF
run start-job-run --virtual-cluster-id "$vc" --name long-pi \
  --execution-role-arn "$role" --release-label "$release" \
  --job-driver '{"sparkSubmitJobDriver": {"entryPoint": "local:///opt/spark/examples/src/main/python/pi.py", "entryPointArguments": ["100000"]}}' \
  --configuration-overrides "{\"applicationConfiguration\": [$on_local_runner, {\"classification\": \"spark-defaults\", \"properties\": {\"spark.kubernetes.driver.podTemplateFile\": \"$data/pod-templates/long-driver.yaml\"}}]}"
long=$(field '["id"]')
wait_for_state "$long" RUNNING
echo "# $long is RUNNING"
run cancel-job-run --virtual-cluster-id "$vc" --id "$long"
wait_for_state "$long" CANCELLED
history "$long"

say "the virtual cluster's job runs"
"$bin/sparkvc" list-job-runs --virtual-cluster-id "$vc" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["jobRuns"]:
    print("#   %s  %-10s  %-9s  %s" % (r["id"], r["name"], r["state"], r.get("failureReason", "")))'
