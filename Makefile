# takeback: `make run` starts the local stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAGE ?= prod
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint typecheck unit integration browser bench package clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# axe-core for the accessibility checks in the browser tests.
AXE := tests/browser/node_modules/.package-lock.json
$(AXE): tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --silent

run: $(VENV)/.installed
	$(PY) manage.py run

test: $(VENV)/.installed $(AXE) lint typecheck
	$(PY) -m pytest -n 2 --dist loadfile tests

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed
	$(PY) -m mypy

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration

browser: $(VENV)/.installed $(AXE)
	$(PY) -m pytest tests/browser

bench: $(VENV)/.installed
	$(PY) bench/coldstart.py

package: $(VENV)/.installed
	$(PY) manage.py package --stage $(STAGE) --out dist/$(STAGE)

clean:
	rm -rf $(VENV) build dist outbox test-artifacts
