# Postdesk: `make run` starts a demo on SQLite; `make test` sets up and runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(CURDIR)/var
TEST_DATA_DIR := $(CURDIR)/.test-data
PG_TEST_URL ?= postgres://$(shell id -un)@127.0.0.1:5432/postdesk
APT_PACKAGES := dovecot-imapd chromium fonts-noto-cjk
# The shared mail corpora beside the checkout, or where this workplace keeps them for clones elsewhere.
POSTDESK_CORPORA ?= $(firstword $(wildcard $(CURDIR)/../shared/corpora) /work/shared/corpora)
export POSTDESK_CORPORA

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed ## create .venv and install Postdesk

install-dev: $(VENV)/.installed-dev ## install Postdesk with the test and lint tools

run: install ## set up SQLite in ./var, create the demo admin and mailbox, start Postdesk
	POSTDESK_DATA_DIR=$(DATA_DIR) $(BIN)/postdesk migrate --quiet
	POSTDESK_DATA_DIR=$(DATA_DIR) $(BIN)/postdesk demo
	POSTDESK_DATA_DIR=$(DATA_DIR) $(BIN)/postdesk run

system-packages: ## install the Debian packages the tests need (as root), or say how
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "!!! missing Debian packages:$$missing -- run: sudo apt-get install$$missing"; exit 1; fi; \
	fi

services: ## start PostgreSQL and Redis when they are down
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
	  echo "starting PostgreSQL"; pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start || true; }
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || { \
	  echo "starting Redis"; redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true; }
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	pg_isready -q -h 127.0.0.1 -p 5432 || echo "!!! PostgreSQL is not reachable on 127.0.0.1:5432: the PostgreSQL tests will FAIL"

lint: install-dev ## ruff, mypy and the import contract
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

test-sqlite: install-dev ## every test on SQLite (pure tests included)
	rm -rf $(TEST_DATA_DIR) && mkdir -p $(TEST_DATA_DIR)
	POSTDESK_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest -q -p no:cacheprovider -m "not postgres"

test-postgres: install-dev services ## the database tests again on PostgreSQL
	rm -rf $(TEST_DATA_DIR) && mkdir -p $(TEST_DATA_DIR)
	POSTDESK_DATA_DIR=$(TEST_DATA_DIR) DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -q -p no:cacheprovider -m "not pure and not e2e"

test: install-dev system-packages services lint test-sqlite test-postgres ## set up, lint, and run the suite on SQLite and PostgreSQL

bench-ingest: install-dev services ## ingest throughput on SQLite and PostgreSQL (figures, not pass/fail)
	$(BIN)/python bench/ingest.py

bench-parse: install-dev ## parsing and reply-split rates and quality against the stdlib and mail-parser-reply
	$(BIN)/python bench/parse.py

bench-corpus: install-dev ## every corpus: what Postdesk gets right, beside the stdlib and mail-parser-reply
	$(BIN)/python bench/corpus.py

bench-seed: install-dev services ## fill PostgreSQL database postdesk_bench with N=100000 conversations (N=1000000 for the published figures)
	$(BIN)/python bench/seed.py --conversations $(or $(N),100000) --reset

bench-workspace: install-dev services ## list and conversation page latency on the seeded database, beside OFFSET and COUNT(*)
	$(BIN)/python bench/workspace.py

bench-search: install-dev services ## search latency (rare, common, phrase; en and zh) on the seeded database, beside icontains
	$(BIN)/python bench/search.py --database-url postgres://$$(id -un)@127.0.0.1:5432/postdesk_bench

bench-load: install-dev services ## 100 simulated agents on two cores against the seeded database
	$(BIN)/python bench/load.py

bench-triage: install-dev ## classifier accuracy (5-fold CV on banking77), triage time per mail, 500 rules per mail
	$(BIN)/python bench/triage.py

bench-live: install-dev services ## SMTP accept to visible in chromium, one process on SQLite and scaled out on PostgreSQL + Redis
	$(BIN)/python bench/live_latency.py --scale-out

clean: ## remove the virtualenv, caches and test data (keeps ./var)
	rm -rf $(VENV) $(TEST_DATA_DIR) .mypy_cache .ruff_cache .pytest_cache src/*.egg-info

.PHONY: help install install-dev run system-packages services lint test-sqlite test-postgres test bench-ingest bench-parse bench-corpus bench-seed bench-workspace bench-search bench-load bench-live bench-triage clean
