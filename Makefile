# Two commands do all set-up: `make run` (the default scenario) and `make test` (the suite).
# `make run` installs only what running needs (no torch, Ray, SB3 or dev tools);
# `make test` installs everything (the dev extra).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench check-light clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Running, maps and reports: the base install. --no-compile: Python compiles what it
# imports on first use, not the 5,000 modules of the stack (a sixth of the venv, a third
# of the install time).
$(BIN)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --no-compile -e .
	touch $@

# Everything: torch, SB3, Ray, PettingZoo, the test and lint tools.
$(BIN)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

run: $(BIN)/.installed-run
	$(BIN)/simcity run

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# The base install alone, in a throwaway venv: a day runs, and a checkpoint asks for torch
# in one line (exit 2) instead of a traceback.
LIGHT ?= /tmp/simcity-light-venv
check-light:
	rm -rf $(LIGHT)
	$(PYTHON) -m venv $(LIGHT)
	$(LIGHT)/bin/python -m pip install -q --no-compile .
	$(LIGHT)/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)"
	cd $(LIGHT) && bin/simcity run tiny --quiet > /dev/null
	cd $(LIGHT) && bin/simcity run tiny --quiet --policy checkpoint.pt; test $$? -eq 2
	rm -rf $(LIGHT)

bench: $(BIN)/.installed
	$(BIN)/python -m pip install -q -e '.[bench]'
	AEQ_SHOW_PROGRESS=FALSE $(BIN)/python bench/traffic_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
