# payengine — the two set-up commands are `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run demo test prometheus-tools lint typecheck imports check servers-stop clean bench bench-smoke bench-api wrk-tool loadtest bench-dayend bench-split bench-voucher bench-buffer bench-batch

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

## Start embedded PostgreSQL + Redis, migrate, seed demo data, start the channel simulators, serve on 127.0.0.1:8080.
## Ctrl-C stops all of it (PAYENGINE_KEEP_SERVERS=1 make run keeps PostgreSQL and Redis for a fast restart).
run: $(STAMP)
	$(BIN)/payengine serve --demo

## With `make run` going in another terminal: the scripted demo (wallet payment, refund, channel payment paid at
## the simulator until it succeeded).
demo: $(STAMP)
	$(BIN)/payengine demo

## The whole test suite (real PostgreSQL and Redis started by fixtures), then lint and types.
test: $(STAMP) prometheus-tools
	$(BIN)/python -m pytest
	$(MAKE) check

## promtool and prometheus (Debian's `prometheus` package), which tests/ops runs: installed when missing and
## we are root on a Debian-like machine; otherwise those tests skip and say how to install them.
prometheus-tools:
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
	else \
		echo "promtool/prometheus not found and not root: tests/ops will skip (apt-get install prometheus)"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check $(wildcard engine accounts buffer channels bench loadtests tests ops)

typecheck: $(STAMP)
	$(BIN)/mypy

## The layering the tree promises (contracts in pyproject.toml, docs/ARCHITECTURE.md).
imports: $(STAMP)
	$(BIN)/lint-imports

check: lint typecheck imports

## Benchmarks on fresh embedded servers (bench/README.md); the last stdout line is the headline JSON.
bench: $(STAMP)
	$(BIN)/python -m bench all

## Wallet payments over HTTP (64 clients, one hot merchant, 20 s) vs /bench/noop, with 1 then 2 API workers; one JSON line.
## Batched (PAYENGINE_BATCH_MAX=256) unless PAYENGINE_BATCH_MAX says otherwise (0: the per-payment path).
bench-api: $(STAMP) wrk-tool
	PAYENGINE_BATCH_MAX=$${PAYENGINE_BATCH_MAX:-256} $(BIN)/python -m bench.api_bench --concurrency 64 --duration 20 --workers 1,2

## wrk (Debian's package) drives bench-api from pre-signed requests; without it the Python client does.
wrk-tool:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; } || \
		echo "wrk not installed: bench-api uses the Python generator (apt-get install wrk)"

## Quick benchmark (< 60 s) that checks the money and prints ratios; never fails on speed (CI).
bench-smoke: $(STAMP)
	$(BIN)/python -m bench --smoke

## Day-end on 1,000,000 journal legs on a fresh embedded PostgreSQL; last line is the headline JSON.
bench-dayend: $(STAMP)
	$(BIN)/python -m bench.dayend_bench

## Hot merchant with split sub-accounts: sync 1/4/16 subs and buffered 1/16, side by side; one JSON line last.
bench-split: $(STAMP)
	$(BIN)/python -m bench.split_bench

## One hot merchant at 64 payers: sync vs buffered vs distinct, on loopback and with a 1 ms database; one JSON line.
bench-buffer: $(STAMP)
	$(BIN)/python -m bench buffer

## Hot merchant at 64 payers: sync vs buffered vs batched vs batched-direct (the in-process batcher), loopback and a 1 ms
## database, flushers running; one JSON line (batched_payments_per_s, batched_over_sync, ..._1ms, flush lag).
bench-batch: $(STAMP)
	$(BIN)/python -m bench batch

## Channel payments at 200 merchants against a 500±200 ms channel: async vs sync vouchers; one JSON line.
bench-voucher: $(STAMP)
	$(BIN)/python -m bench.voucher_bench --merchants 200

## Locust against the engine (started with the channel simulators if not running); see loadtests/README.md.
loadtest: $(STAMP)
	$(BIN)/python -m loadtests.run

## Stop the embedded servers left running in ./.payengine (PAYENGINE_KEEP_SERVERS=1, or `payengine servers start`)
servers-stop: $(STAMP)
	$(BIN)/payengine servers stop

clean:
	rm -rf $(VENV) .payengine build *.egg-info .pytest_cache .mypy_cache .ruff_cache
