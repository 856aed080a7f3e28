# fairsub — the two commands are `make demo` and `make test`.
# Both bootstrap what they need: a pinned uv in .tools/, then .venv/ from uv.lock.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
BIN := .venv/bin
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test lint typecheck unit system-deps bench screenshots clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on our CI
# machines), Python never caches it, and every process (each `fairsub` command, each web
# worker and email relay) compiled its libraries from source at start-up: `fairsub --help`
# took 1.5 s of CPU instead of 0.7 s.
.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

## demo: set up and run the whole product with demo data at http://127.0.0.1:8000
demo: .venv/.synced
	$(BIN)/fairsub demo

## system-deps: Debian's chromium and postgresql for the tests (installed when root)
system-deps:
	@bash scripts/system-deps.sh

## lint: ruff, formatting, import-linter
lint: .venv/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## typecheck: mypy (--strict on domain/ and services/)
typecheck: .venv/.synced
	$(BIN)/mypy

## unit: the fast tests only
unit: .venv/.synced
	$(BIN)/pytest tests/unit -q

## test: everything CI runs
test: .venv/.synced system-deps lint typecheck
	$(BIN)/pytest

## bench: the portal and billing benchmarks (figures printed, nothing asserted)
bench: .venv/.synced system-deps
	$(BIN)/python bench/portal.py
	$(BIN)/python bench/billing_run.py

## screenshots: regenerate the README's pictures of the portal
screenshots: .venv/.synced system-deps
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf .venv $(TOOLS) var .mypy_cache .ruff_cache
