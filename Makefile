# gitops-tasks: the front door. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install system-deps run test lint bench chart clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install gitops-tasks with its dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

system-deps: ## install what the tests' real servers need (git, sshd, docker-registry) with apt, when root
	@scripts/system-deps.sh

run: install ## run the whole stack with the examples (embedded Redis unless GITOPS_TASKS_REDIS_URL is set)
	$(BIN)/python scripts/prepare_examples.py
	$(BIN)/gitops-tasks up -f examples/git

test: install system-deps ## run the test suite against real servers
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy
	$(BIN)/ruff check gitops_tasks beat_schedule tests benchmarks scripts
	$(BIN)/ruff format --check gitops_tasks beat_schedule tests benchmarks scripts
	$(BIN)/mypy

bench: install system-deps ## run the benchmarks and rewrite BENCHMARKS.md
	$(BIN)/python -m benchmarks.run

chart: ## render and lint the Helm chart and validate compose.yaml (installs helm-python-sdk in .venv-packaging)
	scripts/check-packaging.sh

clean: ## remove the virtualenv, caches and local state
	rm -rf $(VENV) .venv-packaging .pytest_cache .mypy_cache .ruff_cache .gitops-tasks *.egg-info
