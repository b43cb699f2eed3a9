#!/usr/bin/env bash
# The main job on local defaults: a sparkvc server on a fresh embedded store,
# a virtual cluster created and a job run started with the sparkvc CLI, and
# its state shown. Kubernetes execution is not wired in yet, so the run stays
# PENDING; the demo then cancels it to show the state history.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p sparkvc-server -p sparkvc-cli
bin=target/debug
data=$(mktemp -d "${TMPDIR:-/tmp}/sparkvc-demo.XXXXXX")
log="$data/server.log"

"$bin/sparkvc-server" --listen 127.0.0.1:0 --data-dir "$data" >"$data/address" 2>"$log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q listening "$data/address" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
export SPARKVC_ENDPOINT_URL="http://$(sed -n 's/.*listening on //p' "$data/address")"
echo "# sparkvc-server (pid $server) at $SPARKVC_ENDPOINT_URL, store in $data"

# Runs the CLI, echoing the command and its JSON output; keeps the output in $out.
run() {
  echo; echo "\$ sparkvc $*"
  out=$("$bin/sparkvc" "$@")
  [ -z "$out" ] || echo "$out"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)" <<<"$out"; }

run create-virtual-cluster --name demo \
  --container-provider 'id=local,type=EKS,info={eksInfo={namespace=spark-demo}}'
vc=$(field '["id"]')

run start-job-run --virtual-cluster-id "$vc" --name spark-pi \
  --execution-role-arn arn:aws:iam::000000000000:role/spark-job \
  --release-label emr-7.9.0-latest \
  --job-driver '{"sparkSubmitJobDriver": {"entryPoint": "local:///opt/spark/examples/src/main/python/pi.py", "entryPointArguments": ["100"], "sparkSubmitParameters": "--conf spark.executor.instances=2"}}'
job=$(field '["id"]')

run describe-job-run --virtual-cluster-id "$vc" --id "$job"
echo; echo "# state: $(field '["jobRun"]["state"]')"
run cancel-job-run --virtual-cluster-id "$vc" --id "$job"
run list-job-runs --virtual-cluster-id "$vc" --states CANCELLED
run describe-virtual-cluster --id "$vc"
out=$("$bin/sparkvc" describe-job-run --virtual-cluster-id "$vc" --id "$job")
echo; echo "# job run $job went $(field '["jobRun"]["stateHistory"]' | python3 -c 'import ast,sys; print(" -> ".join(t["state"] for t in ast.literal_eval(sys.stdin.read())))')"
