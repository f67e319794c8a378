# Two commands do all set-up: `make run` (the default scenario) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/simcity run

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/python -m pip install -q -e '.[bench]'
	AEQ_SHOW_PROGRESS=FALSE $(BIN)/python bench/traffic_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
