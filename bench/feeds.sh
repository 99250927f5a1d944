#!/usr/bin/env bash
# Partner-feed benchmark: serves two years of simulated flow (150,000 cases a
# year) with a release `wangban simulate --listen`, then reads the registry's
# whole case feed in pages of 5,000 and reports records per second.
# Usage: bench/feeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
cargo build --release -q -p wangban
BIN="$CARGO_TARGET_DIR/release/wangban"
OUT="$(mktemp)"
"$BIN" simulate --listen 127.0.0.1:0 --from 2024-01-01 --to 2025-12-31 --seed 1 > "$OUT" 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -f "$OUT"' EXIT
for _ in $(seq 1 300); do grep -q court_platform "$OUT" 2>/dev/null && break; sleep 0.1; done
BASE=$(sed -n 's/^registry //p' "$OUT")
python3 - "$BASE" <<'PY'
import json, sys, time, urllib.request
base = sys.argv[1]
for feed in ["cases", "qc-findings", "evaluations"]:
    cursor, records, started = "", 0, time.perf_counter()
    while True:
        with urllib.request.urlopen(f"{base}/{feed}?limit=5000&cursor={cursor}") as r:
            page = json.load(r)
        records += len(page["data"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    elapsed = time.perf_counter() - started
    print(f"{feed}: {records} records in {elapsed:.2f} s = {records / elapsed:,.0f} records/s (client parses JSON too)")
PY
