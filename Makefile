# kernelflow: everything a fresh machine with Python >= 3.10 needs, behind two commands.
#   make demo   run the tutorial flow end to end
#   make test   install what the tests need and run the whole suite (notebooks included)
#   make test-browser   the live displays in JupyterLab, driven in Debian's chromium

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-browser test-fast bench lint format install clean graphviz

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "kernelflow needs Python >= 3.10, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,notebook]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

# The graph tests render with Graphviz's real `dot` program, a system package: install
# it (as root, with apt-get) where it is missing; nothing happens where it is there.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
		echo "Installing Graphviz (dot) for the graph tests"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq graphviz >/dev/null; \
		command -v dot >/dev/null 2>&1 || { echo "Could not install Graphviz: install it (graphviz) and retry"; exit 1; }; }

test: $(STAMP) graphviz
	$(BIN)/python -m pytest -q tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then $(BIN)/python -m pytest -q --nbmake notebooks; fi

# Debian's chromium (never a browser download) + Playwright's Python package + JupyterLab.
test-browser: $(STAMP) graphviz
	@[ -x /usr/bin/chromium ] || { \
		echo "Installing Debian's chromium for the browser test"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
		[ -x /usr/bin/chromium ] || { echo "Could not install chromium: install it and retry"; exit 1; }; }
	@$(BIN)/python -c 'import playwright, jupyterlab' 2>/dev/null || \
		$(BIN)/python -m pip install --quiet -e ".[browser]"
	KERNELFLOW_BROWSER_TEST=1 $(BIN)/python -m pytest -q tests/browser

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -x tests -m "not kernel"

# Every benchmark runs, even after one is over budget; the exit status says if any was.
bench: $(STAMP)
	@status=0; for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || status=1; done; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache demo-output
