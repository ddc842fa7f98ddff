# worthy-batch: every target sets itself up. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PACKAGES := common planner executor finalizer ops devkit

DATE    ?=
PLANS   ?=
FAIL_SYMBOLS ?=
SYMBOLS ?= 2000
PER_MINUTE ?= 120

.DEFAULT_GOAL := help
.PHONY: help install lock test lint fmt local-run local-ops psql reset-local bench bench-quotas clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv/ with the project and its dev tools (no-op when nothing changed)

# requirements.lock pins the runtime dependencies (the image installs exactly
# these); using it as constraints here makes tests run against the same versions.
# The hashes are stripped: pip would demand hashes for the dev tools too.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "worthy-batch needs Python 3.11 or newer; found $$($(PYTHON) --version 2>&1). Set PYTHON=python3.11."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@sed -e '/--hash=/d' -e 's/ \\$$//' requirements.lock > $(VENV)/constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(VENV)/constraints.txt -e '.[dev]'
	@touch $(STAMP)

# A throwaway venv keeps pip-tools (and the pip it needs) out of .venv/.
# --build-deps-for wheel adds the build backend (pyproject's build-system.requires), so
# the image builds the project offline from the lock instead of through build isolation.
lock: ## refresh requirements.lock (runtime dependencies and build backend, exact pins with hashes) from PyPI
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT \
	  && $(PYTHON) -m venv "$$tmp/venv" \
	  && "$$tmp/venv/bin/pip" install --quiet --disable-pip-version-check pip-tools==7.6.2 \
	  && CUSTOM_COMPILE_COMMAND="make lock" "$$tmp/venv/bin/pip-compile" --quiet --upgrade \
	       --build-deps-for wheel \
	       --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
	       --output-file requirements.lock pyproject.toml
	@echo "requirements.lock refreshed; review the diff, then run make install and make test"

test: install ## run the whole test suite (unit, integration, e2e, reliability), on every core
	$(BIN)/python -m pytest -n auto --maxprocesses 4 $(PYTEST_ARGS)

lint: install ## ruff, format, mypy --strict, the import contracts, dead code, cfn-lint, shellcheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(PACKAGES)
	$(BIN)/lint-imports
	$(BIN)/vulture $(PACKAGES) vulture_whitelist.py --min-confidence 60
	$(BIN)/cfn-lint infra/template.yaml
	$(BIN)/shellcheck infra/*.sh

fmt: install ## format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

local-run: install ## both stages on this machine (DATE=YYYY-MM-DD, PLANS=N, FAIL_SYMBOLS=SYM,...)
	$(BIN)/worthy-batch local-run $(if $(DATE),--date $(DATE)) $(if $(PLANS),--plans $(PLANS)) $(if $(FAIL_SYMBOLS),--fail-symbols $(FAIL_SYMBOLS))

local-ops: install ## a worthy-batch command against local-run's state (ARGS="status", "verify", "finalize --run-id ID", ...)
	$(BIN)/python -m devkit.local_state ops $(ARGS)

psql: install ## psql on the local database (ARGS="-c 'SELECT ...'" passed to psql)
	$(BIN)/python -m devkit.local_state psql $(ARGS)

reset-local: ## start the demo over: stop the embedded database, remove .local/ (keeps .venv/)
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devkit.local_state reset; else rm -rf .local; fi

bench: install ## both stages vs the seed-style baseline and the COPY floor, chunk sizing, a child's fixed cost (PLANS=200000 SYMBOLS=2000 SIZING_PLANS=100000)
	$(BIN)/python -m tests.bench.main --plans $(or $(PLANS),200000) --symbols $(SYMBOLS) --sizing-plans $(or $(SIZING_PLANS),100000)

bench-quotas: install ## three children sharing one provider key vs the stub enforcing it (QUOTA_SYMBOLS=90 PER_MINUTE=120)
	$(BIN)/python -m tests.bench.quotas --symbols $(or $(QUOTA_SYMBOLS),90) --per-minute $(PER_MINUTE)

clean: ## remove the virtualenv and local state (embedded database, caches)
	-$(BIN)/python -m devkit.embedded_pg stop 2>/dev/null
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
