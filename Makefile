# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Both create .venv and install the package with torch==2.13.0 (the CPU wheel these machines have).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The released weights ship inside the package; $DYNAMIX_MODEL_DIR (optional) points at other checkpoints.

.PHONY: demo test test-fast docs lint format clean browser

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,sktime,darts,bench,docs,spark,dask,ray,app]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/dynamix demo --output-dir demo-output

# The app's browser test drives the distribution's Chromium (no browser download at test time): installed
# here when missing and apt-get can (as root); otherwise that one test skips and says why (in CI it fails).
browser:
	@if ! command -v chromedriver >/dev/null 2>&1; then \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
	  || echo "note: could not install chromium/chromium-driver; the app's browser test will skip (and fail in CI)"; fi

test: $(BIN)/.installed browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest -n 2 -q

# Everything but the tests marked slow (sktime's conformance suite, the quick benchmark run, long statistics).
test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

# The documentation site (mkdocs-material + mkdocstrings) into site/; `mkdocs serve` to browse it.
docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(BIN)/.installed
	$(BIN)/ruff check .

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) demo-output site .pytest_cache .ruff_cache
