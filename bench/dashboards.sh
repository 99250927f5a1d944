#!/usr/bin/env bash
# Demo and dashboard benchmark.
#  1. Times `wangban demo` (release) from start to "ready" (target: 60 s).
#  2. Logs in as leader, qc, operator and admin and requests every page they may
#     see N times after one warm-up request, printing p50/p95 round trip (curl,
#     loopback) and page weight (targets: p95 under 100 ms, under 200 KB), and the
#     first (cold) request of each page, among them two drill-downs (a district,
#     a channel) that the warm-up did not compute.
#  3. With INFLATE=K (default 35), stops the demo, makes every case of the
#     current snapshot K distinct copies with bench/inflate.py (the demo's
#     ~290,000 cases become ~10,000,000 with the same distribution; QC findings
#     and evaluations too), rewrites each month as one file with
#     `wangban warehouse compact`, restarts `wangban serve` on it
#     and measures again, plus `wangban kpi online-rate --by business_type,month`
#     (target 0.5 s) and the service's peak memory (target 1 GiB).
#  4. At both sizes: `wangban report monthly` for last month (whole process,
#     target under 3 s and 1 GiB at 10 million cases) and the gap analysis API
#     `/api/kpi/online-rate/gap` (p50/p95); the overview (measured above)
#     carries the gap analysis.
# Usage: bench/dashboards.sh [N]   (default 30; INFLATE=0 skips step 3)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
N="${1:-30}"
INFLATE="${INFLATE:-35}"
cargo build --release -q -p wangban
BIN="$CARGO_TARGET_DIR/release/wangban"
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
START=$(date +%s.%N)
"$BIN" demo --dir "$WORK/demo" --listen "127.0.0.1:$PORT" > "$WORK/out" 2> "$WORK/err" &
PID=$!
trap 'kill -INT $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 1200); do grep -q "wangban listening" "$WORK/out" 2>/dev/null && break; sleep 0.1; done
READY=$(date +%s.%N)
grep -q "wangban listening" "$WORK/out" || { cat "$WORK/err"; exit 1; }
python3 -c "print(f'demo ready in {$READY - $START:.1f} s (target 60 s)')"
grep -E '^\[' "$WORK/err" | tail -4 || true
PEAK=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
echo "demo process peak RSS so far: $((PEAK / 1024)) MiB"
BASE="http://127.0.0.1:$PORT"
DRILL_FROM=2025-01-01
password() { awk -v n="$1" '$1 == n && NF == 3 {print $3}' "$WORK/err"; }
measure() {
  local user="$1"; shift
  local jar="$WORK/jar-$user"
  curl -s -o /dev/null -c "$jar" -d "username=$user&password=$(password "$user")" "$BASE/login"
  for path in "$@"; do
    local cold
    cold=$(curl -s -o /dev/null -b "$jar" -w '%{time_total}' "$BASE$path")
    for _ in $(seq 1 "$N"); do
      curl -s -o /dev/null -b "$jar" -w '%{time_total} %{size_download} %{http_code}\n' "$BASE$path"
    done | python3 -c "
import sys
rows = [l.split() for l in sys.stdin]
t = sorted(float(r[0]) * 1000 for r in rows)
codes = {r[2] for r in rows}
p = lambda q: t[min(len(t) - 1, int(q * len(t)))]
print(f'{\"$user\":<9} {\"$path\":<12} first {float(\"$cold\") * 1000:7.1f} ms  p50 {p(0.5):6.1f} ms  p95 {p(0.95):6.1f} ms  {int(rows[0][1]) / 1024:6.1f} KB  status {\",\".join(sorted(codes))}')
"
  done
}
LAST_MONTH=$(python3 -c "import datetime; d=datetime.date.today().replace(day=1)-datetime.timedelta(days=1); print(d.strftime('%Y-%m'))")
report() {
  local config="$1"
  for _ in 1 2 3; do /usr/bin/time -f "report monthly --month $LAST_MONTH: %e s wall, %M KiB peak" \
    "$BIN" --config "$config" report monthly --month "$LAST_MONTH" --out "$WORK/report.xlsx" > /dev/null; done
  ls -l "$WORK/report.xlsx" | awk '{print "report workbook: " $5 " bytes"}'
}
pages() {
  measure leader / /types /qc /seizures /connectors /reports "/api/kpi/online-rate/gap?month=$LAST_MONTH"
  # Drill-downs no warm-up computed: their "first" is a query on the snapshot.
  measure leader "/?district=430405&from=$DRILL_FROM" "/types?channel=4&from=$DRILL_FROM"
  measure qc /qc '/qc/cases?category=DBNR'
  measure operator /my/cases
  measure admin /audit
}
echo "== pages, demo warehouse ($(python3 -c "import json,glob; m=json.load(open(glob.glob('$WORK/demo/warehouse/snapshots/*/manifest.json')[-1])); print(sum(e['rows'] for e in m['cases'].values()))") cases)"
pages
report "$WORK/demo/wangban.toml"
[ "$INFLATE" -gt 1 ] || exit 0

kill -INT $PID; wait $PID || true
SNAP="$WORK/demo/warehouse/snapshots/$(cat "$WORK/demo/warehouse/CURRENT")"
python3 -c "import duckdb" 2>/dev/null || pip install -q duckdb
python3 bench/inflate.py "$SNAP" "$INFLATE"
CONFIG="$WORK/demo/wangban.toml"
# A refresh of a store that large writes one file a month: rewrite the months so.
/usr/bin/time -f "warehouse compact: %e s wall, %M KiB peak" "$BIN" --config "$CONFIG" warehouse compact > /dev/null
SNAP="$WORK/demo/warehouse/snapshots/$(cat "$WORK/demo/warehouse/CURRENT")"
ROWS=$(python3 -c "import json; m=json.load(open('$SNAP/manifest.json')); print(sum(e['rows'] for e in m['cases'].values()))")
echo "== inflated: $ROWS case rows, $(du -sh "$SNAP/cases" | cut -f1) of Parquet, one file a month"
for _ in 1 2 3; do /usr/bin/time -f "kpi online-rate --by business_type,month: %e s wall, %M KiB peak" \
  "$BIN" --config "$CONFIG" kpi online-rate --from 2024-01-01 --to 2026-12-31 --by business_type,month --format csv > /dev/null; done
RUST_LOG=info "$BIN" --config "$CONFIG" serve --listen "127.0.0.1:$PORT" > "$WORK/out2" 2> "$WORK/err2" &
PID=$!
for _ in $(seq 1 300); do grep -q "wangban listening" "$WORK/out2" 2>/dev/null && break; sleep 0.1; done
# serve computes the pages' KPIs for a new snapshot in the background; wait for it.
for _ in $(seq 1 1200); do grep -q "dashboards warmed" "$WORK/err2" 2>/dev/null && break; sleep 0.1; done
grep "dashboards warmed" "$WORK/err2" | sed -E 's/.*(results=[0-9]+).*(ms=[0-9]+).*/warm-up after start: \1 \2/' || echo "no warm-up line"
echo "== pages, inflated warehouse"
DRILL_FROM=2025-02-01
pages
PEAK=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
echo "serve peak RSS over the inflated warehouse: $((PEAK / 1024)) MiB"
report "$CONFIG"
