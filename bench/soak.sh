#!/usr/bin/env bash
# Soak: a release `wangban serve` on a fresh SQLite store (with a demo
# warehouse for the dashboards) takes court pushes at 500 orders/s for
# SECONDS while a reader loads dashboard pages in a loop; the service's RSS is
# sampled every 5 s. Prints the push report (throughput, latency percentiles,
# statuses), the number of page loads and their statuses, and the RSS series
# with its first, last and largest value: memory should be flat.
# Usage: bench/soak.sh [SECONDS]   (default 600; the issue's soak is 10 minutes)
# Environment: WANGBAN_BIN=path runs that binary instead of building a release
# one (CI runs its debug build for 60 s); SOAK_RATE (default 500) orders/s.
# Exits 1 when the run fails its checks: a push answered other than 200 or 422
# (422: refused by the seizure rules), a transport error, a page load other than
# 200, under 90% of the rate held, or RSS growing by more than a quarter after warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
SECONDS_TO_RUN="${1:-600}"
RATE="${SOAK_RATE:-500}"
if [ -n "${WANGBAN_BIN:-}" ]; then
  BIN="$WANGBAN_BIN"
else
  cargo build --release -q -p wangban
  BIN="$CARGO_TARGET_DIR/release/wangban"
fi
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
  --count $((RATE * SECONDS_TO_RUN)) --rate "$RATE" --concurrency 64 --seed 9 | tee "$WORK/push"
kill "$READER" "$SAMPLER" 2>/dev/null || true
echo "== dashboard page loads: $(wc -l < "$WORK/pages"), statuses: $(sort "$WORK/pages" | uniq -c | tr '\n' ' ')"
STATUS=0
python3 - "$WORK/rss" "$WORK/push" "$WORK/pages" "$RATE" <<'PY' || STATUS=1
import re, sys
rss = [int(l) / 1024 for l in open(sys.argv[1]) if l.strip()]
push = open(sys.argv[2]).read()
pages = [l.strip() for l in open(sys.argv[3]) if l.strip()]
rate = float(sys.argv[4])
print("== serve RSS (MiB) every 5 s:", " ".join(f"{r:.0f}" for r in rss))
failures = []
if len(rss) > 2:
    settled = rss[len(rss) // 5]
    print(f"first {rss[0]:.0f}, after warm-up {settled:.0f}, last {rss[-1]:.0f}, largest {max(rss):.0f} MiB; "
          f"growth after warm-up {rss[-1] - settled:+.0f} MiB")
    if rss[-1] > settled * 1.25 + 16:
        failures.append(f"RSS grew from {settled:.0f} to {rss[-1]:.0f} MiB after warm-up")
held = re.search(r"([0-9.]+) orders/s", push)
if not held or float(held.group(1)) < 0.9 * rate:
    failures.append(f"the push rate held {held.group(1) if held else '?'} orders/s, under 90% of {rate:.0f}")
statuses = re.search(r"statuses \{([^}]*)\}", push)
for part in (statuses.group(1).split(",") if statuses else ["none: 1"]):
    code = part.split(":")[0].strip()
    if code not in ("200", "422"):
        failures.append(f"push answers with status {part.strip()}")
bad_pages = [p for p in pages if p != "200"]
if not pages or bad_pages:
    failures.append(f"{len(bad_pages)} of {len(pages)} page loads not 200")
for f in failures:
    print("SOAK FAILED:", f)
sys.exit(1 if failures else 0)
PY
kill -TERM "$PID"; wait "$PID" || true
exit $STATUS
