# tapgate: `make run` serves a local gateway, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tapgate-installed
COVERAGE_ENV := COVERAGE_PROCESS_START=$(CURDIR)/pyproject.toml COVERAGE_FILE=$(CURDIR)/.coverage

.PHONY: install-js types lock semgrep mutation-check test-edge test-loaded test-systemd help run test test-compiled test-pure lint typecheck bench install prerequisites clean

help:
	@echo "make run    serve a gateway on 127.0.0.1:8080 with data under ./var: the game at /, the API at /docs"
	@echo "make test   lint, type-check, and the whole suite in both fastpath modes, with coverage"
	@echo "make bench  microbenchmarks (compiled and pure Python side by side)"
	@echo "make test-edge  the house-edge simulations (slow; CI runs them once)"
	@echo "make mutation-check  disable each protection in turn (tests/mutations); its test must fail"

prerequisites:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || { \
	  echo "tapgate needs Python 3.11 or newer as '$(PYTHON)'."; \
	  echo "  Debian/Ubuntu: sudo apt-get install python3"; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "Python's venv module is missing."; \
	  echo "  Debian/Ubuntu: sudo apt-get install python3-venv"; exit 1; }
	@command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || { \
	  echo "No C compiler: the Cython fastpath cannot be built."; \
	  echo "  Debian/Ubuntu: sudo apt-get install gcc"; \
	  echo "  (or TAPGATE_NO_EXTENSIONS=1 for the slower pure-Python twin)"; exit 1; }
	@test -f "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" || { \
	  echo "Python headers (Python.h) are missing: the Cython fastpath cannot be built."; \
	  echo "  Debian/Ubuntu: sudo apt-get install python3-dev"; exit 1; }

