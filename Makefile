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

test: setup lint
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

demo: setup
	@echo "make demo arrives with the shipped default model (issue: 'The shipped default model and make demo')."
	@echo "Meanwhile: $(BIN)/aioir --help"
	$(BIN)/aioir --help

sheet: setup
	$(BIN)/python scripts/make_degradation_sheet.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache outputs
