"""Catalog queries as DBeaver and Npgsql (Excel's Power Query) send them at
start-up and when they list tables and columns, run against the warehouse's
PostgreSQL front end with psycopg. Each must answer the rows a real
PostgreSQL would for the warehouse's tables (not the empty answer the front
end gives a catalog query it cannot plan: where the right answer has no rows,
its columns are checked, which that empty answer lacks).

The texts are the drivers' own (DBeaver's PostgreSQL plugin, Npgsql 4.0's
and 6.0's type loading), with their parameters.

Usage: catalog_queries.py CONNINFO
"""

import sys

import psycopg

NPGSQL4_BATCH = """SELECT version();

SELECT ns.nspname, a.typname, a.oid, a.typrelid, a.typbasetype,
CASE WHEN pg_proc.proname='array_recv' THEN 'a' ELSE a.typtype END AS type,
CASE
  WHEN pg_proc.proname='array_recv' THEN a.typelem
  WHEN a.typtype='r' THEN rngsubtype
  ELSE 0
END AS elemoid,
CASE
  WHEN pg_proc.proname IN ('array_recv','oidvectorrecv') THEN 3    /* Arrays last */
  WHEN a.typtype='r' THEN 2                                        /* Ranges before */
  WHEN a.typtype='d' THEN 1                                        /* Domains before */
  ELSE 0                                                           /* Base types first */
END AS ord
FROM pg_type AS a
JOIN pg_namespace AS ns ON (ns.oid = a.typnamespace)
JOIN pg_proc ON pg_proc.oid = a.typreceive
LEFT OUTER JOIN pg_class AS cls ON (cls.oid = a.typrelid)
LEFT OUTER JOIN pg_type AS b ON (b.oid = a.typelem)
LEFT OUTER JOIN pg_class AS elemcls ON (elemcls.oid = b.typrelid)
LEFT OUTER JOIN pg_range ON (pg_range.rngtypid = a.oid)
WHERE
  a.typtype IN ('b', 'r', 'e', 'd') OR         /* Base, range, enum, domain */
  (a.typtype = 'c' AND cls.relkind='c') OR /* User-defined free-standing composites (not table composites) by default */
  (pg_proc.proname='array_recv' AND (
    b.typtype IN ('b', 'r', 'e', 'd') OR       /* Array of base, range, enum, domain */
    (b.typtype = 'p' AND b.typname IN ('record', 'void')) OR /* Arrays of special supported pseudo-types */
    (b.typtype = 'c' AND elemcls.relkind='c')  /* Array of user-defined free-standing composites (not table composites) */
  )) OR
  (a.typtype = 'p' AND a.typname IN ('record', 'void'))  /* Some special supported pseudo-types */
ORDER BY ord;

/*** Load field definitions for (free-standing) composite types ***/
SELECT typ.oid, att.attname, att.atttypid
FROM pg_type AS typ
JOIN pg_namespace AS ns ON (ns.oid = typ.typnamespace)
JOIN pg_class AS cls ON (cls.oid = typ.typrelid)
JOIN pg_attribute AS att ON (att.attrelid = typ.typrelid)
WHERE
  (typ.typtype = 'c' AND cls.relkind='c') AND
  attnum > 0 AND     /* Don't load system attributes */
  NOT attisdropped
ORDER BY typ.oid, att.attnum;

/*** Load enum fields ***/
SELECT pg_type.oid, enumlabel
FROM pg_enum
JOIN pg_type ON pg_type.oid=enumtypid
ORDER BY oid, enumsortorder;
"""

NPGSQL6_TYPES = """SELECT ns.nspname, t.oid, t.typname, t.typtype, t.typnotnull, t.elemtypoid
FROM (
    -- Arrays have typtype=b - this subquery identifies them by their typreceive and converts their typtype to a
    -- We first do this for the type (innerest-most subquery), and then for its element type
    -- This also returns the array element, range subtype and domain base type as elemtypoid
    SELECT
        typ.oid, typ.typnamespace, typ.typname, typ.typtype, typ.typrelid, typ.typnotnull, typ.relkind,
        elemtyp.oid AS elemtypoid, elemtyp.typname AS elemtypname, elemcls.relkind AS elemrelkind,
        CASE WHEN elemproc.proname='array_recv' THEN 'a' ELSE elemtyp.typtype END AS elemtyptype
        , typ.typcategory
    FROM (
        SELECT typ.oid, typnamespace, typname, typrelid, typnotnull, relkind, typelem AS elemoid,
            CASE WHEN proc.proname='array_recv' THEN 'a' ELSE typ.typtype END AS typtype,
            CASE
                WHEN proc.proname='array_recv' THEN typ.typelem
                WHEN typ.typtype='r' THEN rngsubtype
                WHEN typ.typtype='m' THEN (SELECT rngtypid FROM pg_range WHERE rngmultitypid = typ.oid)
                WHEN typ.typtype='d' THEN typ.typbasetype
            END AS elemtypoid
            , typ.typcategory
        FROM pg_type AS typ
        LEFT JOIN pg_class AS cls ON (cls.oid = typ.typrelid)
        LEFT JOIN pg_proc AS proc ON proc.oid = typ.typreceive
        LEFT JOIN pg_range ON (pg_range.rngtypid = typ.oid)
    ) AS typ
    LEFT JOIN pg_type AS elemtyp ON elemtyp.oid = elemtypoid
    LEFT JOIN pg_class AS elemcls ON (elemcls.oid = elemtyp.typrelid)
    LEFT JOIN pg_proc AS elemproc ON elemproc.oid = elemtyp.typreceive
) AS t
JOIN pg_namespace AS ns ON (ns.oid = typnamespace)
WHERE
    typtype IN ('b', 'r', 'm', 'e', 'd') OR -- Base, range, multirange, enum, domain
    (typtype = 'c' AND relkind='c') OR -- User-defined free-standing composites (not table composites) by default
    (typtype = 'p' AND typname IN ('record', 'void', 'unknown')) OR -- Some special supported pseudo-types
    (typtype = 'a' AND (  -- Array of...
        elemtyptype IN ('b', 'r', 'm', 'e', 'd') OR -- Array of base, range, multirange, enum, domain
        (elemtyptype = 'p' AND elemtypname IN ('record', 'void')) OR -- Arrays of special supported pseudo-types
        (elemtyptype = 'c' AND elemrelkind='c') -- Array of user-defined free-standing composites (not table composites) by default
    ))
ORDER BY CASE
       WHEN typtype IN ('b', 'e', 'p') THEN 0           -- First base types, enums, pseudo-types
       WHEN typtype = 'r' THEN 1                        -- Ranges after
       WHEN typtype = 'm' THEN 2                        -- Multiranges after
       WHEN typtype = 'c' THEN 3                        -- Composites after
       WHEN typtype = 'd' AND elemtyptype <> 'a' THEN 4 -- Domains over non-arrays after
       WHEN typtype = 'a' THEN 5                        -- Arrays after
       WHEN typtype = 'd' AND elemtyptype = 'a' THEN 6  -- Domains over arrays last
END"""

