# Two entry points for a fresh machine: `make serve` and `make test`.
# Each creates .venv and installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test bench venv test-deps browser clean

$(BIN)/identity-gateway: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-deps: $(BIN)/identity-gateway pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/identity-gateway

test-deps: $(VENV)/.test-deps

serve: $(BIN)/identity-gateway
	GATEWAY_PUBLIC_URL=$${GATEWAY_PUBLIC_URL:-http://$(HOST):$(PORT)} $(BIN)/identity-gateway serve --host $(HOST) --port $(PORT)

# Browser tests drive Debian's chromium through Playwright (never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(VENV)/.test-deps browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks (never part of the test suite): see docs/performance.md.
bench: $(VENV)/.test-deps
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
