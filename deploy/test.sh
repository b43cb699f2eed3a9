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
# shellcheck disable=SC1091
source deploy/local/.run/env
# The end-to-end harness builds these two itself (without the tests'
# dev-dependency features); building them first makes that a no-op.
cargo build -p sparkvc-server -p sparkvc-cli
cargo test --workspace --no-fail-fast "$@"
