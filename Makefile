# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make dev   - create .venv, install Arco, build a demo catalog in ./.arco, scaffold
#                a demo project in ./demo, run it and serve the API (arco dev)
#   make test  - install test tools, run lint, types and the whole test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test lint types unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m arco.demo
	@[ -d demo ] || $(BIN)/arco init demo
	cd demo && ../$(BIN)/arco --store file://../.arco dev

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

types: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint types unit

bench: $(STAMP)
	$(BIN)/python benchmarks/tier1.py

clean:
	rm -rf $(VENV) .arco .mypy_cache .ruff_cache .pytest_cache
