# The two commands of the README. Each creates .venv when missing and installs
# torch==2.13.0 (the CPU build on this machine's disk) *before* the package, so
# that the package's looser torch range never pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sklearn_s2au-installed

.PHONY: demo test install docs clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test,dask]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m sklearn_s2au demo

test: $(STAMP)
	$(PY) -m pytest -q

# The documentation site with the examples gallery (runs every examples/plot_*.py),
# offline, warnings as errors. Output: docs/_build/html/index.html
# OMP_NUM_THREADS=1: the examples' tiny fits gain nothing from threads, and spinning
# threads only slow them down when the cores are busy.
DOCS_STAMP := $(VENV)/.sklearn_s2au-docs-installed

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build *.egg-info
