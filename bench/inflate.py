"""Inflates a warehouse snapshot K times for the benchmarks (DuckDB, Python).

Usage: python3 bench/inflate.py SNAPSHOT_DIR K

Every month of `cases` becomes K versions of each case: the first is the case
itself, copy k (2..K) has the case number suffixed `-k`, a different applicant
key, and every time shifted by k-1 minutes (backwards when forwards would
leave the month in China time), so copies are distinct rows spread through the
month like real cases rather than K identical rows side by side (which
compress to almost nothing once sorted). `qc_findings` and `evaluations`
(written per case month with their case's dimensions) are inflated the same
way, each copy following its case, so they keep their proportions.
Each month is written as `inflated.parquet` beside the original, which is
removed; `wangban warehouse compact` then rewrites each month as a refresh
would (one file sorted by district, business type and submission time, the
refresh's writer settings, its rollups counted again). The rollup files are left as they are until then.
"""

import json
import os
import sys

import duckdb

snap, k = sys.argv[1], int(sys.argv[2])
if k < 2:
    sys.exit("K must be at least 2")
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute(f"CREATE TABLE copies AS SELECT range AS k FROM range(1, {k} + 1)")

CASE_TIMES = ["submitted_at", "accepted_at", "verified_at", "recorded_at", "cert_prepared_at",
              "issued_at", "archived_at", "closed_at", "due_at"]


def suffixed(column):
    return f"CASE WHEN k = 1 THEN {column} ELSE {column} || '-' || k END"


manifest_path = f"{snap}/manifest.json"
manifest = json.load(open(manifest_path))
for month, entry in sorted(manifest["cases"].items()):
    source = f"{snap}/{entry['file']}"
    # China time is UTC+8 all year: a shifted submission stays in its month.
    shift = (f"CASE WHEN strftime(CAST(submitted_at AS TIMESTAMP) + INTERVAL 8 HOUR + to_minutes(k - 1), '%Y-%m') "
             f"= '{month}' THEN to_minutes(k - 1) ELSE -to_minutes(k - 1) END")
    replace = [f"{suffixed('case_no')} AS case_no",
               "CASE WHEN k = 1 THEN applicant_key ELSE md5(applicant_key || k) END AS applicant_key"]
    replace += [f"{c} + shift AS {c}" for c in CASE_TIMES]
    target = os.path.join(os.path.dirname(source), "inflated.parquet")
    con.execute(
        f"COPY (SELECT * EXCLUDE (k, shift) REPLACE ({', '.join(replace)}) "
        f"FROM (SELECT *, {shift} AS shift FROM read_parquet('{source}', hive_partitioning = false), copies)) "
        f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
    os.remove(source)

# The child tables are written per case month with their case's dimensions:
# each copy follows its case (the same suffix, the same shift of the case's
# submission time); their own times move by k-1 minutes. Rows whose case is
# unknown (`month=unmatched`) are left as they are.
for table, times in [("qc_findings", ["found_at", "corrected_at"]), ("evaluations", ["evaluated_at", "rectified_at"])]:
    id_column = "finding_id" if table == "qc_findings" else "evaluation_id"
    for month, entry in sorted(manifest.get("by_month", {}).get(table, {}).items()):
        if month == "unmatched":
            continue
        source = f"{snap}/{entry['file']}"
        shift = (f"CASE WHEN strftime(CAST(submitted_at AS TIMESTAMP) + INTERVAL 8 HOUR + to_minutes(k - 1), '%Y-%m') "
                 f"= '{month}' THEN to_minutes(k - 1) ELSE -to_minutes(k - 1) END")
        replace = [f"{suffixed(id_column)} AS {id_column}", f"{suffixed('case_no')} AS case_no",
                   "submitted_at + shift AS submitted_at"]
        replace += [f"{c} + to_minutes(k - 1) AS {c}" for c in times]
        target = os.path.join(os.path.dirname(source), "inflated.parquet")
        con.execute(
            f"COPY (SELECT * EXCLUDE (k, shift) REPLACE ({', '.join(replace)}) "
            f"FROM (SELECT *, {shift} AS shift FROM read_parquet('{source}', hive_partitioning = false), copies)) "
            f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
        os.remove(source)  # the previous snapshot's hard link is untouched
json.dump(manifest, open(manifest_path, "w"), indent=2)
rows = sum(e["rows"] for e in manifest["cases"].values()) * k
print(f"inflated {snap} {k} times: about {rows} cases")
