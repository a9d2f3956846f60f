# Quick start: `make pipeline` (set up + run the default offline workflow), `make test` (set up + run the tests).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup pipeline test lint docs

$(STAMP): requirements.txt requirements-nodeps.txt requirements-docs.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(VENV)/bin/pip install --quiet -r requirements-docs.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

pipeline: $(STAMP)
	$(VENV)/bin/snakemake --profile profiles/local --cores all

test: lint docs
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile --durations=10

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(VENV)/bin/snakemake --lint

# The documentation site, built strictly: a broken link or API reference fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
