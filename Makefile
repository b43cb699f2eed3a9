# The developer entry points. README.md and .ci/run use these targets.

CARGO ?= cargo

.PHONY: help demo test test-unit check golden bench cluster-up cluster-down fmt

## help: this list (what `make` alone prints)
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  make /'

## demo: local cluster + server; a SparkPi job run to COMPLETED, a failing one and a cancelled one, with the CLI
demo:
	bash deploy/demo.sh

## test: start the local Kubernetes + AWS stand-in, run every test, stop them again
test:
	bash deploy/test.sh

## test-unit: the fast tier, which needs no local cluster and no AWS stand-in
test-unit:
	$(CARGO) test -p sparkvc-proto -p sparkvc-render -p sparkvc-server -p sparkvc-cli

## check: formatting and lints, as CI runs them
check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## golden: rewrite the golden files (rendering, Helm chart) from the code; review the diff before committing
golden:
	SPARKVC_UPDATE_GOLDEN=1 $(CARGO) test -p sparkvc-render --test render_golden
	SPARKVC_UPDATE_GOLDEN=1 $(CARGO) test -p sparkvc-helm-tests --test chart

## bench: the API benchmark (release build); figures in target/bench-results/
bench:
	$(CARGO) run --release -p sparkvc-bench --bin api-bench

## cluster-up, cluster-down: start or stop the local Kubernetes and AWS stand-in by hand
cluster-up:
	deploy/local/up

cluster-down:
	deploy/local/down

fmt:
	$(CARGO) fmt --all
