#!/usr/bin/env bash
# Demo and dashboard benchmark: times `wangban demo` (release) from start to
# "ready" (target: 60 s), then logs in as leadership, qc and admin and
# requests every page they may see N times, printing p50/p95 server round trip
# (curl, loopback) and page weight (target: p95 under 100 ms, under 200 KB).
# Usage: bench/dashboards.sh [N]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
N="${1:-30}"
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
grep -E '^\[' "$WORK/err" | tail -4
PEAK=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
echo "demo process peak RSS so far: $((PEAK / 1024)) MiB"
BASE="http://127.0.0.1:$PORT"
password() { awk -v n="$1" '$1 == n && NF == 3 {print $3}' "$WORK/err"; }
measure() {
  local user="$1"; shift
  local jar="$WORK/jar-$user"
  curl -s -o /dev/null -c "$jar" -d "username=$user&password=$(password "$user")" "$BASE/login"
  for path in "$@"; do
    curl -s -o /dev/null -b "$jar" "$BASE$path"   # warm
    for _ in $(seq 1 "$N"); do
      curl -s -o /dev/null -b "$jar" -w '%{time_total} %{size_download} %{http_code}\n' "$BASE$path"
    done | python3 -c "
import sys
rows = [l.split() for l in sys.stdin]
t = sorted(float(r[0]) * 1000 for r in rows)
codes = {r[2] for r in rows}
p = lambda q: t[min(len(t) - 1, int(q * len(t)))]
print(f'{\"$user\":<10} {\"$path\":<12} p50 {p(0.5):6.1f} ms  p95 {p(0.95):6.1f} ms  {int(rows[0][1]) / 1024:6.1f} KB  status {\",\".join(sorted(codes))}')
"
  done
}
measure leader / /types /qc /seizures /connectors
measure qc /qc '/qc/cases?category=ZL01'
measure admin /audit
