#!/usr/bin/env bash
# Soak: a release `wangban serve` on a fresh SQLite store (with a demo
# warehouse for the dashboards) takes court pushes at 500 orders/s for
# SECONDS while a reader loads dashboard pages in a loop; the service's RSS is
# sampled every 5 s. Prints the push report (throughput, latency percentiles,
# statuses), the number of page loads and their statuses, and the RSS series
# with its first, last and largest value: memory should be flat.
# Usage: bench/soak.sh [SECONDS]   (default 600; the issue's soak is 10 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
SECONDS_TO_RUN="${1:-600}"
RATE=500
cargo build --release -q -p wangban
BIN="$CARGO_TARGET_DIR/release/wangban"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
DATA="$WORK/data"
# A small warehouse so the dashboards have figures: a simulated quarter, synced and refreshed.
"$BIN" simulate --listen 127.0.0.1:0 --from 2025-01-01 --to 2025-03-31 --volume 40000 --write-config "$WORK/sim.toml" > "$WORK/sim.out" 2>/dev/null &
SIM=$!
for _ in $(seq 1 300); do grep -q court_platform "$WORK/sim.out" 2>/dev/null && break; sleep 0.1; done
"$BIN" --config "$WORK/sim.toml" --data "$DATA" sync --quiet > /dev/null 2>&1
"$BIN" --data "$DATA" warehouse refresh > /dev/null 2>&1
kill "$SIM"
SECRET=$("$BIN" --data "$DATA" partner add --kind court --id soak-court --name 浸泡法院 | sed 's/.*"secret":"\([0-9a-f]*\)".*/\1/')
PASSWORD=soak-password-0123
"$BIN" --data "$DATA" user add --name leader --role leadership --password "$PASSWORD" > /dev/null
"$BIN" --data "$DATA" serve --listen 127.0.0.1:0 > "$WORK/serve.out" 2> "$WORK/serve.err" &
PID=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
BASE=$(sed -n 's/^wangban listening on //p' "$WORK/serve.out")
curl -s -o /dev/null -c "$WORK/jar" -d "username=leader&password=$PASSWORD" "$BASE/login"

# Dashboard traffic: every page in turn, as fast as one client goes, until stopped.
(
  while true; do
    for path in / /types /qc /seizures /connectors '/?district=430405' '/types?channel=3'; do
      curl -s -o /dev/null -b "$WORK/jar" -w '%{http_code}\n' "$BASE$path" >> "$WORK/pages"
    done
  done
) &
READER=$!
# Memory every 5 s.
(
  while kill -0 "$PID" 2>/dev/null; do
    awk '/VmRSS/ {print $2}' "/proc/$PID/status" >> "$WORK/rss"
    sleep 5
  done
) &
SAMPLER=$!

echo "== $SECONDS_TO_RUN s at $RATE orders/s with dashboard traffic"
"$BIN" simulate court-push --target "$BASE" --partner soak-court --secret "$SECRET" \
  --count $((RATE * SECONDS_TO_RUN)) --rate "$RATE" --concurrency 64 --seed 9
kill "$READER" "$SAMPLER" 2>/dev/null || true
echo "== dashboard page loads: $(wc -l < "$WORK/pages"), statuses: $(sort "$WORK/pages" | uniq -c | tr '\n' ' ')"
python3 - "$WORK/rss" <<'PY'
import sys
rss = [int(l) / 1024 for l in open(sys.argv[1]) if l.strip()]
print("== serve RSS (MiB) every 5 s:", " ".join(f"{r:.0f}" for r in rss))
if len(rss) > 2:
    settled = rss[len(rss) // 5]
    print(f"first {rss[0]:.0f}, after warm-up {settled:.0f}, last {rss[-1]:.0f}, largest {max(rss):.0f} MiB; "
          f"growth after warm-up {rss[-1] - settled:+.0f} MiB")
PY
kill -TERM "$PID"; wait "$PID" || true
