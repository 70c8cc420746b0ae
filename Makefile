# Quick start on a fresh machine with Python 3.11 and pip: `make demo`, then `make test`.
SHELL := /bin/bash
UV_VERSION := 0.13.8
PYTHON ?= python3.11
# The locker: uv from the lock file's era, installed with pip when missing, run as a module so its scripts
# folder need not be on PATH.
UV := $(PYTHON) -m uv
VENV := .venv
STAMP := $(VENV)/.synced
export UV_PYTHON_DOWNLOADS := never
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: env demo test test-embedded lint ui serve feast-ui clean help services services-down bench cluster-up cluster-down

help:
	@echo "make demo   - create the environment from uv.lock, generate data, run the whole graph, predict"
	@echo "make test   - the whole test suite (starts the local services for the hybrid tests)"
	@echo "make test-embedded - the embedded tests only, no server needed"
	@echo "make ui     - Dagster webserver + daemon on the instance under HYBRID_HOME (default .hybrid/)"
	@echo "make serve  - the prediction endpoint on http://127.0.0.1:8000"
	@echo "make feast-ui - the Feast UI over the active profile's Feast repo (HYBRID_HOME/feast)"
	@echo "make services - local PostgreSQL, Redis and S3 API for HYBRID_PROFILE=hybrid (make services-down stops them)"
	@echo "make bench  - the benchmarks (hybrid profile; after make services): JSON in HYBRID_HOME/bench/"
	@echo "make cluster-up - local Dask clusters (on-prem and cloud) that the next runs use (make cluster-down stops them)"
	@echo "make lint   - ruff"
	@echo "make clean  - delete HYBRID_HOME (default .hybrid/): data, instance, feature store, models"

$(STAMP): uv.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)" \
	  || $(PYTHON) -m pip install --quiet --user --break-system-packages "uv==$(UV_VERSION)"
	$(UV) sync --frozen --python $(PYTHON)
	@touch $(STAMP)

env: $(STAMP)

# Extra arguments for `hybrid demo`, e.g. make demo DEMO_ARGS="--customers 3000 --days 150 --verbose"
DEMO_ARGS ?=

demo: env
	$(VENV)/bin/hybrid demo $(DEMO_ARGS)

# The whole suite: embedded and hybrid. The hybrid tests need the services, so they are brought up first.
# Four workers on two cores: the longest tests mostly wait (daemon ticks, servers, a browser, subprocesses), so
# two more keep the CPUs busy (with three, both cores were busy only 1.5 of the time). One scope per module, the
# longest first (tests/conftest.py). PYTEST_WORKERS=0: serial.
PYTEST_WORKERS ?= 4
test: services
	$(VENV)/bin/pytest -ra --durations=10 -n $(PYTEST_WORKERS) --dist loadscope

# Only the embedded suite (no server needed); the hybrid tests skip without services (never under CI=true).
test-embedded: env
	$(VENV)/bin/pytest -ra -m "not hybrid"

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

ui: env
	$(VENV)/bin/hybrid ui

serve: env
	$(VENV)/bin/hybrid serve

feast-ui: env ## the Feast UI over the active profile's Feast repo, $HYBRID_HOME/feast (written by feast-config)
	$(VENV)/bin/hybrid feast-config
	$(VENV)/bin/feast -c "$${HYBRID_HOME:-$(CURDIR)/.hybrid}/feast" ui -h 127.0.0.1

clean:
	rm -rf "$${HYBRID_HOME:-$(CURDIR)/.hybrid}"

services: env ## PostgreSQL, Redis and an S3 API server on loopback for the hybrid profile
	@command -v redis-server >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql; }
	@command -v chromium >/dev/null 2>&1 \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	$(VENV)/bin/hybrid services up

services-down: env
	$(VENV)/bin/hybrid services down

# Local Dask clusters (one per site: scheduler + 2 workers on loopback); the next runs use them (docs/scale-out.md)
cluster-up: env
	$(VENV)/bin/hybrid cluster up

cluster-down: env
	$(VENV)/bin/hybrid cluster down

# Benchmarks against their references, measured in the same run (docs/benchmarks.md). Not tests: no
# assertion on time. Needs the services (`make services`); wrk is the HTTP load generator.
bench: env
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	HYBRID_PROFILE=hybrid $(VENV)/bin/python -m benchmarks.materialize
	HYBRID_PROFILE=hybrid $(VENV)/bin/python -m benchmarks.serving
	$(VENV)/bin/python -m benchmarks.features
	$(VENV)/bin/python -m benchmarks.training
	$(VENV)/bin/python -m benchmarks.training_set
	$(VENV)/bin/python -m benchmarks.report
