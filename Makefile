# casenet: `make run` to start a dev server, `make test` to check everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run test lint types pytest schemas bench bench-quick demo clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install casenet with its dev tools

run: $(STAMP) ## Start the server on the embedded default (SQLite under ./var)
	$(BIN)/casenet serve

demo: $(STAMP) ## Seed a small network of agencies and print a token per worker
	$(BIN)/casenet demo

lint: $(STAMP) ## ruff: lint src, tests and benchmarks; src and benchmarks formatted
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src benchmarks

types: $(STAMP) ## mypy --strict on src/
	$(BIN)/mypy --strict src/casenet

pytest: $(STAMP) ## Every test: unit, integration, api, e2e; SQLite and PostgreSQL
	$(BIN)/pytest -q

test: lint types pytest ## Lint, types and every test

schemas: $(STAMP) ## Write schemas/events/*.json (and the OpenAPI copy) from the code
	$(BIN)/python -m casenet.schemas schemas

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@# The HTTP workload needs wrk to load the server (Python's own generator tops out
	@# near 400 req/s here, below the server); installed from Debian packages when root.
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get install -y -qq wrk >/dev/null; } \
		|| echo "note: wrk is not installed (apt-get install wrk); HTTP falls back to Python"
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) ## Benchmarks: ratios against ceilings measured in the same run
	$(BIN)/python -m benchmarks

bench-quick: $(BENCH_STAMP) ## The benchmarks at a smaller size (CI smoke)
	$(BIN)/python -m benchmarks --quick

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
