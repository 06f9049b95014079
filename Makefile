# keyguard: every entry point a developer, CI or an admin needs. `make run` and `make test` set up everything.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEV_CERTS := certs/dev
QUICK ?=

.PHONY: venv run test lint unit e2e k8s node e2e-node bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

$(DEV_CERTS)/tls.crt: | $(STAMP)
	$(BIN)/keyguard certs generate --out $(DEV_CERTS) --dns localhost --ip 127.0.0.1

run: $(STAMP) $(DEV_CERTS)/tls.crt
	$(BIN)/keyguard serve --host 127.0.0.1 --port 8443 \
		--tls-cert $(DEV_CERTS)/tls.crt --tls-key $(DEV_CERTS)/tls.key

lint: $(STAMP)
	$(BIN)/ruff check webhook tests bench
	$(BIN)/ruff format --check webhook tests bench
	$(BIN)/mypy webhook

# kube-apiserver, kubectl (kustomize) and etcd, built from the Go module proxy once and cached by version.
k8s:
	tests/e2e/build-k8s.sh

unit: $(STAMP) k8s
	$(BIN)/pytest -q -p no:cacheprovider --ignore=tests/e2e --ignore=tests/node \
		--cov=webhook --cov-report=term --cov-fail-under=90

test: lint unit

e2e: $(STAMP) k8s
	$(BIN)/pytest -q -p no:cacheprovider tests/e2e --cov --cov-config=tests/e2e/coveragerc --cov-report=term

# The node tier (root on Linux): kubelet, kube-scheduler, kube-controller-manager and SeaweedFS from the Go module
# proxy, containerd and runc from Debian, and the pause, keyguard and Flyte task images built locally; all cached.
node:
	tests/node/build-node.sh >/dev/null

e2e-node: $(STAMP) k8s node
	$(BIN)/pytest -q -p no:cacheprovider tests/node

bench: $(STAMP)
	bench/install-wrk.sh
	$(BIN)/python bench/run.py $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) $(DEV_CERTS) .mypy_cache .ruff_cache .pytest_cache .coverage .hypothesis