DBEAVER = [
    ("schema and user", "SELECT current_schema(),session_user", None, lambda rows: rows == [("public", "qc")]),
    (
        "schemas",
        "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n\n"
        "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass\n"
        " ORDER BY nspname",
        None,
        lambda rows: "public" in [r[1] for r in rows],
    ),
    ("database", "SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=%s", ("wangban",), lambda rows: len(rows) == 1),
    (
        "tables of public",
        "select c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, "
        "case when c.relkind='p' then true else false end as is_partition\n"
        "FROM pg_catalog.pg_class c\n"
        "LEFT OUTER JOIN pg_catalog.pg_class t ON t.oid=c.reltoastrelid\n"
        "LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.reltoastrelid\n"
        "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass\n"
        "WHERE c.relnamespace=%s AND c.relkind not in ('i','I','c')",
        (2200,),
        lambda rows: {"cases", "case_counts", "seizures"} <= {r[1] for r in rows},
    ),
    (
        "types",
        "SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description\n"
        "FROM pg_catalog.pg_type t\n"
        "LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem\n"
        "LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid\n"
        "LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid\n"
        "WHERE t.typname IS NOT NULL\n"
        "AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')",
        None,
        lambda rows: {"text", "int8", "timestamptz", "bool"} <= {r[1] for r in rows},
    ),
    ("search path", "SHOW search_path", None, lambda rows: len(rows) == 1),
    ("version", "SELECT version()", None, lambda rows: rows[0][0].startswith("PostgreSQL ")),
]

COLUMNS = (
    "SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid\n"
    "FROM pg_catalog.pg_attribute a\n"
    "INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)\n"
    "LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)\n"
    "LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)\n"
    "LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid\n"
    "WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=%s\n"
    "ORDER BY a.attnum"
)


def main() -> None:
    with psycopg.connect(sys.argv[1], autocommit=True) as conn:
        for name, sql, params, ok in DBEAVER:
            rows = conn.execute(sql, params).fetchall()
            assert ok(rows), (name, rows)
            print(f"DBeaver {name}: {len(rows)} rows")
        (cases_oid,) = conn.execute("SELECT oid FROM pg_catalog.pg_class WHERE relname = %s", ("cases",)).fetchone()
        rows = conn.execute(COLUMNS, (cases_oid,)).fetchall()
        names = [r[2] for r in rows]
        assert names[0] == "case_no" and "submitted_at" in names, names
        print(f"DBeaver columns of cases: {len(rows)}")

        # Npgsql 4.0 (Excel and Power BI's PostgreSQL connector) sends its type loading as one batch.
        with psycopg.ClientCursor(conn) as cur:
            cur.execute(NPGSQL4_BATCH)
            assert cur.fetchone()[0].startswith("PostgreSQL "), "version"
            assert cur.nextset()
            types = {r[1]: r[2] for r in cur.fetchall()}
            assert types.get("text") == 25 and types.get("timestamptz") == 1184 and types.get("numeric") == 1700, types
            print(f"Npgsql 4 types: {len(types)}")
            # No composite types and no enums: no rows, but the columns asked for (the empty
            # answer the front end gives a catalog query it cannot plan has none, and fails here).
            for columns in (["oid", "attname", "atttypid"], ["oid", "enumlabel"]):
                assert cur.nextset() and cur.fetchall() == []
                assert [c.name for c in cur.description or []] == columns, (columns, cur.description)
        rows = conn.execute(NPGSQL6_TYPES).fetchall()
        assert {"text", "int4", "date", "bool"} <= {r[2] for r in rows}, rows
        print(f"Npgsql 6 types: {len(rows)}")
    print("ok")


if __name__ == "__main__":
    main()
