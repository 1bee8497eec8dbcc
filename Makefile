# Each target sets itself up: a fresh clone needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench-startup bench-locomo clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## Serve MCP over stdio on the embedded SQLite default (created and migrated on first start).
run: $(BIN)/.installed
	$(BIN)/agent-memory-mcp

## Run the whole test suite on SQLite and PostgreSQL (127.0.0.1:5432).
test: $(BIN)/.installed
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
