"""Measures the PostgreSQL front end (see bench/pgwire.sh). Arguments: the
connection string, serve's process id, the snapshot directory."""

import os
import statistics
import subprocess
import sys
import threading
import time

import duckdb
import psycopg

CONNINFO, PID, SNAP = sys.argv[1], int(sys.argv[2]), sys.argv[3]

TYPE_BY_MONTH = (
    "SELECT business_type, month, SUM(CAST(online AS INT)) * 1.0 / COUNT(*) AS online_rate "
    "FROM cases WHERE in_scope AND phase_live GROUP BY business_type, month ORDER BY business_type, month"
)
COUNT_BY_TYPE_MONTH = "SELECT business_type, month, COUNT(*) AS n FROM cases GROUP BY business_type, month"
# What the overview shows, as an analyst would ask it.
OVERVIEW = [
    "SELECT month, SUM(CAST(online AS INT)) * 1.0 / COUNT(*) FROM cases WHERE in_scope AND phase_live GROUP BY month",
    "SELECT business_type, SUM(CAST(online AS INT)) * 1.0 / COUNT(*) FROM cases WHERE in_scope GROUP BY business_type",
    "SELECT month, SUM(CAST(end_to_end AS INT)) * 1.0 / COUNT(*) FROM cases WHERE in_scope AND phase_live GROUP BY month",
    "SELECT month, AVG(CASE WHEN on_time THEN 1.0 ELSE 0.0 END) FROM cases WHERE on_time IS NOT NULL GROUP BY month",
    "SELECT section, COUNT(*) FROM qc_findings GROUP BY section",
    "SELECT channel, SUM(CAST(bad AS INT)) * 1.0 / COUNT(*) FROM evaluations GROUP BY channel",
]


def status(field: str) -> int:
    """serve's VmHWM or VmRSS in KiB."""
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def best_of_five(run):
    """The best time of five runs after a warm-up, and the last answer."""
    run()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        answer = run()
        best = min(best, time.perf_counter() - t)
    return best, answer


def main() -> None:
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        cases = conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    print(f"{cases} cases; serve resident {mib(status('VmRSS'))}")

    print("== 1. online rate by business type x month through psql (whole process, 10 runs)")
    env = dict(os.environ)
    parts = dict(p.split("=", 1) for p in CONNINFO.split())
    env["PGPASSWORD"] = parts.pop("password")
    conn_psql = " ".join(f"{k}={v}" for k, v in parts.items())
    times = []
    for _ in range(10):
        t = time.perf_counter()
        out = subprocess.run(["psql", conn_psql, "-X", "-At", "-c", TYPE_BY_MONTH], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    rows = len(out.stdout.splitlines())
    print(f"{rows} rows; best {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms (target < 300 ms)")

    print("== 2. COUNT(*) GROUP BY business_type, month: over the wire (rollup) and DuckDB on the same Parquet, best of 5")
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        plan = "\n".join(r[1] for r in conn.execute("EXPLAIN " + COUNT_BY_TYPE_MONTH).fetchall())
        assert "case_counts" in plan, plan
        best, ours = best_of_five(lambda: conn.execute(COUNT_BY_TYPE_MONTH).fetchall())
    duck = duckdb.connect()
    duck.execute(f"CREATE VIEW cases AS SELECT * FROM read_parquet('{SNAP}/cases/*/*.parquet', hive_partitioning = true)")
    duck_best, theirs = best_of_five(lambda: duck.execute(COUNT_BY_TYPE_MONTH).fetchall())
    assert sorted(ours) == sorted((a, b, int(c)) for a, b, c in theirs), "the answers differ"
    print(f"wangban over PostgreSQL wire {best * 1000:.1f} ms (EXPLAIN: TableScan case_counts), DuckDB {duck_best * 1000:.1f} ms, same {len(ours)} rows")

    print("== 3. 50 connections at once, each running the overview's 6 queries 3 times")
    before = status("VmHWM")
    latencies = []
    errors = []
    lock = threading.Lock()

    def analyst() -> None:
        try:
            with psycopg.connect(CONNINFO, autocommit=True) as conn:
                for _ in range(3):
                    for sql in OVERVIEW:
                        t = time.perf_counter()
                        conn.execute(sql).fetchall()
                        with lock:
                            latencies.append(time.perf_counter() - t)
        except Exception as e:  # noqa: BLE001 - counted and shown
            with lock:
                errors.append(repr(e))

    t = time.perf_counter()
    threads = [threading.Thread(target=analyst) for _ in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    latencies.sort()
    print(
        f"{len(latencies)} queries in {wall:.1f} s, {len(errors)} errors; latency p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms; serve peak {mib(before)} before, {mib(status('VmHWM'))} after (target < 1 GiB)"
    )
    if errors:
        print("first error:", errors[0])

    print("== 4. a 1,000,000-row result streamed through a cursor")
    samples = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(status("VmRSS"))
            time.sleep(0.1)

    source = "SELECT * FROM cases LIMIT 1000000" if cases >= 1_000_000 else "SELECT value, 'row ' || value AS label FROM generate_series(1, 1000000)"
    sampler = threading.Thread(target=sample)
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        with conn.transaction():
            with conn.cursor(name="stream") as cur:
                cur.itersize = 10_000
                start_rss = status("VmRSS")
                sampler.start()
                t = time.perf_counter()
                n = 0
                marks = []
                cur.execute(source)
                for _ in cur:
                    n += 1
                    if n % 250_000 == 0:
                        marks.append(mib(status("VmRSS")))
                elapsed = time.perf_counter() - t
    done.set()
    sampler.join()
    print(
        f"{n} rows ({'cases' if cases >= 1_000_000 else 'generate_series'}) in {elapsed:.1f} s; serve resident {mib(start_rss)} before, "
        f"at each 250,000 rows {', '.join(marks)}; sampled min {mib(min(samples))}, max {mib(max(samples))}"
    )


if __name__ == "__main__":
    main()
