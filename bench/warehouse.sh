#!/usr/bin/env bash
# Warehouse benchmark: one simulated year (150,000 cases) served by a release
# `wangban simulate`, pulled with `wangban sync` into SQLite, then timed:
# a full `warehouse refresh`, a second (incremental) refresh with nothing
# changed, the online rate by type × month, and the same raw query in
# `wangban sql` and in DuckDB (Python package, installed if missing) over the
# same Parquet files. Wall time and peak memory from /usr/bin/time.
# Usage: bench/warehouse.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
cargo build --release -q -p wangban
BIN="$CARGO_TARGET_DIR/release/wangban"
WORK="$(mktemp -d)"
"$BIN" simulate --listen 127.0.0.1:0 --from 2025-01-01 --to 2025-12-31 --seed 1 --write-config "$WORK/sim.toml" > "$WORK/sim.out" 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do grep -q court_platform "$WORK/sim.out" 2>/dev/null && break; sleep 0.1; done
W=("$BIN" --config "$WORK/sim.toml" --data "$WORK/data")
"${W[@]}" sync --quiet > /dev/null
echo "== full refresh"
/usr/bin/time -f "wall %e s, peak %M KiB" "${W[@]}" warehouse refresh
echo "== incremental refresh, nothing changed"
/usr/bin/time -f "wall %e s, peak %M KiB" "${W[@]}" warehouse refresh
echo "== online rate by business type x month (whole process)"
/usr/bin/time -f "wall %e s, peak %M KiB" "${W[@]}" kpi online-rate --from 2025-01-01 --to 2025-12-31 --by business_type,month --format csv > /dev/null
QUERY="SELECT business_type, month, AVG(CASE WHEN online THEN 1.0 ELSE 0.0 END) AS rate, COUNT(*) AS n FROM cases WHERE in_scope GROUP BY business_type, month ORDER BY business_type, month"
echo "== raw query in wangban sql (whole process)"
/usr/bin/time -f "wall %e s, peak %M KiB" "${W[@]}" sql "$QUERY" --format csv > /dev/null
SNAP="$WORK/data/warehouse/snapshots/$(cat "$WORK/data/warehouse/CURRENT")"
python3 -c "import duckdb" 2>/dev/null || pip install -q duckdb
echo "== the same query in DuckDB (in process, best of 5, and whole process)"
python3 - "$SNAP" "$QUERY" <<'PY'
import sys, time, duckdb
snap, query = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(f"CREATE VIEW cases AS SELECT * FROM read_parquet('{snap}/cases/*/*.parquet', hive_partitioning = true)")
best = min((lambda t: (con.execute(query).fetchall(), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))
print(f"duckdb in-process best {best * 1000:.1f} ms")
PY
/usr/bin/time -f "wall %e s, peak %M KiB" python3 -c "
import duckdb,sys
con=duckdb.connect(); con.execute(\"CREATE VIEW cases AS SELECT * FROM read_parquet('$SNAP/cases/*/*.parquet', hive_partitioning = true)\")
con.execute(sys.argv[1]).fetchall()" "$QUERY"
