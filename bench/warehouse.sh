#!/usr/bin/env bash
# Warehouse benchmark: one simulated year (150,000 cases) served by a release
# `wangban simulate`, pulled with `wangban sync` into SQLite, then timed:
# a full `warehouse refresh`, a second (incremental) refresh with nothing
# changed, a third after one day of changes (the cases with an event in the
# year's last 24 hours ingested again), the online rate by type × month
# (whole process), then side by
# side in one run: `wangban warehouse bench` (in process, best of 5 after a
# warm-up, no result cache) and DuckDB (Python package, installed if missing)
# on the same Parquet files and the same SQL, with the ratio per query.
# With INFLATE=K every case is then copied K times (K=67 gives about 10
# million cases; bench/inflate.py), each month rewritten as one file by
# `wangban warehouse compact` (the files a refresh of that store would write),
# and the queries run again on that.
# Every KPI of `Kpi::ALL` is timed as a whole process for the city and one
# district, one month and one year, beside DuckDB answering the same question
# from the raw tables (bench/kpi_matrix.py), on the year and on the inflated copy.
# Wall time and peak memory from /usr/bin/time.
# Usage: [INFLATE=67] bench/warehouse.sh
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
echo "== incremental refresh after one day of changes"
# What a day of partner pulls rewrites: every case with an event (submitted,
# accepted, verified, recorded, certificate prepared, issued, archived,
# closed) in the last 24 hours of the simulated year is ingested again now.
python3 - "$WORK/data/wangban.db" <<'PY'
import datetime, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
last = datetime.datetime.fromisoformat(db.execute("SELECT MAX(submitted_at) FROM cases").fetchone()[0])
# The store writes RFC 3339 text ("2025-12-31T07:59:00+00:00"), compared as text.
cutoff = (last - datetime.timedelta(days=1)).isoformat()
now = datetime.datetime.now(datetime.timezone.utc).isoformat()
assert now > db.execute("SELECT MAX(ingested_at) FROM cases").fetchone()[0]
events = ["submitted_at", "accepted_at", "verified_at", "recorded_at", "cert_prepared_at", "issued_at", "archived_at", "closed_at"]
where = " OR ".join(f"{c} >= ?" for c in events)
n = db.execute(f"UPDATE cases SET ingested_at = ? WHERE {where}", [now] + [cutoff] * len(events)).rowcount
months = db.execute(f"SELECT COUNT(DISTINCT substr(submitted_at, 1, 7)) FROM cases WHERE ingested_at = ?", [now]).fetchone()[0]
db.commit()
print(f"{n} cases with an event after {cutoff} re-ingested, submitted in about {months} months")
PY
/usr/bin/time -f "wall %e s, peak %M KiB" "${W[@]}" warehouse refresh
echo "== online rate by business type x month (whole process)"
/usr/bin/time -f "wall %e s, peak %M KiB" "${W[@]}" kpi online-rate --from 2025-01-01 --to 2025-12-31 --by business_type,month --format csv > /dev/null
SNAP="$WORK/data/warehouse/snapshots/$(cat "$WORK/data/warehouse/CURRENT")"
python3 -c "import duckdb" 2>/dev/null || pip install -q duckdb

side_by_side() {
  echo "== $1: wangban warehouse bench and DuckDB, in process, best of 5 after a warm-up"
  /usr/bin/time -f "wangban warehouse bench: wall %e s, peak %M KiB" "${W[@]}" warehouse bench --repeat 5 > "$WORK/df.jsonl"
  python3 - "$SNAP" "$WORK/df.jsonl" <<'PY'
import json, sys, time, duckdb, resource
snap, lines = sys.argv[1], [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
con = duckdb.connect()
con.execute(f"CREATE VIEW cases AS SELECT * FROM read_parquet('{snap}/cases/*/*.parquet', hive_partitioning = true)")
print(f"{'query':45} {'DataFusion ms':>14} {'DuckDB ms':>10} {'ratio':>6}")
for l in lines:
    if not l.get("sql"):
        print(f"{l['query']:45} {l['best_ms']:14.1f} {'—':>10} {'':>6}")
        continue
    con.execute(l["sql"]).fetchall()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        rows = con.execute(l["sql"]).fetchall()
        best = min(best, time.perf_counter() - t)
    assert len(rows) == l["rows"], f"{l['query']}: DuckDB {len(rows)} rows, DataFusion {l['rows']}"
    print(f"{l['query']:45} {l['best_ms']:14.1f} {best * 1000:10.1f} {l['best_ms'] / (best * 1000):6.2f}")
print(f"DuckDB process peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
PY
}
kpi_matrix() {
  echo "== every KPI (Kpi::ALL), city and district, month and year: whole process beside DuckDB on the raw tables ($1)"
  python3 bench/kpi_matrix.py "$SNAP" "$BIN" "$WORK/sim.toml" "$WORK/data" 430405
}
kpi_matrix "one year"
side_by_side "one year, $(python3 -c "import json; print(sum(e['rows'] for e in json.load(open('$SNAP/manifest.json'))['cases'].values()))") cases"

INFLATE="${INFLATE:-0}"
[ "$INFLATE" -gt 1 ] || exit 0
# Each case K times, the copies distinct (case number, applicant key, times
# shifted by minutes) so that sorted month files hold realistic runs
# (bench/inflate.py); then `wangban warehouse compact` writes each month as
# one file as a refresh of that store would (sorted by district, business
# type and submission time in a spilling session, zstd, page index, its
# rollups counted again; the child tables likewise).
echo "== inflating the snapshot ${INFLATE}x (DuckDB) and compacting it (wangban)"
python3 bench/inflate.py "$SNAP" "$INFLATE"
/usr/bin/time -f "warehouse compact: wall %e s, peak %M KiB" "${W[@]}" warehouse compact
SNAP="$WORK/data/warehouse/snapshots/$(cat "$WORK/data/warehouse/CURRENT")"
ROWS=$(python3 -c "import json; m=json.load(open('$SNAP/manifest.json')); print(sum(e['rows'] for e in m['cases'].values()))")
echo "$ROWS cases, $(du -sh "$SNAP/cases" | cut -f1) of Parquet"
echo "== online rate by business type x month over $ROWS cases (whole process)"
/usr/bin/time -f "wall %e s, peak %M KiB" "${W[@]}" kpi online-rate --from 2025-01-01 --to 2025-12-31 --by business_type,month --format csv > /dev/null
echo "== the dashboards' KPIs that read cases, for one district (whole process each)"
for k in on-time-rate satisfaction qc-errors durations; do
  /usr/bin/time -f "$k: wall %e s, peak %M KiB" "${W[@]}" kpi "$k" --from 2025-02-01 --to 2025-12-20 --filter district=430405 --format csv > /dev/null
done
echo "== the same KPIs for the whole city by business type (whole process each; the largest answers)"
for k in on-time-rate satisfaction qc-errors durations; do
  /usr/bin/time -f "$k: wall %e s, peak %M KiB" "${W[@]}" kpi "$k" --from 2025-01-01 --to 2025-12-31 --by business_type --format csv > /dev/null
done
kpi_matrix "$ROWS cases"
side_by_side "$ROWS cases, one file a month"
