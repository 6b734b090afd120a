# adserver: `make run` starts everything on embedded defaults, `make test` runs the suite.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi

.PHONY: help install run test migrate seed bench chaos load fuzz check-install lint format clean

help: ## Show this help
	@echo "adserver: lead-generation ad server for higher-education marketing"
	@echo
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo
	@echo "Settings come from the environment: DATABASE_URL, REDIS_URL, SECRET_KEY, ENCRYPTION_KEY,"
	@echo "ADMIN_API_KEY, PUBLIC_BASE_URL, PORT (see README.md). Unset, the embedded defaults are used."

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed ## Create .venv and install pinned dependencies

run: install ## Migrate, seed the demo catalog, start web, worker and beat (Ctrl-C stops all)
	$(PY) scripts/run.py

test: install ## Run the whole test suite (uses DATABASE_URL / REDIS_URL when set)
	$(PY) -m pytest $(PYTEST_ARGS)

migrate: install ## Apply database migrations
	$(FLASK) db upgrade

seed: install ## Add the demo catalog (idempotent)
	$(FLASK) seed-demo

bench: install ## Run the benchmarks and print their figures
	$(PY) bench/run_all.py

chaos: install ## Faults injected into the real stack (own PostgreSQL and Redis), then what held (a few minutes)
	$(PY) -m reliability.chaos

load: install ## Locust's realistic mix against gunicorn for LOAD_DURATION (3m): latency, errors, memory
	$(PY) -m reliability.load

fuzz: install ## Schemathesis, every check and phase, as every kind of key, against gunicorn (FUZZ_MAX_EXAMPLES, FUZZ_SEED)
	$(PY) fuzz/run.py

check-install: ## A clean venv from requirements.txt alone delivers one lead (needs PostgreSQL and Redis)
	$(PYTHON) scripts/check_production_install.py

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy adserver workers config

format: install ## Format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: ## Remove .venv, the embedded data in instance/ and the tests' screenshots
	-$(VENV)/bin/python -c "from pathlib import Path; from adserver.embedded_redis import stop; stop(Path('instance/redis.sock'))" 2>/dev/null
	rm -rf $(VENV) instance test-artifacts
