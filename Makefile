# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make dev   - create .venv, install Arco, build a demo catalog in ./.arco, scaffold
#                a demo project in ./demo, run it and serve the API and web UI (arco dev;
#                the UI is built with npm when Node.js is present: make ui)
#   make test  - install test tools, run lint, types and the whole test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test lint types unit bench clean ui ui-if-node

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP) ui-if-node
	$(BIN)/python -m arco.demo
	@[ -d demo ] || $(BIN)/arco init demo
	cd demo && ../$(BIN)/arco --store file://../.arco dev

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/ruff check src tests benchmarks tools

types: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint types ui-if-node unit

# The web UI: Vite builds web/ into src/arco/web/static/ (package data, gitignored).
UI_INDEX   := src/arco/web/static/index.html
UI_SOURCES := web/package.json web/package-lock.json web/index.html web/vite.config.ts \
              web/tsconfig.json $(wildcard web/src/*)

# `npm ci` refuses a lock file without every platform's optional packages (rollup's
# native builds), and a registry mirror that only carries this platform's cannot
# produce one; `npm install --no-save` installs the locked versions and writes nothing.
ui:
	npm ci --prefix web --no-audit --no-fund || npm install --prefix web --no-save --no-audit --no-fund
	npm run --prefix web build

$(UI_INDEX): $(UI_SOURCES)
	$(MAKE) ui

# dev and test build the UI when Node.js is present; without it the browser tests
# skip (and fail under ARCO_REQUIRE_ALL=1, as in CI).
ui-if-node:
	@if command -v node >/dev/null 2>&1; then $(MAKE) $(UI_INDEX); \
	else echo "node not found: not building the web UI (make ui)"; fi

bench: $(STAMP)
	$(BIN)/python benchmarks/tier1.py

clean:
	rm -rf $(VENV) .arco .mypy_cache .ruff_cache .pytest_cache
