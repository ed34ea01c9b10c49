# Each target does its own set-up: it creates .venv if missing and installs the
# pinned environment (constraints.txt) once, then runs.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.augkit-installed
ARGS   ?=

.PHONY: run test bench lint setup

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m experiments.ablate $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

bench: $(STAMP)
	@mkdir -p .benchmarks
	$(PY) -m pytest benchmarks -q --benchmark-columns=median,ops,rounds \
		--benchmark-json=.benchmarks/latest.json $(ARGS)
	$(PY) -m benchmarks.report .benchmarks/latest.json

lint: $(STAMP)
	$(PY) -m ruff check augkit experiments benchmarks tests
