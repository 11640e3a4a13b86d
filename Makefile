# Godel developer tasks. `make demo` and `make test` are the two README commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install services test test-unit demo worker up down lint format mypy parser-report bench load-1 load-10 load-50 clean all

all: lint test

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

services:
	@bash scripts/services.sh

test: install services
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q -m unit

demo: install
	@bash scripts/demo.sh

worker: install
	$(BIN)/godel worker

up: install
	$(BIN)/godel up

down: install
	$(BIN)/godel down

lint: install
	$(BIN)/ruff check godel workers api cli tests
	$(BIN)/mypy

format: install
	$(BIN)/ruff format godel workers api cli tests
	$(BIN)/ruff check --fix godel workers api cli tests

parser-report: install
	$(PY) -m godel.intents.evaluate

bench: install services
	$(PY) bench/first_agent.py

# Load tests start their own Redis and stack; JSON reports land in loadtest/results/.
load-1: install
	$(PY) loadtest/run.py --teams 1

load-10: install
	$(PY) loadtest/run.py --teams 10

load-50: install
	$(PY) loadtest/run.py --teams 50

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
