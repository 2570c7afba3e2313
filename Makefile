# MASH Exchange: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BUF    := node_modules/.bin/buf

.PHONY: venv demo test lint protos check-protos buf-lint bench vendor clean

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
	$(BUF) lint
	$(BIN)/python -m pytest

lint: $(STAMP) $(BUF)
	$(BIN)/ruff check .
	$(BUF) lint

# Regenerate the committed stubs after editing protos/ (tests fail when they are stale).
protos: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=. --grpc_python_out=. --pyi_out=. protos/mash/v1/*.proto

# Refresh the vendored chart library (the version pinned in package.json) after changing it.
vendor: $(BUF)
	cp node_modules/chart.js/dist/chart.umd.min.js mash/console/static/vendor/chart.umd.min.js
	cp node_modules/chart.js/LICENSE.md mash/console/static/vendor/chart.js.LICENSE.txt

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .ruff_cache
