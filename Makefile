# The two commands: `make dev` runs the platform, `make test` runs the tests.
VENV ?= .venv

.PHONY: setup dev test lint bench

setup:
	@VENV=$(VENV) scripts/setup.sh

dev: setup
	$(VENV)/bin/openfn dev

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

bench: setup
	$(VENV)/bin/python bench/inbox.py
