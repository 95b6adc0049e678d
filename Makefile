# Two commands: `make run` (prepare data, train a first model, start the bot) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install prepare train lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

## Install, download + verify the dataset, load the catalog, train a first model if none, start the bot.
run: $(STAMP)
	$(PY) -m bot

## Everything except starting the bot (what `make run` does before it needs the token).
prepare: $(STAMP)
	$(PY) -m bot --prepare-only

train: $(STAMP)
	$(PY) train.py

## The storage tests need PostgreSQL too: TEST_DATABASE_URL, or a throwaway local server that
## .ci/postgres.sh installs (Debian, as root) and starts on 127.0.0.1 (`.ci/postgres.sh stop` ends it).
test: $(STAMP)
	eval "$$(.ci/postgres.sh start)" && $(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

## `make bench` lists the benchmarks; `make bench BENCH=all` (or BENCH="serving catalog") runs them.
bench: $(STAMP)
	$(PY) -m benchmarks $(BENCH)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
