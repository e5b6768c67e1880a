# `make up` and `make test` work on a fresh machine: each runs setup first.
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup controlplane up down test lint bench bench-quick kind-up

setup:
	@bash scripts/setup.sh

controlplane: setup
	$(PY) manage.py localcluster build

up: controlplane
	$(PY) manage.py runlab --host $(HOST) --port $(PORT)

down: setup
	$(PY) manage.py localcluster down

test: controlplane
	$(VENV)/bin/ruff check .
	$(PY) -m pytest
	@echo "== the whole suite again, on PostgreSQL"
	bash scripts/with-postgres.sh $(PY) -m pytest -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check .

# The default load test: 5 to 100 learners through the Baseline lab (bench/results/latest.*).
bench: controlplane
	$(PY) bench/load.py

bench-quick: controlplane
	$(PY) bench/load.py --quick

# The other figures: control-plane boot and memory, one command's path against bare kubectl.
bench-parts: controlplane
	$(PY) bench/localcluster_boot.py --json bench/results/localcluster_boot.json
	$(PY) bench/runner_latency.py

# Optional: a kind cluster instead of the local control plane (your own kind and Docker).
kind-up:
	kind create cluster --config deploy/kind/cluster.yaml --kubeconfig var/kind.kubeconfig
	@echo "Now run: LABAPP_KUBECONFIG=$(CURDIR)/var/kind.kubeconfig make up"
