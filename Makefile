# worthy-batch: every target sets itself up. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

DATE  ?=
PLANS ?=

.DEFAULT_GOAL := help
.PHONY: help install test lint fmt local-run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv/ with the project and its dev tools (no-op when nothing changed)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "worthy-batch needs Python 3.11 or newer; found $$($(PYTHON) --version 2>&1). Set PYTHON=python3.11."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

test: install ## run the whole test suite (unit, integration, e2e)
	$(BIN)/python -m pytest

lint: install ## ruff and mypy --strict on the three packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy common planner executor

fmt: install ## format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

local-run: install ## both stages on this machine (DATE=YYYY-MM-DD, PLANS=N; default: latest market day, 2000)
	$(BIN)/worthy-batch local-run $(if $(DATE),--date $(DATE)) $(if $(PLANS),--plans $(PLANS))

clean: ## remove the virtualenv and local state (embedded database, caches)
	-$(BIN)/python -m common.embedded_pg stop 2>/dev/null
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
