#!/usr/bin/env bash
# Profile the gateway under the steady scenario with py-spy (wall-clock samples of every
# thread, idle ones excluded) and summarise where the time goes.
set -eu
cd "$(dirname "$0")/.."
mkdir -p bench/out
.venv/bin/python bench/loadgen.py steady --duration "${DURATION:-40}" > bench/out/profile-run.log 2>&1 &
harness=$!
pid=""
for _ in $(seq 1 120); do
  pid=$(pgrep -f "gateway serve --port" | head -n 1 || true)
  grep -q "run starts" bench/out/profile-run.log 2>/dev/null && [ -n "$pid" ] && break
  sleep 1
done
sleep "${WARMUP:-25}"   # signing ahead, then 10 s of traffic before sampling
.venv/bin/py-spy record -p "$pid" -d 20 -r 200 -f raw -o bench/out/profile.txt --threads --nonblocking
wait "$harness" || true
tail -n 6 bench/out/profile-run.log
.venv/bin/python bench/profile_summary.py bench/out/profile.txt
