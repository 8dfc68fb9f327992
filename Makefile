# github-telemetry: `make` with no target lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHECKOV_STAMP := var/checkov/.installed
UV := $(VENV)/bin/uv
# Every lock lists each transitive dependency with its hashes, for any platform, for the
# images' Python; dev.lock comes first and the services' locks are held to its versions.
COMPILE := $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock"

.PHONY: help install test lint format run run-frontend run-backend demo report bench replay-poison recover backfill lock clean browser

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

# --no-deps: each lock is the whole closure, installed as written; pip check confirms it.
$(PY_STAMP): requirements/dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r requirements/dev.lock
	$(PY) -m pip check
	touch $@

$(UV):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$$(grep -E '^uv==' requirements/dev.txt)"

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV_STAMP): requirements/checkov.lock
	test -x var/checkov/bin/python || $(PYTHON) -m venv var/checkov
	var/checkov/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		--no-deps -r requirements/checkov.lock
	var/checkov/bin/python -m pip check
	touch $@

lock: $(UV) ## Regenerate requirements/*.lock from the *.txt pins (PyPI, or uv's cache when offline)
	$(COMPILE) requirements/dev.txt -o requirements/dev.lock || \
		$(COMPILE) --offline requirements/dev.txt -o requirements/dev.lock
	for service in frontend backend; do \
		$(COMPILE) -c requirements/dev.lock requirements/$$service.txt -o requirements/$$service.lock || \
		$(COMPILE) --offline -c requirements/dev.lock requirements/$$service.txt \
			-o requirements/$$service.lock || exit 1; \
	done
	$(COMPILE) requirements/checkov.txt -o requirements/checkov.lock || \
		$(COMPILE) --offline requirements/checkov.txt -o requirements/checkov.lock

install: $(PY_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP) ## Build .venv and checkov's venv from requirements/*.lock (hashes checked) and package.json

# The dashboard's browser test needs Chromium: installed as root with apt, else it skips (CI=true fails).
browser: ## Install headless Chromium (Debian's chromium) when root with apt
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium; \
	else echo "no Chromium, and not root with apt: the browser test will skip"; fi

test: install browser ## Run the whole test suite (starts its own Azurite)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install ## ruff (check and format) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

run: install ## Start Azurite, the frontend and the backend locally; Ctrl-C stops everything
	$(PY) -m tools.devstack

demo: install ## With `make run` going: send a demo day to its URL (or DEMO_URL) and check the summary (DEMO_ARGS="--seed N --yes")
	$(PY) -m tools.demo $(DEMO_ARGS)

report: install ## Summarize the local sink (var/telemetry.jsonl) and write the dashboard var/report.html
	$(PY) -m tools.report $(REPORT_FILE)

bench: install ## Benchmark frontend, backend and end to end against raw queue ceilings (BENCH_ARGS=--quick)
	$(PY) -m tools.bench $(BENCH_ARGS)

replay-poison: install ## Move <queue>-poison back to the queue (REPLAY_ARGS="--dry-run --older-than 2h --reason-contains X --limit N")
	$(PY) -m backend.replay $(REPLAY_ARGS)

run-frontend: install ## Run the frontend under gunicorn, configured from the environment and .env
	$(VENV)/bin/gunicorn --config frontend/gunicorn.conf.py 'frontend.app:create_app()'

run-backend: install ## Run the backend worker pool, configured from the environment and .env (TELEMETRY_SINK=file for the local file)
	$(PY) -m backend

recover: install ## Redeliver failed GitHub deliveries never exported (RECOVER_ARGS="--repo O/N --hook-id ID")
	$(PY) -m backend.recover $(RECOVER_ARGS)

backfill: install ## Enqueue past runs, jobs and steps from GitHub (BACKFILL_ARGS="--repo O/N --since DATE")
	$(PY) -m backend.backfill $(BACKFILL_ARGS)

clean: ## Remove the virtualenv, node_modules and var/
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