$(STAMP): requirements/lock.txt pyproject.toml setup.py fastpath/*.pyx fastpath/*.pxd
	@$(MAKE) --no-print-directory prerequisites
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
	  -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
	  --no-build-isolation -e .
	echo 'import coverage; coverage.process_startup()' > \
	  "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/tapgate-coverage.pth"
	TAPGATE_REQUIRE_EXTENSIONS=1 $(BIN)/python -c 'import fastpath, sys; \
	  sys.exit(0) if fastpath.IMPLEMENTATION == "c" else sys.exit("compiled fastpath did not build: " + str(fastpath.IMPORT_ERROR))'
	touch $(STAMP)

install: $(STAMP) $(NODE_STAMP)

# The browser client's checks: openapi-typescript and tsc, pinned in package-lock.json.
NODE_STAMP := node_modules/.tapgate-installed
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing (Debian: apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install-js: $(NODE_STAMP)

# gateway/static/openapi.d.ts from the current /openapi.json (a test keeps it current)
types: $(STAMP) $(NODE_STAMP)
	mkdir -p build
	$(BIN)/python -c 'import json; from gateway.http.openapi import openapi; print(json.dumps(openapi()))' > build/openapi.json
	node_modules/.bin/openapi-typescript build/openapi.json -o gateway/static/openapi.d.ts

var/admin.token:
	mkdir -p var
	umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))' > $@
	@echo "made a development admin token in $@ (tapgate wallet credit reads it)"

# The development markets: simulated feeds, BTC-USD at $65,000 in $10 bands, ETH-USD at
# $3,500 in $0.50 bands (prices in cents); any TAPGATE_* set in the shell wins.
DEV_MARKETS := TAPGATE_MARKET_BTC_USD_SIM_START_PRICE=6500000 TAPGATE_MARKET_BTC_USD_BAND=1000 \
  TAPGATE_MARKET_ETH_USD_SIM_START_PRICE=350000 TAPGATE_MARKET_ETH_USD_BAND=50

# the usual local frontend dev servers (Vite 5173, others 3000 and 8000) may use the API
DEV_ORIGINS := TAPGATE_CORS_ORIGINS=http://localhost:5173,http://127.0.0.1:5173,http://localhost:3000,http://localhost:8000

run: $(STAMP) var/admin.token
	env $(DEV_MARKETS) $(DEV_ORIGINS) TAPGATE_DEV_FUNDING=1 $$(env | grep '^TAPGATE_' | tr '\n' ' ') \
	  TAPGATE_ADMIN_TOKEN_FILE=var/admin.token TAPGATE_REQUIRE_EXTENSIONS=1 \
	  $(BIN)/tapgate serve --host 127.0.0.1 --port 8080

# tests/integration/test_faults.py preloads this into gateways to fail or stall disk writes
FAULTS := tests/faults/faultfs.so
$(FAULTS): tests/faults/faultfs.c
	$(CC) -shared -fPIC -O2 -Wall -Wextra -o $@ $< -ldl

# each patch in tests/mutations/ disables one protection; its tests must then fail
mutation-check: $(STAMP) $(FAULTS)
	$(BIN)/python tests/mutations/run.py

# Regenerate the hash-pinned locks from requirements/*.in; existing pins are kept unless
# UPGRADE=--upgrade. pip-tools lives in a venv of its own (it is not part of any lock).
PIP_TOOLS := pip-tools==7.6.2
COMPILE = .venv-lock/bin/pip-compile --quiet --allow-unsafe --generate-hashes --strip-extras \
  --no-emit-index-url --no-emit-find-links $(UPGRADE)
lock:
	test -x .venv-lock/bin/pip-compile || { $(PYTHON) -m venv .venv-lock && \
	  .venv-lock/bin/python -m pip install --quiet --disable-pip-version-check $(PIP_TOOLS); }
	$(COMPILE) --output-file=requirements/runtime-lock.txt requirements/runtime.in
	$(COMPILE) --output-file=requirements/lock.txt requirements/dev.in
	$(COMPILE) --output-file=requirements/semgrep-lock.txt requirements/semgrep.in

# semgrep lives in a venv of its own (its many pins must not move the gateway's)
SEMGREP_VENV := .venv-semgrep
$(SEMGREP_VENV)/.installed: requirements/semgrep-lock.txt
	test -x $(SEMGREP_VENV)/bin/python || $(PYTHON) -m venv $(SEMGREP_VENV)
	$(SEMGREP_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
	  -r requirements/semgrep-lock.txt
	touch $@

semgrep: $(SEMGREP_VENV)/.installed
	$(SEMGREP_VENV)/bin/semgrep scan --config tests/semgrep/rules.yml --metrics=off --error \
	  --quiet --disable-version-check gateway

lint: $(STAMP)
	$(BIN)/ruff check gateway fastpath tests bench setup.py
	$(BIN)/ruff format --check gateway fastpath tests bench setup.py
	@# its "nosec encountered (B603/B608), but no failed test" warnings are bandit's bug
	@# (PyCQA/bandit#1041: two calls on one line): without those nosec comments it fails
	$(BIN)/bandit -q -r gateway
	$(MAKE) --no-print-directory semgrep

typecheck: $(STAMP) $(NODE_STAMP)
	$(BIN)/mypy
	# the browser client's JavaScript against the types generated from /openapi.json
	node_modules/.bin/tsc -p tsconfig.json
	# the .pyi stubs against the compiled fastpath modules (built by make install)
	$(BIN)/python -m mypy.stubtest --allowlist fastpath/stubtest-allowlist.txt \
	  fastpath._bets_c fastpath._buckets_c fastpath._queue_c fastpath._verify_c

# The pure pass runs on two processes (pytest-xdist), a test file to a process, so a
# module's gateway fixture starts once (docs/TESTING.md: 1.6x less wall time, measured).
# The compiled pass stays on one: its gateways are an owner and two workers each, and with
# two pytest processes its tests that follow a scripted feed's wall clock failed in four
# of five CI runs (docs/TESTING.md).
PARALLEL ?= -n 2 --dist loadfile

# the compiled pass serves every subprocess gateway as an owner with two workers, the pure
# pass as one process (ADR 12): both modes, and the suite still runs twice, not four times
test-compiled: $(STAMP) $(NODE_STAMP) $(FAULTS)
	$(COVERAGE_ENV) TAPGATE_REQUIRE_EXTENSIONS=1 TAPGATE_WORKERS=2 $(BIN)/coverage run -m pytest

# the browser and Node tests run once, in the compiled pass: JavaScript does not change;
# nor do the shipped files under promtool and systemd-analyze, or the release as built
test-pure: $(STAMP) $(FAULTS)
	$(COVERAGE_ENV) TAPGATE_NO_EXTENSIONS=1 $(BIN)/coverage run -m pytest $(PARALLEL) \
	  -m 'not edge and not systemd and not browser and not once'

# The suite as a shared, busy CI machine runs it: both cores kept busy by stress-ng for as
# long as the suite runs (compiled mode; docs/TESTING.md records the runs).
test-loaded: $(STAMP) $(FAULTS)
	@command -v stress-ng >/dev/null || { echo "stress-ng is needed: apt-get install stress-ng"; exit 1; }
	stress-ng --cpu 2 --timeout 2h --quiet & load=$$!; \
	  TAPGATE_REQUIRE_EXTENSIONS=1 $(BIN)/pytest -p no:randomly; status=$$?; \
	  kill $$load; wait $$load 2>/dev/null; exit $$status

# install.sh under a real systemd: a booted Debian container (root, systemd-nspawn,
# mmdebstrap; the image is cached in /var/cache/tapgate-nspawn). Run once, not per mode.
test-systemd: $(STAMP)
	$(BIN)/pytest -m systemd -p no:randomly tests/deploy

# the house-edge simulations (tests/edge/): minutes of Monte-Carlo, run once, not per mode
test-edge: $(STAMP)
	$(BIN)/pytest -m edge -p no:randomly tests/edge

test: $(STAMP)
	rm -f .coverage .coverage.*
	$(MAKE) --no-print-directory lint typecheck
	$(MAKE) --no-print-directory test-compiled
	$(MAKE) --no-print-directory test-pure
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report --include='gateway/*' --fail-under=85

bench: $(STAMP)
	$(BIN)/pytest bench -p no:randomly --benchmark-only --benchmark-group-by=group -o addopts=""

clean:
	rm -rf $(VENV) $(SEMGREP_VENV) .venv-lock build *.egg-info fastpath/*.c fastpath/*.so .coverage .coverage.* htmlcov
