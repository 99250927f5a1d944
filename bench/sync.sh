#!/usr/bin/env bash
# Connector benchmark: serves one year of simulated flow (150,000 cases) with a
# release `wangban simulate --listen --write-config`, then times a full
# `wangban sync` of every connector (cases, QC findings, evaluations, housing
# files, banks, provident fund, court platform, then reconciliation) into a
# fresh SQLite file and into a fresh PostgreSQL database, then a second,
# incremental run that finds nothing new (rows/s, wall time and peak memory
# from /usr/bin/time).
# VOLUME=600000 serves four times the default year (about 1,000,000 records) to
# measure memory at scale (target: under 300 MB while syncing 1,000,000 records).
# Usage: [VOLUME=N] bench/sync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
PG_ADMIN="${WANGBAN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
cargo build --release -q -p wangban
BIN="$CARGO_TARGET_DIR/release/wangban"
WORK="$(mktemp -d)"
"$BIN" simulate --listen 127.0.0.1:0 --from 2025-01-01 --to 2025-12-31 --seed 1 --volume "${VOLUME:-150000}" --write-config "$WORK/sim.toml" > "$WORK/sim.out" 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do grep -q court_platform "$WORK/sim.out" 2>/dev/null && break; sleep 0.1; done
echo "== sqlite: full"
/usr/bin/time -f "wall %e s, peak %M KiB" "$BIN" --config "$WORK/sim.toml" --data "$WORK/data" sync --quiet
echo "== sqlite: incremental (nothing new)"
/usr/bin/time -f "wall %e s, peak %M KiB" "$BIN" --config "$WORK/sim.toml" --data "$WORK/data" sync --quiet | grep -c '"rows":0' 
DB="wangban_bench_sync_$$"
psql "$PG_ADMIN" -qc "CREATE DATABASE $DB"
echo "== postgres: full"
/usr/bin/time -f "wall %e s, peak %M KiB" "$BIN" --config "$WORK/sim.toml" --database-url "${PG_ADMIN%/*}/$DB" sync --quiet
psql "$PG_ADMIN" -qc "DROP DATABASE $DB WITH (FORCE)"
