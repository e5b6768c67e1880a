# `make up` and `make test` work on a fresh machine: each runs setup first. `up` installs only
# what running needs (setup); `test` and the other developer targets also what testing
# needs (setup-test: chromium, postgresql, the dev packages, the compose CLI).
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup setup-test controlplane up down test test-fast lint typecheck bench bench-quick bench-load bench-tracking bench-parts kind-up

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

controlplane: setup
	$(PY) manage.py localcluster build

up: controlplane
	$(PY) manage.py runlab --host $(HOST) --port $(PORT)

down: setup
	$(PY) manage.py localcluster down

test: setup-test controlplane
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest
	@echo "== again on PostgreSQL: every test that touches the database (the others cannot differ)"
	bash scripts/with-postgres.sh $(PY) -m pytest -p no:cacheprovider -m database

# The fast lane: lint, format and every test that needs no control plane, no
# Redis or Celery stack and no browser (conftest.py marks those `cluster`).
# Under a minute; --timeout stops a test that waits on the control plane's build.
test-fast: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -p no:cacheprovider -m "not cluster" --timeout=60

lint: setup-test
	$(VENV)/bin/ruff check .

# mypy with django-stubs; settings in pyproject.toml ([tool.mypy]), files included.
typecheck: setup-test
	$(VENV)/bin/mypy

# A classroom at a human pace: 100 learners with a 15-minute soak, then 200, each from
# a workshop's warm pool, beside bare kubectl (bench/results/classroom.*). About 45 min.
bench: setup-test controlplane
	$(PY) bench/classroom.py

# A quick look at the same: 20 learners arriving over 30 s, thinking 3-6 s.
bench-quick: setup-test controlplane
	$(PY) bench/classroom.py --classes 20 --soak 0 --arrive 30 --think 3,6 \
		--out bench/results/classroom-quick.json

# The older generator: every learner at once, 1-3 s apart; --ramp, --soak and --faults.
bench-load: setup-test controlplane
	$(PY) bench/load.py

bench-tracking: setup-test controlplane
	$(PY) bench/tracking.py --learners 1,100 --json bench/results/tracking.json

# The other figures: control-plane boot and memory, one command's path against bare kubectl.
bench-parts: setup-test controlplane
	$(PY) bench/localcluster_boot.py --json bench/results/localcluster_boot.json
	$(PY) bench/runner_latency.py
	$(PY) bench/cold_path.py

# Optional: a kind cluster instead of the local control plane (your own kind and Docker).
kind-up:
	kind create cluster --config deploy/kind/cluster.yaml --kubeconfig var/kind.kubeconfig
	@echo "Now run: LABAPP_KUBECONFIG=$(CURDIR)/var/kind.kubeconfig make up"
