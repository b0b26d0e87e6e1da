# Two entry points: `make run` (embedded product) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test test-fast lint bench

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m api.embedded

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow and not browser"

# type checking (pyproject.toml [tool.mypy]: strict for api/ and persistence/); not part of `make test`
lint: install
	$(PY) -m mypy --version >/dev/null 2>&1 || $(PY) -m pip install -q -e '.[lint]'
	$(PY) -m mypy

bench: install
	$(PY) bench/train_throughput.py
	$(PY) bench/api_load.py
