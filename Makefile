# The README's two commands: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench setup database

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

database: setup
	$(BIN)/demozone init
	$(BIN)/demozone seed-demo

run: database
	$(BIN)/demozone serve

lint: setup
	$(BIN)/ruff check engine web tests bench

test: setup lint
	$(BIN)/python -m pytest -q

bench: database
	$(BIN)/python bench/engine_bench.py
