# Two commands for a newcomer: `make run` (the job on the sample) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark

.PHONY: run test check setup clean-output bench bench-quick bench-engines bench-allocator bench-ingest bench-mining

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The tests also run the Spark engine: pyspark is installed for them (not for `make run`).
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(SPARK_STAMP)

setup: $(STAMP)

## The nightly job on the embedded sample: writes output/latest.
run: $(STAMP)
	$(BIN)/basket run --config configs/default.toml

## Lint, format and types: ruff and mypy, configured in pyproject.toml.
check: $(SPARK_STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

## The checks, then the whole test suite.
test: check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-output:
	rm -rf output

## The benchmark suite (about 40 minutes) and its quick variant (under a minute).
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick

## The local and Spark engines on the same synthetic exports (about an hour with the 1 M-basket size; docs/spark.md).
bench-engines: $(SPARK_STAMP)
	$(BIN)/python benchmarks/engines.py

## Arrow's allocator: the command's jemalloc against mimalloc, whole runs (about 10 minutes).
bench-allocator: $(STAMP)
	$(BIN)/python benchmarks/allocator.py

## Read + clean + baskets against another revision (BASE=<git revision>), same answer required (about 5 minutes).
bench-ingest: $(STAMP)
	$(BIN)/python benchmarks/ingest.py --base $(BASE)

## The itemset stage by counting and by pyfim, and what mine.engine = "auto" chose (about 15 minutes).
bench-mining: $(STAMP)
	$(BIN)/python benchmarks/mining.py
