#!/usr/bin/env bash
# Court API benchmark: starts a release `wangban serve` on a fresh SQLite
# database and on a fresh PostgreSQL database, and measures with
# `wangban simulate court-push`:
#   1. sustained single-order pushes at full speed (orders/s),
#   2. latency percentiles at 500 orders/s,
#   3. one 500-order batch.
# Usage: bench/court-push.sh [COUNT]   (needs PostgreSQL at $WANGBAN_BENCH_POSTGRES, default local)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
COUNT="${1:-20000}"
PG_ADMIN="${WANGBAN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
cargo build --release -q -p wangban
BIN="$CARGO_TARGET_DIR/release/wangban"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

run_backend() {
    local name="$1" url="$2"
    echo "== $name"
    local secret
    secret=$("$BIN" --database-url "$url" partner add --kind court --id bench-court --name 基准法院 | sed 's/.*"secret":"\([0-9a-f]*\)".*/\1/')
    "$BIN" --database-url "$url" serve --listen 127.0.0.1:0 > "$WORK/$name.out" 2> "$WORK/$name.err" &
    local pid=$!
    for _ in $(seq 1 100); do grep -q listening "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
    local target
    target=$(sed -n 's/^wangban listening on //p' "$WORK/$name.out")
    echo "-- sustained single-order pushes, 32 in flight"
    "$BIN" simulate court-push --target "$target" --partner bench-court --secret "$secret" --count "$COUNT" --concurrency 32 --seed 1
    echo "-- 500 orders/s for 20 s"
    "$BIN" simulate court-push --target "$target" --partner bench-court --secret "$secret" --count 10000 --rate 500 --concurrency 64 --seed 2
    echo "-- one batch of 500"
    "$BIN" simulate court-push --target "$target" --partner bench-court --secret "$secret" --count 500 --batch 500 --concurrency 1 --seed 3
    kill -TERM "$pid"; wait "$pid" || true
}

run_backend sqlite "sqlite://$WORK/bench.db"
DB="wangban_bench_$$"
psql "$PG_ADMIN" -qc "CREATE DATABASE $DB"
run_backend postgres "${PG_ADMIN%/*}/$DB"
psql "$PG_ADMIN" -qc "DROP DATABASE $DB WITH (FORCE)"
