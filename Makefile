# The two commands of the README, and the rest.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench clean sandbox

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/flowtest demo

# compileall first: the many `flowtest` subprocesses of the suite then load
# flowtest's bytecode instead of compiling it each (PYTHONDONTWRITEBYTECODE may
# be set). Three workers, a test file each at a time, even on two cores: most
# tests wait on their sandbox more than they compute. Then the tests marked
# `alone` (the soak) on their own (docs/performance.md, "The test suite").
test: $(STAMP)
	$(BIN)/ruff check flowtest tests scenarios benchmarks conftest.py
	$(BIN)/mypy
	$(BIN)/python -m compileall -q flowtest
	$(BIN)/python -m pytest -n 3 --dist loadfile -m "not alone" --flowtest-sandbox
	$(BIN)/python -m pytest -m alone --flowtest-sandbox

lint: $(STAMP)
	$(BIN)/ruff check flowtest tests scenarios benchmarks conftest.py

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/ground_truth.py --runs 20
	$(BIN)/python benchmarks/bench.py

sandbox: $(STAMP)
	$(BIN)/flowtest sandbox --write-config reports/sandbox.toml

clean:
	rm -rf $(VENV) build *.egg-info
