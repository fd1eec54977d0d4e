# ktsync: `make demo` runs the whole thing end to end, `make test` runs every check.
# Both set themselves up on a fresh machine: a virtualenv in .venv with the project installed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: install demo test lint typecheck unit pytest test-browser bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: install
	$(BIN)/ktsync demo

test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q

# The fast loop while editing (~15 s): no `slow` or `integration` test, no worker or ktsync process.
unit: install
	$(BIN)/pytest -q -m "not slow and not integration"

# The operator console in headless Chromium (tests/browser): Debian's chromium and chromium-driver,
# installed here when missing (the tests never download a browser; elsewhere they are skipped, with why).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

test-browser: install
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver)
	$(BIN)/pytest -q -m browser tests/browser

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
