#!/usr/bin/env bash
# The PostgreSQL front end (crate pgfront) under analysts' load, release build.
# One simulated year (about 150,000 cases) is synced into SQLite and refreshed;
# with INFLATE=K each case is copied K times (K=67: about 10 million cases;
# bench/inflate.py) and the months compacted, as bench/warehouse.sh does. Then
# `serve` runs with [analytics] pg_listen and a qc account, and bench/pgwire.py
# measures, against that one process:
#   1. the online rate by business type x month through psql (whole psql
#      process: connect, SCRAM login, query, print), best and median of 10;
#   2. the rollup-answered COUNT(*) ... GROUP BY business_type, month over the
#      wire (psycopg, best of 5 after a warm-up) and DuckDB on the same
#      Parquet with the same SQL, side by side;
#   3. 50 connections at once, each running the overview's queries 3 times:
#      latencies and serve's peak memory (VmHWM);
#   4. a 1,000,000-row result streamed through a cursor: serve's resident
#      memory sampled every 100 ms while it streams.
# Usage: [INFLATE=67] bench/pgwire.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
cargo build --release -q -p wangban
BIN="$CARGO_TARGET_DIR/release/wangban"
WORK="$(mktemp -d)"
"$BIN" simulate --listen 127.0.0.1:0 --from 2025-01-01 --to 2025-12-31 --seed 1 --write-config "$WORK/sim.toml" > "$WORK/sim.out" 2>/dev/null &
SIM=$!
SERVE=""
trap 'kill $SIM $SERVE 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do grep -q court_platform "$WORK/sim.out" 2>/dev/null && break; sleep 0.1; done
W=("$BIN" --config "$WORK/sim.toml" --data "$WORK/data")
"${W[@]}" sync --quiet > /dev/null
"${W[@]}" warehouse refresh > /dev/null
kill $SIM
INFLATE="${INFLATE:-0}"
if [ "$INFLATE" -gt 1 ]; then
  python3 -c "import duckdb" 2>/dev/null || pip install -q duckdb
  SNAP="$WORK/data/warehouse/snapshots/$(cat "$WORK/data/warehouse/CURRENT")"
  echo "== inflating the snapshot ${INFLATE}x and compacting it"
  python3 bench/inflate.py "$SNAP" "$INFLATE" > /dev/null
  "${W[@]}" warehouse compact > /dev/null
fi
SNAP="$WORK/data/warehouse/snapshots/$(cat "$WORK/data/warehouse/CURRENT")"
PASSWORD="bench-password-$RANDOM$RANDOM"
WANGBAN_USER_PASSWORD="$PASSWORD" "${W[@]}" user add --name qc --role qc > /dev/null
# No connectors while it serves: the measured process does analysts' work only.
cat > "$WORK/serve.toml" <<TOML
data_dir = "$WORK/data"
[analytics]
pg_listen = "127.0.0.1:0"
TOML
"$BIN" --config "$WORK/serve.toml" serve --listen 127.0.0.1:0 > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVE=$!
for _ in $(seq 1 300); do grep -q "PostgreSQL clients" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/.*port=\([0-9]*\) .*/\1/p' "$WORK/serve.out" | head -n1)
python3 -c "import psycopg" 2>/dev/null || pip install -q "psycopg[binary]"
python3 -c "import duckdb" 2>/dev/null || pip install -q duckdb
python3 bench/pgwire.py "host=127.0.0.1 port=$PORT dbname=wangban user=qc password=$PASSWORD sslmode=disable" "$SERVE" "$SNAP"
