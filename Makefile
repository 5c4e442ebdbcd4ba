# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Both create .venv and install the package with torch==2.13.0 (the CPU wheel these machines have).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Official weights: $DYNAMIX_MODEL_DIR if set, else ../shared/models/dynamix when present, else the hub.
export DYNAMIX_MODEL_DIR ?= $(abspath $(wildcard ../shared/models/dynamix))

.PHONY: demo test lint format clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,sktime,darts,bench]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/dynamix demo --output-dir demo-output

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
