# aioir — developer entry points. Everything a fresh machine needs is installed here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup browser test test-slow lint demo sheet serve-screenshot clean

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

# Headless Chromium from Debian's package, for the browser test of `aioir serve`
# (tests/apps/serve/test_browser.py): installed with apt-get only when missing, as root (as CI
# runs); elsewhere a note, and that test is skipped with the reason. AIOIR_CHROMIUM names another.
browser:
	@if [ -n "$$AIOIR_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 \
	   || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing chromium (Debian package) for the browser test"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || echo "make: chromium could not be installed: the browser test is skipped" >&2; \
	else \
	  echo "make: no chromium and no root apt-get to install it: the browser test is skipped" >&2; \
	fi

test: setup lint browser
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# Degrade the bundled sample photos, restore them with the shipped default model (with and
# without test-time adaptation) and write outputs/demo/ (images, grid.png, index.html, metrics).
demo: setup
	$(BIN)/aioir demo --output outputs/demo --overwrite

sheet: setup
	$(BIN)/python scripts/make_degradation_sheet.py

# docs/serve.png: the `aioir serve` page in headless Chromium, taken by its browser test.
serve-screenshot: setup browser
	AIOIR_SERVE_SCREENSHOT=docs/serve.png $(BIN)/python -m pytest -q tests/apps/serve/test_browser.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache outputs
