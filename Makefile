# `make test` and `make demo` work on a fresh clone with nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cleanroom needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,demo]'
	@touch $(STAMP)

test: lint
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/cleanroom demo

bench: $(STAMP)
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

# ruff (style and bug patterns), mypy (types), import-linter (the layers in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check cleanroom normalize protocols examples bench tests
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
