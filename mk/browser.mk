# The storefront demo (demo/storefront) and its real-browser tests (tests/browser).
# Included by the root Makefile, which defines VENV and PYTHON; works alone too:
#   make -f mk/browser.mk test-browser [PYTHON=path/to/python]
# The browser tests need Node 20+, node_modules (npm ci) and Chromium (Debian: apt-get install chromium).

VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
STOREFRONT := demo/storefront
STOREFRONT_SOURCES := $(shell find $(STOREFRONT)/web -type f 2>/dev/null) $(STOREFRONT)/build.mjs

.PHONY: storefront-build storefront-watch storefront-redrop test-browser chromium

storefront-build: $(STOREFRONT)/dist/.build-stamp ## bundle the storefront (esbuild; `python -m storefront` also does it when stale)

$(STOREFRONT)/dist/.build-stamp: $(STOREFRONT_SOURCES) node_modules/.installed
	node $(STOREFRONT)/build.mjs

storefront-watch: node_modules/.installed ## rebuild the storefront bundle on every change (while `make run` serves it)
	node $(STOREFRONT)/build.mjs --dev --watch

storefront-redrop: install ## while `make run` runs: the demo drop opens again a minute from now
	$(PYTHON) -m storefront seed --redrop

test-browser: install storefront-build ## real-browser tests of the storefront (Playwright + Chromium, throwaway stack)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$$CHROMIUM_PATH" ] || { \
	  echo "test-browser: Chromium not found (make chromium, or set CHROMIUM_PATH)"; exit 1; }
	$(PYTHON) tests/browser/run.py

chromium: ## install Debian's Chromium for the browser tests (CI; needs root)
	apt-get update && apt-get install -y --no-install-recommends chromium
