# keyguard: every entry point a developer, CI or an admin needs. `make run` and `make test` set up everything.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEV_CERTS := certs/dev
QUICK ?=
FUZZ_CASES ?= 1000000
FUZZ_SECONDS ?= 3600
FUZZ_HTTP_SECONDS ?= 300

.PHONY: venv native run test lint unit unit-compiled e2e k8s helm node e2e-node bench fuzz clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

# The admission path compiled with mypyc into $(VENV)/keyguard-native (webhook/native.py): rebuilt when its sources
# change, a no-op otherwise. Without a C compiler it says so and keyguard runs the same code as pure Python.
native: $(STAMP)
	$(BIN)/python -m webhook.native_build

$(DEV_CERTS)/tls.crt: | $(STAMP)
	$(BIN)/keyguard certs generate --out $(DEV_CERTS) --dns localhost --ip 127.0.0.1

run: native $(DEV_CERTS)/tls.crt
	$(BIN)/keyguard serve --host 127.0.0.1 --port 8443 \
		--tls-cert $(DEV_CERTS)/tls.crt --tls-key $(DEV_CERTS)/tls.key

lint: $(STAMP)
	$(BIN)/ruff check webhook tests bench
	$(BIN)/ruff format --check webhook tests bench
	$(BIN)/mypy webhook
	$(BIN)/lint-imports

# kube-apiserver, kubectl (kustomize) and etcd, built from the Go module proxy once and cached by version.
k8s:
	tests/e2e/build-k8s.sh

# helm, built from the Go module proxy once and cached by version (charts/keyguard's lint, render and install).
helm:
	tests/helm/build-helm.sh

# The suite runs twice: on the pure-Python engine with the coverage gate (coverage cannot see into compiled code),
# then on the compiled one, which is what `make run`, the image and the benchmark serve.
unit: $(STAMP) k8s helm
	KEYGUARD_ENGINE=python $(BIN)/pytest -q -p no:cacheprovider --ignore=tests/e2e --ignore=tests/node \
		--cov=webhook --cov-report=term --cov-fail-under=90

unit-compiled: native k8s helm
	@if $(BIN)/python -m webhook.native_build --check; then \
		KEYGUARD_ENGINE=compiled $(BIN)/pytest -q -p no:cacheprovider --ignore=tests/e2e --ignore=tests/node; \
	else echo "make: no compiled engine here (see above): its test run is not possible; the pure-Python run passed"; fi

test: lint unit unit-compiled

# In random order (modules shuffled, and the tests inside each), so no test leans on another; modules that start a
# control plane of their own keep it for all their tests. The header prints the seed (--random-order-seed=N replays it).
e2e: native k8s helm
	$(BIN)/pytest -q -p no:cacheprovider --random-order-bucket=module tests/e2e --cov --cov-config=tests/e2e/coveragerc --cov-report=term

# The node tier (root on Linux): kubelet, kube-scheduler, kube-controller-manager, SeaweedFS, containerd and runc from
# the Go module proxy, and the pause, keyguard and Flyte task images built locally; all cached.
node:
	tests/node/build-node.sh >/dev/null

e2e-node: native k8s node
	$(BIN)/pytest -q -p no:cacheprovider tests/node

bench: native
	bench/install-wrk.sh
	$(BIN)/python bench/run.py $(if $(QUICK),--quick,)

# The boundary fuzz suite at scale (make test runs 20,000 cases): FUZZ_CASES mutated reviews in process, bounded by
# FUZZ_SECONDS; FUZZ_HTTP_SECONDS of them against a real keyguard serve; then the distinct-name memory flood.
fuzz: native
	$(BIN)/python bench/fuzz.py --cases $(FUZZ_CASES) --seconds $(FUZZ_SECONDS) --http-seconds $(FUZZ_HTTP_SECONDS)
	$(BIN)/python bench/memory_flood.py

clean:
	rm -rf $(VENV) $(DEV_CERTS) .mypy_cache .ruff_cache .pytest_cache .coverage .hypothesis
