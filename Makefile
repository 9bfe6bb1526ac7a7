# kernelflow: everything a fresh machine with Python >= 3.10 needs, behind two commands.
#   make demo   run the quickstart notebook headless; executed notebook + graphs in demo-output/
#   make test   install what the tests need and run the whole suite (notebooks included)
#   make lab    JupyterLab on the tutorial notebooks
#   make figures  redraw the README's figures in docs/
#   make test-browser   the displays in JupyterLab (live, then saved and reopened without a
#                       kernel), driven in Debian's chromium; screenshots in build/
#   make soak   ten minutes of flows and interrupts in one kernel (not part of make test)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo lab figures test test-browser test-fast test-oldest bench soak lint format install clean graphviz graphviz-if-root

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "kernelflow needs Python >= 3.10, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,notebook]"
	touch $(STAMP)

install: $(STAMP)

# The demo draws its graphs with Graphviz's `dot` where it can: installed here when we may
# (root, or sudo without a password); otherwise it writes their DOT source and says how.
demo: $(STAMP) graphviz-if-root
	$(BIN)/python examples/demo.py

graphviz-if-root:
	@command -v dot >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; } && \
		$(MAKE) --no-print-directory graphviz || \
		echo "Graphviz (dot) is not installed: the demo will write DOT source instead of SVG."

# JupyterLab on the tutorials (from the repository root, so demo-output/ is there too).
lab: $(STAMP)
	@$(BIN)/python -c 'import jupyterlab' 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root) notebooks/01_quickstart.ipynb

figures: $(STAMP) graphviz
	$(BIN)/python docs/make_figures.py

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
	$(BIN)/lint-imports  # the layers in pyproject.toml: nothing imports a layer above its own
	$(BIN)/python -m pytest -q tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then $(BIN)/python -m pytest -q --nbmake --nbmake-timeout=120 notebooks; fi

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
	KERNELFLOW_BROWSER_TEST=1 $(BIN)/python -m pytest -q tests/browser; status=$$?; \
		echo "Screenshots of every kernelflow output: build/browser-screenshots/ (look at them)"; \
		exit $$status

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -x tests -m "not kernel"

# The unit tests on the oldest Python pyproject.toml claims (3.10), in a venv of its own
# (.venv-3.10), where a python3.10 that runs is installed (on PATH, or one of pyenv's);
# nothing is downloaded otherwise.
OLDEST ?= $(shell for p in python3.10 $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10; do \
	"$$p" -c '' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
# The kernel tests, marked "kernel", are left out: on 3.10 ipykernel is 7.3 (7.4, which
# the pause form needs, needs 3.11).
test-oldest:
	@if [ -n "$(OLDEST)" ]; then \
		[ -x .venv-3.10/bin/python ] || $(OLDEST) -m venv .venv-3.10; \
		.venv-3.10/bin/python -m pip install --quiet --upgrade pip && \
		.venv-3.10/bin/python -m pip install --quiet -e ".[dev,notebook]" && \
		.venv-3.10/bin/python -m pytest -q tests -m "not kernel" -p no:cacheprovider; \
	else echo "No python3.10 on this machine: the tests on Python 3.10 are skipped."; fi

# Every benchmark runs, even after one is over budget; the exit status says if any was.
bench: $(STAMP)
	@status=0; for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || status=1; done; exit $$status

# Ten minutes of flows, failures, timeouts and Stop-button presses in one kernel (not in
# make test): fails on a hang, a lost result or memory growth. SOAK_SECONDS=120 for less.
soak: $(STAMP)
	$(BIN)/python tests/soak.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples docs
	$(BIN)/ruff format --check src tests benchmarks examples docs

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples docs

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache demo-output
