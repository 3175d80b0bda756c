# aioir — developer entry points. Everything a fresh machine needs is installed here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup test test-slow lint demo sheet clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The pinned CPU wheel first, so nothing below can pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

test: setup lint
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# Degrade the bundled sample photos, restore them with the shipped default model (with and
# without test-time adaptation) and write outputs/demo/ (images, grid.png, index.html, metrics).
demo: setup
	$(BIN)/aioir demo --output outputs/demo --overwrite

sheet: setup
	$(BIN)/python scripts/make_degradation_sheet.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache outputs
