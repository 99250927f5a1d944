"""SQLAlchemy (through which pandas, Superset and most Python BI tools reach
PostgreSQL) against the warehouse's PostgreSQL front end with the psycopg
driver: the first connect (which asks `SHOW TRANSACTION ISOLATION LEVEL`,
`current_schema()`, `standard_conforming_strings`), the inspector's table and
column lists, and a query read into a pandas frame.

Usage: sqlalchemy_check.py URL CASES
(URL is postgresql+psycopg://user:password@host:port/wangban)
"""

import sys

import pandas
import sqlalchemy


def main():
    url, cases = sys.argv[1], int(sys.argv[2])
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        level = connection.get_isolation_level()
        print("isolation:", level)
        assert level == "READ COMMITTED", level
    inspector = sqlalchemy.inspect(engine)
    tables = sorted(inspector.get_table_names())
    print("tables:", tables)
    for table in ["anomalies", "case_counts", "cases", "evaluations", "qc_findings", "seizures"]:
        assert table in tables, (table, tables)
    columns = {c["name"]: str(c["type"]) for c in inspector.get_columns("cases")}
    print("cases columns:", len(columns))
    assert columns.get("case_no") in ("VARCHAR", "TEXT"), columns
    assert "TIMESTAMP" in columns.get("submitted_at", ""), columns
    assert columns.get("in_scope") == "BOOLEAN", columns
    frame = pandas.read_sql(
        "SELECT district, COUNT(*) AS n FROM cases GROUP BY district ORDER BY district", engine
    )
    print("frame:", frame.shape)
    assert list(frame.columns) == ["district", "n"], frame.columns
    assert int(frame["n"].sum()) == cases, (int(frame["n"].sum()), cases)
    assert len(frame) > 1, frame
    # A parameter bound by the driver, as pandas passes it.
    frame = pandas.read_sql(
        sqlalchemy.text("SELECT COUNT(*) AS n FROM cases WHERE district = :d"),
        engine,
        params={"d": str(frame["district"][0])},
    )
    assert int(frame["n"][0]) > 0, frame
    print("ok")


if __name__ == "__main__":
    main()
