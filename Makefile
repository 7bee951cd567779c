# Two commands for a new user:  `make demo`  and  `make test`. Both set up .venv from nothing first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser demo test lint format broker-up broker-down clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "fraudstream needs Python 3.10 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

setup: $(STAMP)  ## create .venv with the app and its test tools

browser:  ## Debian's chromium for the browser tests (Playwright drives it; they skip without one)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  echo "no chromium installed (needs root for apt-get): the browser tests will skip"

demo: $(STAMP)  ## run the whole system end to end (ARGS="--rows 5000 --keep-running" to change it)
	$(BIN)/fraudstream demo $(ARGS)

test: $(STAMP)  ## lint (code and the import contracts), then the whole suite (unit + integration on a real Kafka broker)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

broker-up: $(STAMP)
	$(BIN)/fraudstream kafka up

broker-down: $(STAMP)
	$(BIN)/fraudstream kafka down

clean:  ## remove local state (MLflow store, alert DB, broker data); keeps .venv and the jar cache
	rm -rf .fraudstream mlruns mlartifacts
