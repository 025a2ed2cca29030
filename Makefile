# The README's two commands: `make run` and `make test`. Both set everything up first.
# The virtualenv's interpreter: the system's CPython when it is 3.11 or newer with venv (Debian's
# python3: the server does about a quarter more per second on it than on a source build without
# --enable-optimizations, such as pyenv's default; bench/README.md), else python3 from PATH.
# `make PYTHON=/path/to/python3` chooses; the virtualenv is rebuilt when the choice changes.
SYSTEM_PYTHON := $(shell /usr/bin/python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo /usr/bin/python3)
PYTHON ?= $(or $(SYSTEM_PYTHON),python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell echo "$(PYTHON)" | cat - pyproject.toml | cksum | cut -d' ' -f1)
PORT ?= 5000
# bpmn-js (npm, pinned in web/package-lock.json) is installed into web/node_modules and its viewer
# (case pages) and modeler (designer pages) copied to web/static/vendor/; both are git-ignored.
VIEWER := web/static/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js
MODELER := web/static/vendor/bpmn-js/bpmn-modeler.production.min.js
CATALOGS := $(patsubst %.po,%.mo,$(wildcard web/translations/*/LC_MESSAGES/messages.po))

.PHONY: run test lint bench setup database translations

$(STAMP): pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(VIEWER) $(MODELER) &: web/package.json web/package-lock.json
	@if command -v npm >/dev/null; then \
		cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error && cd .. && \
		mkdir -p $(dir $(VIEWER)) && \
		cp web/node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js \
		   web/node_modules/bpmn-js/dist/bpmn-modeler.production.min.js \
		   web/node_modules/bpmn-js/dist/assets/diagram-js.css \
		   web/node_modules/bpmn-js/dist/assets/bpmn-js.css \
		   web/node_modules/bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css $(dir $(VIEWER)); \
	else echo "setup: npm not found; case pages will show no BPMN diagram and designers no modeler"; fi

web/translations/%/LC_MESSAGES/messages.mo: web/translations/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -d web/translations -l $* -i $< -o $@

setup: $(STAMP) $(VIEWER) $(MODELER) $(CATALOGS)

# After changing UI strings: re-extract them and merge into the zh/en catalogs, then translate.
translations: setup
	$(BIN)/pybabel extract -F web/translations/babel.cfg -k lazy_gettext -k _l --no-location --sort-output \
		--project demozone -o web/translations/messages.pot .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations --ignore-obsolete --no-fuzzy-matching

database: setup
	$(BIN)/demozone init
	$(BIN)/demozone seed-demo

# Ends with the server on http://127.0.0.1:$(PORT)/ (gunicorn); a demo secret key is kept in instance/secret_key.
run: database
	$(BIN)/demozone serve --demo --host 127.0.0.1 --port $(PORT)

lint: setup
	$(BIN)/ruff check engine web tests bench

test: setup lint
	$(BIN)/python -m pytest -q

bench: database
	$(BIN)/python bench/engine_bench.py
