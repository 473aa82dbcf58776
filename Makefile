# Storefront API. `make help` lists every target; CI (.ci/run) calls these too.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

REPO_ROOT := $(CURDIR)
HOST ?= 127.0.0.1
PORT ?= 8000
UV_VERSION := 0.13.9
# uv itself comes from PyPI (no release downloads here), into a private venv
# unless one is already on PATH.
TOOLS_DIR := $(REPO_ROOT)/.tools
UV ?= $(shell command -v uv 2>/dev/null || echo $(TOOLS_DIR)/uv/bin/uv)
VENV := $(REPO_ROOT)/.venv
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

export UV_PYTHON_DOWNLOADS := never

##@ Run

.PHONY: run
run: deps migrate ## Serve on http://127.0.0.1:8000 (HOST/PORT to change; embedded SQLite + in-process cache unless DATABASE_URL/REDIS_URL are set)
	$(RUN) uvicorn app.main:app --host $(HOST) --port $(PORT) --lifespan on --loop uvloop --http httptools --no-proxy-headers --no-access-log --log-config app/platform/log_config.json

.PHONY: migrate
migrate: deps ## Apply pending Alembic migrations to DATABASE_URL (default: ./storefront.db)
	$(RUN) alembic upgrade head

##@ Test

.PHONY: test
test: deps system-deps test-tools lint typecheck ## Lint, type-check, then unit, integration (real PostgreSQL + Redis, faults through Toxiproxy) and smoke tests
	TOXIPROXY_SERVER='$(TOXIPROXY_SERVER)' $(RUN) pytest tests/unit tests/integration tests/smoke $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: deps ## Unit tests only (no servers)
	$(RUN) pytest tests/unit $(PYTEST_ARGS)

.PHONY: lint
lint: deps ## ruff format check, ruff lint, the import layers of docs/architecture.md, shellcheck on every shell script
	$(RUN) ruff format --check app tests migrations bench
	$(RUN) ruff check app tests migrations bench
	$(RUN) lint-imports --no-cache
	@command -v shellcheck >/dev/null || $(MAKE) apt-install PACKAGES=shellcheck
	bash hack/shellcheck.sh

.PHONY: typecheck
typecheck: deps ## mypy --strict on app, tests and migrations
	$(RUN) mypy

.PHONY: fmt
fmt: deps ## Format and auto-fix
	$(RUN) ruff format app tests migrations bench
	$(RUN) ruff check --fix app tests migrations bench

##@ Measure

# The benchmark (bench/README.md). Load generators: wrk from Debian, vegeta
# built from its Go module into bin/ at this version.
VEGETA_VERSION := v12.13.0
VEGETA := $(REPO_ROOT)/bin/vegeta
BENCH := $(UV) run --frozen --group bench python bench/run.py
ROUNDS ?= 5
DURATION ?= 10

.PHONY: bench
bench: deps system-deps bench-tools ## Service vs a raw Starlette + asyncpg app doing the same work (ROUNDS, DURATION); writes bench/results/latest.*
	$(BENCH) --rounds $(ROUNDS) --duration $(DURATION)

.PHONY: bench-quick
bench-quick: deps system-deps bench-tools ## The same in about a minute, into bench/results/quick/
	$(BENCH) --quick

.PHONY: bench-profile
bench-profile: deps system-deps bench-tools ## py-spy on the service under each case: bench/results/profile.md
	$(BENCH) --profile --duration $(DURATION)

.PHONY: bench-overload
bench-overload: deps system-deps bench-tools ## 4x the pool's concurrency on a slow database: 2xx or a timely 503, never a 500
	$(BENCH) --overload

.PHONY: bench-sweep
bench-sweep: deps system-deps bench-tools ## Pool size x concurrency (8..256): bench/results/sweep.{md,png}
	$(BENCH) --sweep

.PHONY: bench-tracing
bench-tracing: deps system-deps bench-tools ## Tracing on (OTLP, 10% sampled) against off, side by side: bench/results/tracing.md
	$(BENCH) --tracing --rounds 3

.PHONY: bench-soak
bench-soak: deps system-deps bench-tools ## Mixed load for 5 minutes, then RSS per worker: bench/results/soak.{md,png}
	$(BENCH) --soak

.PHONY: bench-test
bench-test: deps system-deps bench-tools ## The end-to-end test of `bench/run.py --quick` (tests/bench)
	$(UV) run --frozen --group bench pytest tests/bench $(PYTEST_ARGS)

.PHONY: bench-tools
bench-tools: ## Install wrk (Debian) and build vegeta into bin/ when missing
	@command -v wrk >/dev/null || $(MAKE) apt-install PACKAGES=wrk
	@go version -m $(VEGETA) 2>/dev/null | grep -q 'vegeta/v12[[:space:]]*$(VEGETA_VERSION)' || { \
	  command -v go >/dev/null || { echo "vegeta is built from its Go module: install Go first" >&2; exit 1; }; \
	  echo "building vegeta $(VEGETA_VERSION) into bin/"; \
	  GOBIN=$(REPO_ROOT)/bin CGO_ENABLED=0 go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION); }

##@ Set-up

.PHONY: deps
deps: $(VENV)/.synced ## Install uv and the locked Python dependencies into .venv

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen
	@touch $@

$(TOOLS_DIR)/uv/bin/uv:
	@python3 -m venv --help >/dev/null 2>&1 || $(MAKE) apt-install PACKAGES=python3-venv
	python3 -m venv $(TOOLS_DIR)/uv
	$(TOOLS_DIR)/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.PHONY: system-deps
system-deps: ## Install PostgreSQL and Redis server binaries when missing (Debian, as root); tests start their own servers
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then $(MAKE) apt-install PACKAGES="$$missing"; fi

.PHONY: apt-install
apt-install:
	@if [ "$$(id -u)" -ne 0 ]; then echo "missing Debian packages: $(PACKAGES); install them as root" >&2; exit 1; fi
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $(PACKAGES)

.PHONY: clean
clean: ## Remove caches and the local SQLite database (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache storefront.db storefront.db-wal storefront.db-shm
	find app tests migrations -name __pycache__ -type d -prune -exec rm -rf {} +

# Each fragment includes hack/common.mk (shared variables) and says what it
# uses from the others; the order of these lines does not matter.
include hack/airgap/airgap.mk
include hack/image/image.mk
include hack/chart/chart.mk

##@ Help

.PHONY: help
help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} \
	  /^##@/ {printf "\n%s\n", substr($$0, 5); next} \
	  /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
