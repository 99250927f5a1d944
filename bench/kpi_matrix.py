"""Every KPI as a whole process, beside DuckDB answering the same question
from the raw tables on the same Parquet (bench/warehouse.sh runs it).

Usage: python3 bench/kpi_matrix.py SNAPSHOT_DIR WANGBAN_BIN CONFIG DATA_DIR DISTRICT

For each KPI of `wangban kpi list` (Kpi::ALL), for the whole city and for one
district (the KPIs that take filters), for one month and for one year:
- wangban: `wangban kpi NAME --from --to [--filter district=D] --format csv`
  as a whole process (start, snapshot, answer, exit), one warm-up then the
  best of 3, wall time and peak memory from /usr/bin/time;
- DuckDB: the SQL of the KPI's plain plan over the raw tables (`wangban kpi
  … --plain-sql`: no rollup), translated for DuckDB's dialect (timestamps as
  epoch microseconds, integer division), in process, one warm-up then the
  best of 3 — DuckDB's query time alone, without its process start.
The ratio is wangban's whole process over DuckDB's query time.
"""

import json
import re
import subprocess
import sys
import time

import duckdb

snap, binary, config, data, district = sys.argv[1:6]
base = [binary, "--config", config, "--data", data]
manifest = json.load(open(f"{snap}/manifest.json"))
months = sorted(manifest["cases"])
year = months[0][:4]
month = f"{year}-06" if f"{year}-06" in months else months[len(months) // 2]
month_end = {"02": "28", "04": "30", "06": "30", "09": "30", "11": "30"}.get(month[5:], "31")
periods = [("month", f"{month}-01", f"{month}-{month_end}"), ("year", f"{year}-01-01", f"{year}-12-31")]

con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
for table in ["cases", "evaluations", "qc_findings"]:
    con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{snap}/{table}/*/*.parquet', "
                f"hive_partitioning = true, hive_types_autocast = false)")
for table in ["seizures", "anomalies"]:
    con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{snap}/{table}/*.parquet')")


def duck(sql):
    sql = re.sub(r"TIMESTAMP '([^']+)'", r"TIMESTAMPTZ '\1'", sql)
    sql = re.sub(r"CAST\(((?:c\.)?\w+_at) AS BIGINT\)", r"epoch_us(\1)", sql)
    return sql.replace("n / 2", "n // 2")


def whole_process(args):
    best = None
    for attempt in range(4):
        run = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + args, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"{' '.join(args)}: exit {run.returncode}: {run.stderr.strip()[-400:]}")
        wall, peak = run.stderr.strip().splitlines()[-1].split()
        if attempt > 0 and (best is None or float(wall) < best[0]):
            best = (float(wall), int(peak) / 1024)
    return best


def duckdb_ms(statements):
    total = 0.0
    for sql in statements:
        con.execute(sql).fetchall()
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            con.execute(sql).fetchall()
            best = min(best, time.perf_counter() - t)
        total += best * 1000
    return total


kpis = [json.loads(line) for line in subprocess.run(base + ["kpi", "list"], capture_output=True, text=True,
                                                     check=True).stdout.splitlines() if line.strip()]
print(f"{'kpi':20} {'scope':9} {'period':6} {'wangban s':>9} {'peak MiB':>8} {'DuckDB ms':>10} {'ratio':>6}")
worst = 0.0
for k in kpis:
    name = k["name"]
    for scope in ["city", "district"]:
        takes_filters = name not in ("seizures", "anomalies")
        if scope == "district" and not takes_filters:
            continue
        for label, start, end in periods:
            args = base + ["kpi", name, "--from", start, "--to", end]
            if scope == "district":
                args += ["--filter", f"district={district}"]
            wall, peak = whole_process(args + ["--format", "csv"])
            sql = subprocess.run(args + ["--plain-sql"], capture_output=True, text=True, check=True).stdout
            statements = [duck(json.loads(line)) for line in sql.splitlines() if line.strip()]
            ms = duckdb_ms(statements)
            ratio = wall * 1000 / ms if ms > 0 else float("inf")
            worst = max(worst, wall)
            print(f"{name:20} {scope:9} {label:6} {wall:9.2f} {peak:8.0f} {ms:10.1f} {ratio:6.2f}", flush=True)
print(f"slowest KPI process: {worst:.2f} s")
