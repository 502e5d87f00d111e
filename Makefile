# Developer and CI tasks for linkpulse. `make help` lists them.

PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Touched after a successful install; pip runs again only when pyproject.toml or the C
# extension's source is newer.
STAMP := $(VENV)/.linkpulse-installed
PYTEST_ARGS ?=
# Examples of the long property-test run (`make fuzz`).
FUZZ_EXAMPLES ?= 400
RUN_DIR := $(or $(LINKPULSE_RUN_DIR),.run)
LINT_DIRS := $(wildcard services gateway workers)
# apt-get runs directly as root, through sudo otherwise.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

.DEFAULT_GOAL := help
.PHONY: help venv protos up up-cluster down status test test-cluster fuzz chaos bench lint clean chromium zookeeper promtool

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]*:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PY=$(PY) VENV=$(VENV) PYTEST_ARGS='$(PYTEST_ARGS)'"

# Debian's python3 cannot create a venv until python3-venv (ensurepip) is installed.
$(BIN)/python:
	@$(PY) -m venv $(VENV) || { \
	  echo "make: installing python3-venv so that '$(PY) -m venv' works" >&2; \
	  rm -rf $(VENV); \
	  $(APT) install -y python3-venv || { $(APT) update && $(APT) install -y python3-venv; }; \
	  $(PY) -m venv $(VENV); }

$(STAMP): pyproject.toml services/live/_clickwire.c | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $@

venv: $(STAMP) ## create .venv and install linkpulse with its dev tools (again when pyproject.toml changes)

protos: venv ## compile protos/ into services/_generated
	$(BIN)/python -m services.codegen

up: protos ## start the dev stack: PostgreSQL, Redis, ClickHouse, migrations, demo data, services, gateway
	$(BIN)/linkpulse stack up

up-cluster: protos ## the dev stack on a ClickHouse cluster: ZooKeeper, 2 shards x 2 replicas, two copies of each service
	$(BIN)/linkpulse stack up --cluster

down: ## stop what `make up` or `make up-cluster` started (the cluster keeps running until `make clean`)
	@if [ -x $(BIN)/linkpulse ]; then $(BIN)/linkpulse stack down; else echo "make: no $(VENV), nothing to stop"; fi

status: venv ## show what runs and what answers
	$(BIN)/linkpulse stack status

# The cluster-mode tests run ClickHouse replicas coordinated by Debian's ZooKeeper.
zookeeper:
	@[ -x /usr/share/zookeeper/bin/zkServer.sh ] || { \
	  echo "make: installing zookeeper for the ClickHouse cluster tests" >&2; \
	  $(APT) install -y --no-install-recommends zookeeper || \
	  { $(APT) update && $(APT) install -y --no-install-recommends zookeeper; }; }

# The embed page test drives Debian's chromium headless.
chromium:
	@command -v chromium >/dev/null || { \
	  echo "make: installing chromium for the embed page test" >&2; \
	  $(APT) install -y --no-install-recommends chromium || \
	  { $(APT) update && $(APT) install -y --no-install-recommends chromium; }; }

# The monitoring tests check deploy/prometheus (config, alert rules and their unit tests) and the
# Grafana dashboard's queries with promtool, from Debian's prometheus package. Only promtool is
# wanted: the package's Prometheus service, which systemd would start on port 9090, is stopped
# and disabled again.
promtool:
	@command -v promtool >/dev/null || { \
	  echo "make: installing prometheus (for promtool) for the monitoring tests" >&2; \
	  $(APT) install -y --no-install-recommends prometheus || \
	  { $(APT) update && $(APT) install -y --no-install-recommends prometheus; }; \
	  if [ -d /run/systemd/system ]; then $(SUDO) systemctl disable --now prometheus || true; fi; }

test: protos chromium zookeeper promtool ## run the tests against real PostgreSQL, Redis and ClickHouse; PYTEST_ARGS=... is passed on
	$(BIN)/linkpulse stack clickhouse
	@echo "$(BIN)/python -m pytest $(PYTEST_ARGS)"
	@status=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make: pytest collected no tests" >&2; status=0; fi; \
	exit $$status

# The end-to-end suite again on the dev ClickHouse cluster (ZooKeeper, 2 shards x 2 replicas,
# started if needed and left running) with two copies of every gRPC service and of the flusher,
# then the cluster suite: a replica killed, a shard down, a Redis Cluster of 3 nodes.
CLUSTER_TESTS := tests/e2e tests/cluster
test-cluster: protos chromium zookeeper ## the end-to-end suite and cluster faults on the dev ClickHouse cluster and a Redis Cluster
	@echo "LINKPULSE_TEST_CLUSTER=1 $(BIN)/python -m pytest -o addopts=-ra $(CLUSTER_TESTS) $(PYTEST_ARGS)"
	@status=0; LINKPULSE_TEST_CLUSTER=1 $(BIN)/python -m pytest -o addopts=-ra $(CLUSTER_TESTS) \
	  $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make: pytest collected no tests" >&2; status=0; fi; \
	exit $$status

fuzz: protos ## the model property test with FUZZ_EXAMPLES (400) random examples; PYTEST_ARGS=... is passed on
	$(BIN)/linkpulse stack clickhouse
	HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	  $(BIN)/python -m pytest tests/e2e/test_model.py $(PYTEST_ARGS)

# The fault suite, against a stack of its own (PostgreSQL cluster, Redis, ClickHouse, processes).
# CHAOS_REPORT=docs/reliability.md keeps the faults x outcome table; CHAOS_KNOWN=1 also runs the
# faults that fail on known defects. Overrides pyproject's --ignore of tests/chaos.
chaos: protos ## inject faults (kills, freezes, outages) into an isolated stack; exact counts, no 500
	$(BIN)/linkpulse stack clickhouse
	$(BIN)/python -m pytest -o addopts=-ra -p no:cacheprovider tests/chaos $(PYTEST_ARGS)

bench: protos ## time the routes (gateway vs ClickHouse vs PostgreSQL), live, export, wrk concurrency into docs/benchmarks.md (BENCH_CLICKS=N; BENCH_TENANTS=N adds the multi-tenant section; BENCH_CLUSTER=1 the same on the dev ClickHouse cluster)
	$(BIN)/linkpulse stack clickhouse
	$(BIN)/python -m tests.bench

lint: protos ## ruff check and mypy over services, gateway and workers
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/mypy $(LINT_DIRS)

clean: ## stop the stack (ClickHouse and the dev cluster included) and remove the run directory
	@if [ -x $(BIN)/linkpulse ]; then $(BIN)/linkpulse stack down --all >/dev/null || true; fi
	rm -rf $(RUN_DIR)
