#!/usr/bin/env bash
# Runs every test: starts the local Kubernetes control plane and the AWS
# stand-in (deploy/local/up builds them on first use), runs the whole
# workspace's tests against them, and stops what it started, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."

# down stops only what up recorded, so it is safe even if up fails halfway.
trap 'deploy/local/down' EXIT
deploy/local/up
deploy/local/spark-env >/dev/null  # Apache Spark for tests/cluster/tests/spark_submit.rs
deploy/local/airflow-env >/dev/null  # Apache Airflow for tests/e2e/tests/rest_airflow.rs
deploy/local/helm/build >/dev/null  # helm for tests/helm (the chart); its progress shows on stderr
# shellcheck disable=SC1091
source deploy/local/.run/env
# Every test's sparkvc-server acts on the cluster as the Helm chart's
# ServiceAccount, with exactly the chart's RBAC (the tests' own clients stay
# admin): least privilege, exercised by the whole suite.
# shellcheck disable=SC1090
source "$(cargo run -q -p sparkvc-helm-tests --bin chart-identity)"
echo "sparkvc-server in the tests acts as ${SPARKVC_SERVER_LEASE#*/} (the chart's ServiceAccount, kubeconfig $SPARKVC_SERVER_KUBECONFIG)" >&2
# The end-to-end harness builds these two itself (without the tests'
# dev-dependency features); building them first makes that a no-op.
cargo build -p sparkvc-server -p sparkvc-cli
# The tests that run real Spark pods (tests/e2e/tests/real_node.rs) need the
# real node, which only root gets; without it they are left out, and said so.
skip=()
if [[ -z ${SPARKVC_REAL_NODE_NAME:-} ]]; then
  skip=(--skip real_node::)
  [[ " $* " == *" -- "* ]] || skip=(-- "${skip[@]}")
  printf '\n\033[1;33mWARNING: no real node (deploy/local/up starts it only as root): the real-node tests (real_node::*) are NOT run.\033[0m\n\n' >&2
fi
cargo test --workspace --no-fail-fast "$@" "${skip[@]}"
