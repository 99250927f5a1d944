"""The warehouse's PostgreSQL front end as Python analysts reach it (psycopg 3).

Usage: psycopg_check.py CONNINFO EXPECTED_CASES
Prints one line per check; exits non-zero at the first that fails.
"""

import sys
import threading
import time

import psycopg


def main() -> None:
    conninfo, expected_cases = sys.argv[1], int(sys.argv[2])
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # A parameterized query (extended protocol: Parse, Bind with $1, Execute).
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM cases WHERE month >= %s", ("0000-00",))
            (count,) = cur.fetchone()
            assert count == expected_cases, (count, expected_cases)
            print(f"parameterized count: {count}")
            cur.execute(
                "SELECT business_type, COUNT(*) AS n, AVG(CASE WHEN online THEN 1.0 ELSE 0.0 END) AS rate "
                "FROM cases WHERE district = %s AND online = %s GROUP BY business_type ORDER BY n DESC",
                ("430405", True),
            )
            rows = cur.fetchall()
            assert all(isinstance(r[1], int) and isinstance(r[2], float) for r in rows), rows
            print(f"typed rows: {len(rows)}")
            cur.execute("SELECT MIN(submitted_at), MAX(submitted_at)::date FROM cases")
            first, last = cur.fetchone()
            assert first.tzinfo is not None and first.utcoffset().total_seconds() == 0, first
            print(f"timestamptz and date: {first.isoformat()} {last.isoformat()}")
            # Binary results (as Npgsql asks for them).
            cur.execute("SELECT COUNT(*)::bigint, true, 1.5::double precision, 'Ω' FROM cases", binary=True)
            row = cur.fetchone()
            assert row == (expected_cases, True, 1.5, "Ω"), row
            print(f"binary row: {row}")
        # A named (server-side) cursor over a million rows, fetched in pages.
        with conn.transaction():
            with conn.cursor(name="million") as cur:
                cur.itersize = 20000
                cur.execute("SELECT value FROM generate_series(1, 1000000)")
                n = total = 0
                for (value,) in cur:
                    n += 1
                    total += value
        assert (n, total) == (1_000_000, 500_000_500_000), (n, total)
        print(f"cursor rows: {n}")
        # A refused statement: an error with a SQLSTATE, and the connection goes on.
        with conn.cursor() as cur:
            try:
                cur.execute("DELETE FROM cases")
            except psycopg.Error as e:
                assert e.sqlstate == "25006", e.sqlstate
                print(f"refused: {e.sqlstate}")
            else:
                raise AssertionError("DELETE was not refused")
            cur.execute("SELECT COUNT(*) FROM cases")
            assert cur.fetchone()[0] == expected_cases
    # A cancel request (another connection, the backend's key) stops a long query at once.
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cancel = getattr(conn, "cancel_safe", conn.cancel)
        timer = threading.Timer(1.0, cancel)
        timer.start()
        started = time.monotonic()
        try:
            conn.execute("SELECT COUNT(*) FROM generate_series(1, 100000000000)")
        except psycopg.errors.QueryCanceled as e:
            print(f"cancelled after {time.monotonic() - started:.1f} s: {e.sqlstate}")
        else:
            raise AssertionError("the query was not cancelled")
        finally:
            timer.cancel()
        assert time.monotonic() - started < 10
        assert conn.execute("SELECT 1").fetchone() == (1,)
    print("ok")


if __name__ == "__main__":
    main()
