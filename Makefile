# Two entry points: `make run` (embedded product) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV ?= $(PYTHON) -m uv

.PHONY: install run test test-fast lint bench lock

# Exact versions from requirements.lock; torch is not in the lock: pyproject's pin picks the build this
# machine has (the CPU wheel on local disk here, the CUDA one in the Docker image).
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock -e '.[test]'
	touch $@

# Regenerate requirements.lock from pyproject.toml (needs uv: pip install uv). Every dependency and extra is
# pinned for CPython 3.11 on x86-64 Linux; torch (and the CUDA packages it would pull in) is left out.
lock:
	printf 'torch ; sys_platform == "never"\n' > .lock-overrides.txt
	$(UV) pip compile pyproject.toml --extra test --extra lint --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --override .lock-overrides.txt --no-header -o requirements.lock
	rm -f .lock-overrides.txt

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
