# The two commands of the README. Each creates .venv when missing and installs
# torch==2.13.0 (the CPU build on this machine's disk) *before* the package, so
# that the package's looser torch range never pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sklearn_s2au-installed

.PHONY: demo test install clean

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

clean:
	rm -rf $(VENV) build *.egg-info
