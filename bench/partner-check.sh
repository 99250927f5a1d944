#!/usr/bin/env bash
# Onboarding-kit benchmark: serves one year of simulated flow (150,000 cases a
# year) with a release `wangban simulate --listen`, then times `wangban partner
# check --kind registry` against it: every registry feed (cases, QC findings,
# evaluations) read to its end twice, with pages of 1000 and 997 records, every
# record decoded and checked (wall time and peak memory from /usr/bin/time).
# Target: under 60 s and under 300 MiB.
# Usage: [VOLUME=N] bench/partner-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
cargo build --release -q -p wangban
BIN="$CARGO_TARGET_DIR/release/wangban"
WORK="$(mktemp -d)"
"$BIN" simulate --listen 127.0.0.1:0 --from 2025-01-01 --to 2025-12-31 --seed 1 --volume "${VOLUME:-150000}" --write-config "$WORK/sim.toml" > "$WORK/sim.out" 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do grep -q court_platform "$WORK/sim.out" 2>/dev/null && break; sleep 0.1; done
URL="$(grep -o 'http://[^ "]*/registry/v1' "$WORK/sim.out" | head -n1)"
echo "== partner check --kind registry $URL"
/usr/bin/time -f "wall %e s, peak %M KiB" "$BIN" partner check --kind registry --base-url "$URL" --lang en --json "$WORK/report.json" | tail -n 25
