# worthy-batch: every target sets itself up. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PACKAGES := common entry planner executor finalizer ops devkit

DATE    ?=
PLANS   ?=
FAIL_SYMBOLS ?=
SYMBOLS ?= 2000
PER_MINUTE ?= 120
PLAN    ?=
ARGS    ?=

# checkov pins boto3, botocore and others to versions the lock does not allow,
# so it lives in a venv of its own, built on first use (make lint).
TOOLS   := .venv-tools
CHECKOV_VERSION := 3.3.30
CHECKOV := $(TOOLS)/checkov/bin/checkov

.DEFAULT_GOAL := help
.PHONY: help install lock test lint fmt local-run local-ops psql reset-local bench bench-quotas image-test clean deploy smoke

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

lint: install $(CHECKOV) ## ruff, format, mypy --strict, the import contracts, dead code, cfn-lint, checkov, shellcheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(PACKAGES)
	$(BIN)/lint-imports
	$(BIN)/vulture $(PACKAGES) vulture_whitelist.py --min-confidence 60
	$(BIN)/cfn-lint infra/template.yaml
	$(CHECKOV) --file infra/template.yaml --framework cloudformation --compact --quiet --skip-download
	$(BIN)/shellcheck infra/*.sh

$(CHECKOV):
	@test -x $(TOOLS)/checkov/bin/python || $(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)

deploy: ## build, push, scan and deploy the stack through a change set (PLAN=1: show it only; ARGS='--profile P --region R ...', infra/deploy.sh --help)
	infra/deploy.sh $(if $(PLAN),--plan) $(ARGS)

smoke: install ## run the canary against the deployed stack (ARGS='--profile P --region R ...', infra/smoke-test.sh --help)
	infra/smoke-test.sh $(ARGS)

fmt: install ## format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Podman and mmdebstrap from Debian's packages (runc: podman's default crun cannot
# start a container on these machines' cgroups), installed when missing.
IMAGE_TEST_PACKAGES := podman runc catatonit mmdebstrap
image-test: install ## build docker/Dockerfile here (base from Debian packages) and play a day in it, each job a container as AWS Batch starts it
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v mmdebstrap >/dev/null \
	  && command -v catatonit >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	         --no-install-recommends $(IMAGE_TEST_PACKAGES) >/dev/null; }
	$(BIN)/python -m devkit.image_test $(IMAGE_TEST_ARGS)

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
	rm -rf $(VENV) $(TOOLS) .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
