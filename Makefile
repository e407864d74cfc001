# Two commands: `make demo` opens the dashboard on the built-in demo platform,
# `make test` runs lint, type check and the whole suite. Both create .venv when missing.
# Two stamps: `make demo` installs the runtime only (a new user waits for nothing they do not
# run); `make test` adds the test extras (pytest, ruff, mypy...) on top.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed-test

.PHONY: demo test lint typecheck pytest bench clean

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(RUNTIME)
	$(BIN)/opsdash demo

lint: $(STAMP)
	$(BIN)/ruff check opsdash tests bench
	$(BIN)/ruff format --check opsdash tests bench
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
