# The developer entry points. README.md and .ci/run use these targets.

CARGO ?= cargo

.PHONY: demo test test-unit check bench cluster-up cluster-down fmt

## demo: local cluster + server; a SparkPi job run to COMPLETED, a failing one and a cancelled one, with the CLI
demo:
	bash deploy/demo.sh

## test: start the local Kubernetes + AWS stand-in, run every test, stop them again
test:
	bash deploy/test.sh

## test-unit: the tests that need no local cluster
test-unit:
	$(CARGO) test -p sparkvc-proto -p sparkvc-server -p sparkvc-cli -p sparkvc-e2e

## check: formatting and lints, as CI runs them
check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## bench: the API benchmark (release build); figures in target/bench-results/
bench:
	$(CARGO) run --release -p sparkvc-bench --bin api-bench

cluster-up:
	deploy/local/up

cluster-down:
	deploy/local/down

fmt:
	$(CARGO) fmt --all
