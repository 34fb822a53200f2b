# Every target does its own set-up: a virtualenv in .venv with the package installed (idempotent).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Test files run in parallel (one worker per CPU plus one, at most 4: tests/conftest.py), a whole
# file per worker (module fixtures are built once); `make test PYTEST_WORKERS=` runs them all in
# one process.
PYTEST_WORKERS ?= -n auto --maxprocesses 4 --dist loadfile

.PHONY: setup demo test lint bench lab clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lstm-suite demo $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/bench_layers.py

# JupyterLab on notebooks/ (installs the `notebooks` extra into the same virtualenv first).
lab: $(STAMP)
	test -x $(VENV)/bin/jupyter-lab || $(PY) -m pip install --quiet -e '.[notebooks]'
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
