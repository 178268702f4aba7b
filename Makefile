# Two commands do all the set-up on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# JAX's persistent compilation cache: on a CPU, XLA compilation costs more than most runs.
export JAX_COMPILATION_CACHE_DIR ?= $(HOME)/.cache/suppa_jax/xla

.PHONY: install install-runtime test test-current lint format demo docs clean

# The runtime stack only (what the library, the CLIs and the demo need) ...
install-runtime: $(VENV)/.runtime

$(VENV)/.runtime: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# ... and the test stack on top (PyTorch, pytest, ruff, the notebook runner, BM3D).
install: $(VENV)/.installed

$(VENV)/.installed: $(VENV)/.runtime requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

# The suite again on Python 3.12 with the newest JAX stack (requirements-current.txt), in its own
# environment: requirements.txt and requirements-test.txt with those pins replaced.
PYTHON_CURRENT ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
VENV_CURRENT ?= .venv-current

test-current: $(VENV_CURRENT)/.installed
	$(VENV_CURRENT)/bin/python -m pytest

$(VENV_CURRENT)/.installed: requirements.txt requirements-test.txt requirements-current.txt pyproject.toml
	test -x $(VENV_CURRENT)/bin/python || $(PYTHON_CURRENT) -m venv $(VENV_CURRENT)
	awk -F'==' 'FNR == 1 { file++ } /^(#|-r)/ { next } file == 1 { newest[$$1] = $$0; next } \
		{ print ($$1 in newest) ? newest[$$1] : $$0 }' \
		requirements-current.txt requirements.txt requirements-test.txt > $(VENV_CURRENT)/requirements.txt
	$(VENV_CURRENT)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_CURRENT)/bin/python -m pip install --quiet -r $(VENV_CURRENT)/requirements.txt
	$(VENV_CURRENT)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

demo: install-runtime
	$(PY) -m suppa_jax.demo

# The API reference from the docstrings, in docs/_build/html; any Sphinx warning fails it.
docs: $(VENV)/.runtime requirements-docs.txt
	$(PY) -m pip install --quiet -r requirements-docs.txt
	rm -rf docs/_build docs/api
	$(PY) -m sphinx -b html -W --keep-going -q docs docs/_build/html

clean:
	rm -rf $(VENV) $(VENV_CURRENT) .pytest_cache .ruff_cache docs/_build docs/api
