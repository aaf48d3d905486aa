#!/usr/bin/env bash
# Every scenario for the record, one after another (about 20 minutes on 2 cores).
# Results land in bench/out/ (JSON and PNG per run) and bench/out/run-all.log.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
LOG=bench/out/run-all.log
mkdir -p bench/out
run() { echo "### $*" | tee -a "$LOG"; "$PY" bench/loadgen.py "$@" 2>&1 | tee -a "$LOG"; echo "exit ${PIPESTATUS[0]}" >> "$LOG"; }
date -u | tee "$LOG"
run trivial
run steady --targets
run spike --targets
run max --targets
run efficiency --targets
run batching
run soak --targets --env bench/soak.env
