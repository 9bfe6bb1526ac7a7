# kernelflow: everything a fresh machine with Python >= 3.10 needs, behind two commands.
#   make demo   run the tutorial flow end to end
#   make test   install what the tests need and run the whole suite (notebooks included)
#   make test-browser   the live displays in JupyterLab, driven in Debian's chromium

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-browser test-fast bench lint format install clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "kernelflow needs Python >= 3.10, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,notebook]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

test: $(STAMP)
	$(BIN)/python -m pytest -q tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then $(BIN)/python -m pytest -q --nbmake notebooks; fi

# Debian's chromium (never a browser download) + Playwright's Python package + JupyterLab.
test-browser: $(STAMP)
	@if [ ! -x /usr/bin/chromium ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; \
	fi
	@$(BIN)/python -c 'import playwright, jupyterlab' 2>/dev/null || \
		$(BIN)/python -m pip install --quiet -e ".[browser]"
	KERNELFLOW_BROWSER_TEST=1 $(BIN)/python -m pytest -q tests/browser

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -x tests -m "not kernel"

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache demo-output
