# MASH Exchange: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BUF    := node_modules/.bin/buf
# test processes: most tests wait on brokers, agents and browsers, so two share two cores well
TEST_WORKERS ?= 2

.PHONY: venv demo test lint protos check-protos buf-lint buf-breaking wheel-check bench vendor clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

$(BUF): package.json
	npm install --no-audit --no-fund --silent
	@touch $(BUF)

demo: $(STAMP)
	$(BIN)/mash demo

test: $(STAMP) $(BUF)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BUF) lint
	$(MAKE) --no-print-directory buf-breaking
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The protos stay wire-compatible with main (buf's FILE rules): against the local main branch,
# or origin/main in a CI clone; skipped, saying so, outside a git checkout or without main.
buf-breaking: $(BUF)
	@ref=$$(git rev-parse --verify --quiet main 2>/dev/null || \
	        git rev-parse --verify --quiet origin/main 2>/dev/null); \
	if [ -n "$$ref" ]; then \
	  echo "buf breaking --against main ($$ref)"; \
	  $(BUF) breaking --against ".git#ref=$$ref"; \
	else \
	  echo "buf breaking: skipped (not a git checkout with a main branch)"; \
	fi

lint: $(STAMP) $(BUF)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BUF) lint

# The deployment path as an agency takes it: build the wheel, install it (no extras, no dev
# tools) into a clean virtualenv, and run `mash` there; the core must not bring the OPA
# extra's aiohttp and requests. About 35 s with pip's cache warm.
WHEEL_CHECK := build/wheel-check
wheel-check: $(STAMP)
	rm -rf $(WHEEL_CHECK)
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w $(WHEEL_CHECK)/dist .
	$(PYTHON) -m venv $(WHEEL_CHECK)/venv
	$(WHEEL_CHECK)/venv/bin/python -m pip install --quiet $(WHEEL_CHECK)/dist/mash_exchange-*.whl
	$(WHEEL_CHECK)/venv/bin/mash --help >/dev/null
	$(WHEEL_CHECK)/venv/bin/mash agent --help >/dev/null
	@if $(WHEEL_CHECK)/venv/bin/python -c 'import aiohttp' 2>/dev/null || \
	    $(WHEEL_CHECK)/venv/bin/python -c 'import requests' 2>/dev/null; then \
	  echo "wheel-check: the core install pulled in aiohttp or requests"; exit 1; fi
	@echo "wheel-check: $$(ls $(WHEEL_CHECK)/dist) installs into a clean virtualenv and runs"

# Regenerate the committed stubs after editing protos/ (tests fail when they are stale): the
# messages with protoc's own .pyi, the gRPC stubs' .pyi with mypy-protobuf (for mypy).
protos: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=. --grpc_python_out=. --pyi_out=. \
	  --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=. \
	  protos/mash/v1/*.proto

# Refresh the vendored chart library (the version pinned in package.json) after changing it.
vendor: $(BUF)
	cp node_modules/chart.js/dist/chart.umd.min.js mash/console/static/vendor/chart.umd.min.js
	cp node_modules/chart.js/LICENSE.md mash/console/static/vendor/chart.js.LICENSE.txt

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules var build .pytest_cache .ruff_cache .mypy_cache
