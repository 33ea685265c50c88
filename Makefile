# The README's commands. Each target sets up its own virtual environment first,
# so that a fresh machine needs nothing but Python 3.10+ and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: test-extended run train-setup test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamps record which extras are installed; they are redone when pyproject.toml changes.
$(VENV)/.serve: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[serve,cpu]'
	touch $@

$(VENV)/.train: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[serve,train,cpu]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev,cpu]'
	touch $@

run: $(VENV)/.serve  ## serve the bundled default model on http://$(HOST):$(PORT)
	$(VENV)/bin/gan-serve --host $(HOST) --port $(PORT) --model-dir models

train-setup: $(VENV)/.train  ## install the training tools (gan-train, gan-sample, ...) into .venv
	@echo "training tools installed: $(VENV)/bin/gan-train --help"

test: $(VENV)/.dev  ## the test suite, on the CPU (about eight minutes on 2 cores)
	$(PY) -m pytest

test-extended: $(VENV)/.dev  ## the long integration runs left out of make test (CI runs both)
	$(PY) -m pytest -m extended

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.dev  ## speed tables under benchmarks/results/
	$(PY) benchmarks/serve_throughput.py
	$(PY) benchmarks/serve_sized.py
	$(PY) benchmarks/png_encoding.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/complete_latency.py models --model mnist

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
