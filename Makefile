# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
# torch first, pinned: here it resolves to the CPU build on disk; a bare `torch` pulls CUDA (GBs).
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: run test install sysdeps demo serve lint typecheck bench models clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[dev,postgres,ray]"
	@touch $(STAMP)

install: $(STAMP)

## System packages the tests start for real (PostgreSQL server; Chromium for the web app's browser
## tests, Debian's build, never a downloaded one), from Debian, installed when missing.
## As root it runs apt-get itself; otherwise it says what to install.
sysdeps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	  else echo "PostgreSQL server missing: sudo apt-get install -y postgresql (PostgreSQL tests will be skipped)"; fi; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "Chromium missing: sudo apt-get install -y chromium (browser tests will be skipped)"; fi; \
	fi

## make run: install, migrate, generate + ingest + tag the demo data, then serve on :$(PORT)
run: $(STAMP)
	$(BIN)/voc demo --serve --port $(PORT)

## make test: install if needed, then the whole suite (slow tests included) with coverage
test: $(STAMP) sysdeps
	$(BIN)/ruff check feedback classifiers api jobs tests bench
	$(BIN)/python -m pytest -q --durations=25 --cov=feedback --cov=classifiers --cov=api --cov=jobs --cov-report=term:skip-covered

serve: $(STAMP)
	$(BIN)/voc serve --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check feedback classifiers api jobs tests bench

typecheck: $(STAMP)
	$(BIN)/mypy feedback api jobs

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/tagging.py

## make models: reproduce the shipped encoder, heads, calibration, metrics and cards from ../shared/data
models: $(STAMP)
	nice -n 5 $(BIN)/python -m classifiers.training.pipeline

clean:
	rm -rf var .pytest_cache .coverage
