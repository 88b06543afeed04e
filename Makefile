# payengine — the two set-up commands are `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck check servers-stop clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

## Start embedded PostgreSQL + Redis, migrate, seed demo data, serve on 127.0.0.1:8080.
run: $(STAMP)
	$(BIN)/payengine serve --demo

## The whole test suite (real PostgreSQL and Redis started by fixtures), then lint and types.
test: $(STAMP)
	$(BIN)/python -m pytest
	$(MAKE) check

lint: $(STAMP)
	$(BIN)/ruff check engine accounts buffer channels bench loadtests tests

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

## Stop the embedded servers that `make run` left running in ./.payengine
servers-stop: $(STAMP)
	$(BIN)/payengine servers stop

clean:
	rm -rf $(VENV) .payengine build *.egg-info .pytest_cache .mypy_cache .ruff_cache
