# Loopline: `make run` starts the demo node, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/loopline.yaml
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: install run demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/loopline serve --config $(CONFIG) --host $(HOST) --port $(PORT)

demo: install
	$(BIN)/loopline serve --config $(CONFIG) --host $(HOST) --port $(PORT) --demo

test: install
	bash scripts/with-redis.sh $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check loopline tests bench
	$(BIN)/ruff format --check loopline tests bench
	$(BIN)/mypy loopline

bench: install
	bash scripts/with-redis.sh $(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
