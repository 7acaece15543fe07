# Probity: two commands for a new machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP    := $(PY) -m pip --disable-pip-version-check
LOCK   := requirements/constraints.txt
APP    := $(VENV)/.installed-app
TESTS  := $(VENV)/.installed-test

.PHONY: install install-test run test check bench demo lock screenshots clean installer installer-test wheelhouse

install: $(APP)

$(APP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Probity needs Python 3.11 or newer; set PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24"
	$(PIP) install --quiet -c $(LOCK) -e .
	$(PY) -m engine.demo
	@touch $@

install-test: $(TESTS)

$(TESTS): $(APP)
	$(PIP) install --quiet -c $(LOCK) -e ".[test,peers]"
	@touch $@

run: install
	@bash installer/ensure-system-libs.sh --gui
	$(PY) main.py --demo

test: check
	bash installer/ensure-system-libs.sh
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# Lint, types and layers (import-linter contracts in pyproject.toml); part of `make test`.
check: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install-test
	$(PY) -m bench

demo: install
	$(PY) -m engine.demo --force

# PNGs of every pane under docs/screenshots/, rendered offscreen.
screenshots: install
	QT_QPA_PLATFORM=offscreen $(PY) docs/screenshots.py

# -- installers (docs/install.md) ------------------------------------------------------------------------
# FLAVOUR=cpu (default) or cuda: which torch build the bundle carries (cuda: build where its wheels can be fetched).
FLAVOUR ?= cpu

# The one-folder bundle, the .deb and .tar.gz with install.sh, the SBOM, the licence list and SHA256SUMS, in dist/.
installer:
	bash installer/build.sh $(FLAVOUR)

# Install what `make installer` built into scratch folders and use it with no network, under Xvfb (builds first if needed).
installer-test:
	bash installer/installer-test.sh $(FLAVOUR)

# Every pinned wheel for Linux and Windows x86-64, CPython 3.11 and 3.12, in wheelhouse/ (for offline pip installs).
wheelhouse: install
	$(PY) installer/wheelhouse.py

# Re-resolve the pinned set (needs the registry); review the diff before committing.
lock:
	rm -rf /tmp/probity-lock && $(PYTHON) -m venv /tmp/probity-lock
	/tmp/probity-lock/bin/pip install --quiet -e ".[test,peers,packaging]"
	{ head -n 2 $(LOCK); /tmp/probity-lock/bin/pip freeze --exclude-editable | sed 's/+cpu$$//'; } > $(LOCK).new && mv $(LOCK).new $(LOCK)

clean:
	rm -rf $(VENV) build *.egg-info resources/demo .pytest_cache
