# Each target sets itself up: a fresh clone needs only python3 (>= 3.11) and make.
# Recipes are silent and set-up output goes to stderr: `make run` speaks MCP on stdout, nothing else may.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --upgrade pip >&2
	@$(BIN)/python -m pip install --quiet -e '.[test]' >&2
	@touch $@

## Serve MCP over stdio on the embedded SQLite default (created and migrated when the first client connects).
run: $(BIN)/.installed
	@$(BIN)/agent-memory-mcp

## Lint and type gates, then the whole test suite on SQLite and PostgreSQL (127.0.0.1:5432).
test: lint
	$(BIN)/python -m pytest

## The inner loop: lint, types and every test not marked slow (no subprocesses, no wheel build).
test-fast: lint
	$(BIN)/python -m pytest -m "not slow"

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check repository mcp_server migrations tests docs
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
