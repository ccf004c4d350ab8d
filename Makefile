# Two entry points for a fresh machine: `make serve` and `make test`.
# Each creates .venv and installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: serve test venv test-deps clean

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
	$(BIN)/identity-gateway serve

test: $(VENV)/.test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
