//! Enough of `pg_catalog` for the start-up and metadata queries of psql,
//! pgJDBC, DBeaver and Npgsql: the catalog tables describing the warehouse's
//! tables (built from their Arrow schemas in each session), the functions
//! those queries call, and a rewrite of the PostgreSQL-only syntax in them
//! (`OPERATOR(pg_catalog.~)`, `COLLATE`, `::regclass`, the correlated
//! subqueries of psql's `\d`) that is tried only when a query that names the
//! catalog does not plan as written.

use std::sync::{Arc, LazyLock};

use regex::{Captures, Regex};
use warehouse::datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use warehouse::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use warehouse::datafusion::catalog::MemorySchemaProvider;
use warehouse::datafusion::common::ScalarValue;
use warehouse::datafusion::datasource::MemTable;
use warehouse::datafusion::error::DataFusionError;
use warehouse::datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use warehouse::datafusion::prelude::SessionContext;

use crate::types::{Kind, oid};

/// The database's name.
pub const DATABASE: &str = "wangban";
/// The server version reported to clients (their catalog queries follow it).
pub const SERVER_VERSION: &str = "15.0";

const NS_CATALOG: i64 = 11;
const NS_PUBLIC: i64 = 2200;
const NS_INFORMATION_SCHEMA: i64 = 13_000;
const OWNER: i64 = 10;
/// The first OID of the warehouse's tables.
const FIRST_TABLE_OID: i64 = 16_384;

/// What the analysts' tables are, in Chinese (`pg_description`, `\dt+`).
pub const TABLE_DESCRIPTIONS: &[(&str, &str)] = &[
    ("cases", "办件：每件登记业务一行（业务类型、阶段、渠道、区县、办结时限）"),
    ("case_counts", "办件汇总：按业务类型、月份、区县、渠道计数（回答常见统计最快）"),
    ("open_due", "在办汇总：已受理未登簿的办件按承诺时限计数（按时办结率的当日部分）"),
    ("duration_counts", "环节用时汇总：各环节精确用时（微秒）及件数"),
    ("qc_findings", "质检问题：每条质检发现一行，带所属办件的维度"),
    ("qc_counts", "质检汇总：按办件维度、差错类别、严重程度、科室计数"),
    ("evaluations", "办件评价：好差评，带所属办件的维度"),
    ("evaluation_counts", "评价汇总：按办件维度与评价渠道计数（好评、差评、按期整改）"),
    ("seizures", "查封：法院查封、轮候、续封、解封的当前状态"),
    ("anomalies", "对账异常：伙伴记录与办件对账时发现的问题"),
];

fn batch(columns: Vec<(&str, ArrayRef)>) -> Result<(SchemaRef, RecordBatch), DataFusionError> {
    let schema: SchemaRef = Arc::new(Schema::new(
        columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect())?;
    Ok((schema, batch))
}

fn text<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn null_text(n: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![None::<&str>; n]))
}

fn int8(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn int4(values: impl IntoIterator<Item = i32>) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(values))
}

fn int2(values: impl IntoIterator<Item = i16>) -> ArrayRef {
    Arc::new(Int16Array::from_iter_values(values))
}

fn boolean(n: usize, value: bool) -> ArrayRef {
    Arc::new(BooleanArray::from(vec![value; n]))
}

/// The catalog's types: OID, name, length, category.
const TYPES: &[(u32, &str, i16, &str)] = &[
    (oid::BOOL, "bool", 1, "B"),
    (oid::BYTEA, "bytea", -1, "U"),
    (oid::NAME, "name", 64, "S"),
    (oid::INT8, "int8", 8, "N"),
    (oid::INT2, "int2", 2, "N"),
    (oid::INT4, "int4", 4, "N"),
    (oid::TEXT, "text", -1, "S"),
    (oid::OID, "oid", 4, "N"),
    (oid::FLOAT4, "float4", 4, "N"),
    (oid::FLOAT8, "float8", 8, "N"),
    (oid::BPCHAR, "bpchar", -1, "S"),
    (oid::VARCHAR, "varchar", -1, "S"),
    (oid::DATE, "date", 4, "D"),
    (oid::TIME, "time", 8, "D"),
    (oid::TIMESTAMP, "timestamp", 8, "D"),
    (oid::TIMESTAMPTZ, "timestamptz", 8, "D"),
    (oid::NUMERIC, "numeric", -1, "N"),
];

/// `format_type`'s name of a type OID.
fn type_name(type_oid: i64) -> Option<&'static str> {
    Some(match u32::try_from(type_oid).ok()? {
        oid::BOOL => "boolean",
        oid::BYTEA => "bytea",
        oid::NAME => "name",
        oid::INT8 => "bigint",
        oid::INT2 => "smallint",
        oid::INT4 => "integer",
        oid::TEXT => "text",
        oid::OID => "oid",
        oid::FLOAT4 => "real",
        oid::FLOAT8 => "double precision",
        oid::BPCHAR => "character",
        oid::VARCHAR => "character varying",
        oid::DATE => "date",
        oid::TIME => "time without time zone",
        oid::TIMESTAMP => "timestamp without time zone",
        oid::TIMESTAMPTZ => "timestamp with time zone",
        oid::NUMERIC => "numeric",
        _ => return None,
    })
}

/// The first OID of the types' functions in `pg_proc`.
const PROC_BASE: i64 = 100_000;

/// The OIDs of the catalog's own tables (`'pg_class'::regclass`).
const CATALOG_OIDS: &[(&str, i64)] = &[
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_proc", 1255),
    ("pg_class", 1259),
    ("pg_namespace", 2615),
    ("pg_description", 2609),
    ("pg_constraint", 2606),
    ("pg_index", 2610),
    ("pg_database", 1262),
];

/// The warehouse's tables in the session: name and schema, in name order.
async fn tables(ctx: &SessionContext) -> Result<Vec<(String, SchemaRef)>, DataFusionError> {
    let Some(schema) = ctx.catalog("datafusion").and_then(|c| c.schema("public")) else {
        return Ok(Vec::new());
    };
    let mut names = schema.table_names();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        if let Some(table) = schema.table(&name).await? {
            out.push((name, table.schema()));
        }
    }
    Ok(out)
}

/// Adds `pg_catalog` and the functions catalog queries call to `ctx`, whose
/// `public` schema holds the warehouse's tables; `user` is the logged-in account.
pub async fn install(ctx: &SessionContext, user: &str, pid: i32) -> Result<(), DataFusionError> {
    let tables = tables(ctx).await?;
    let catalog_schema = Arc::new(MemorySchemaProvider::new());
    if let Some(catalog) = ctx.catalog("datafusion") {
        catalog.register_schema("pg_catalog", catalog_schema)?;
    }
    let n = tables.len();
    let oids: Vec<i64> = (0..n as i64).map(|i| FIRST_TABLE_OID + i).collect();
    let register = |name: &str, (schema, batch): (SchemaRef, RecordBatch)| -> Result<(), DataFusionError> {
        ctx.register_table(
            format!("pg_catalog.{name}").as_str(),
            Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
        )?;
        Ok(())
    };
    register(
        "pg_namespace",
        batch(vec![
            ("oid", int8([NS_CATALOG, NS_PUBLIC, NS_INFORMATION_SCHEMA])),
            ("nspname", text(["pg_catalog", "public", "information_schema"])),
            ("nspowner", int8([OWNER; 3])),
            ("nspacl", null_text(3)),
        ])?,
    )?;
    register(
        "pg_class",
        batch(vec![
            ("oid", int8(oids.clone())),
            ("relname", text(tables.iter().map(|(name, _)| name.as_str()))),
            ("relnamespace", int8(vec![NS_PUBLIC; n])),
            ("reltype", int8(vec![0; n])),
            ("reloftype", int8(vec![0; n])),
            ("relowner", int8(vec![OWNER; n])),
            ("relam", int8(vec![2; n])),
            ("relkind", text(vec!["r"; n])),
            ("relpersistence", text(vec!["p"; n])),
            ("relreplident", text(vec!["d"; n])),
            ("relnatts", int2(tables.iter().map(|(_, s)| s.fields().len() as i16))),
            ("relchecks", int2(vec![0; n])),
            ("relpages", int4(vec![0; n])),
            ("reltuples", Arc::new(Float32Array::from(vec![-1.0; n])) as ArrayRef),
            ("reltablespace", int8(vec![0; n])),
            ("reltoastrelid", int8(vec![0; n])),
            ("relhasindex", boolean(n, false)),
            ("relisshared", boolean(n, false)),
            ("relhasrules", boolean(n, false)),
            ("relhastriggers", boolean(n, false)),
            ("relhassubclass", boolean(n, false)),
            ("relrowsecurity", boolean(n, false)),
            ("relforcerowsecurity", boolean(n, false)),
            ("relispartition", boolean(n, false)),
            ("relispopulated", boolean(n, true)),
            ("reloptions", null_text(n)),
            ("relacl", null_text(n)),
            ("relpartbound", null_text(n)),
        ])?,
    )?;
    let mut att = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((_, schema), table_oid) in tables.iter().zip(&oids) {
        for (i, field) in schema.fields().iter().enumerate() {
            let kind = Kind::of(field.data_type());
            att.0.push(*table_oid);
            att.1.push(field.name().clone());
            att.2.push(i64::from(kind.oid()));
            att.3.push(i as i16 + 1);
            att.4.push(!field.is_nullable());
            att.5.push(kind.type_len());
        }
    }
    let m = att.0.len();
    register(
        "pg_attribute",
        batch(vec![
            ("attrelid", int8(att.0)),
            ("attname", text(att.1)),
            ("atttypid", int8(att.2)),
            ("attlen", int2(att.5)),
            ("attnum", int2(att.3)),
            ("attndims", int4(vec![0; m])),
            ("atttypmod", int4(vec![-1; m])),
            ("attnotnull", Arc::new(BooleanArray::from(att.4)) as ArrayRef),
            ("atthasdef", boolean(m, false)),
            ("attisdropped", boolean(m, false)),
            ("attislocal", boolean(m, true)),
            ("attidentity", text(vec![""; m])),
            ("attgenerated", text(vec![""; m])),
            ("attstorage", text(vec!["x"; m])),
            ("attcompression", text(vec![""; m])),
            ("attstattarget", int4(vec![-1; m])),
            ("attcollation", int8(vec![0; m])),
            ("attacl", null_text(m)),
        ])?,
    )?;
    let t = TYPES.len();
    register(
        "pg_type",
        batch(vec![
            ("oid", int8(TYPES.iter().map(|(o, ..)| i64::from(*o)))),
            ("typname", text(TYPES.iter().map(|(_, name, ..)| *name))),
            ("typnamespace", int8(vec![NS_CATALOG; t])),
            ("typowner", int8(vec![OWNER; t])),
            ("typlen", int2(TYPES.iter().map(|(_, _, len, _)| *len))),
            ("typbyval", boolean(t, false)),
            ("typtype", text(vec!["b"; t])),
            ("typcategory", text(TYPES.iter().map(|(.., category)| *category))),
            ("typisdefined", boolean(t, true)),
            ("typdelim", text(vec![","; t])),
            ("typrelid", int8(vec![0; t])),
            ("typelem", int8(vec![0; t])),
            ("typarray", int8(vec![0; t])),
            ("typbasetype", int8(vec![0; t])),
            ("typtypmod", int4(vec![-1; t])),
            ("typndims", int4(vec![0; t])),
            ("typnotnull", boolean(t, false)),
            ("typcollation", int8(vec![0; t])),
            // Each type's input, output, receive and send functions are rows of pg_proc (Npgsql joins them).
            ("typinput", int8(TYPES.iter().map(|(o, ..)| PROC_BASE + 4 * i64::from(*o)))),
            ("typoutput", int8(TYPES.iter().map(|(o, ..)| PROC_BASE + 4 * i64::from(*o) + 1))),
            ("typreceive", int8(TYPES.iter().map(|(o, ..)| PROC_BASE + 4 * i64::from(*o) + 2))),
            ("typsend", int8(TYPES.iter().map(|(o, ..)| PROC_BASE + 4 * i64::from(*o) + 3))),
        ])?,
    )?;
    let mut procs = (Vec::new(), Vec::new(), Vec::new());
    for (type_oid, name, ..) in TYPES {
        for (i, suffix) in ["in", "out", "recv", "send"].into_iter().enumerate() {
            procs.0.push(PROC_BASE + 4 * i64::from(*type_oid) + i as i64);
            procs.1.push(format!("{name}{suffix}"));
            procs.2.push(i64::from(*type_oid));
        }
    }
    let p = procs.0.len();
    register(
        "pg_proc",
        batch(vec![
            ("oid", int8(procs.0)),
            ("proname", text(procs.1)),
            ("pronamespace", int8(vec![NS_CATALOG; p])),
            ("prorettype", int8(procs.2)),
            ("prokind", text(vec!["f"; p])),
        ])?,
    )?;
    register(
        "pg_database",
        batch(vec![
            ("oid", int8([1])),
            ("datname", text([DATABASE])),
            ("datdba", int8([OWNER])),
            ("encoding", int4([6])),
            ("datcollate", text(["C.UTF-8"])),
            ("datctype", text(["C.UTF-8"])),
            ("datistemplate", boolean(1, false)),
            ("datallowconn", boolean(1, true)),
            ("datconnlimit", int4([-1])),
            ("dattablespace", int8([1663])),
            ("datacl", null_text(1)),
        ])?,
    )?;
    register("pg_am", batch(vec![("oid", int8([2])), ("amname", text(["heap"])), ("amtype", text(["t"]))])?)?;
    register(
        "pg_tablespace",
        batch(vec![("oid", int8([1663])), ("spcname", text(["pg_default"])), ("spcowner", int8([OWNER]))])?,
    )?;
    let described: Vec<(i64, &str)> = tables
        .iter()
        .zip(&oids)
        .filter_map(|((name, _), o)| {
            TABLE_DESCRIPTIONS.iter().find(|(t, _)| t == name).map(|(_, description)| (*o, *description))
        })
        .collect();
    let d = described.len();
    register(
        "pg_description",
        batch(vec![
            ("objoid", int8(described.iter().map(|(o, _)| *o))),
            ("classoid", int8(vec![1259; d])),
            ("objsubid", int4(vec![0; d])),
            ("description", text(described.iter().map(|(_, text)| *text))),
        ])?,
    )?;
    register(
        "pg_roles",
        batch(vec![
            ("oid", int8([OWNER])),
            ("rolname", text([user])),
            ("rolsuper", boolean(1, false)),
            ("rolinherit", boolean(1, true)),
            ("rolcreaterole", boolean(1, false)),
            ("rolcreatedb", boolean(1, false)),
            ("rolcanlogin", boolean(1, true)),
            ("rolreplication", boolean(1, false)),
            ("rolbypassrls", boolean(1, false)),
            ("rolconnlimit", int4([-1])),
            ("rolvaliduntil", null_text(1)),
            ("rolconfig", null_text(1)),
        ])?,
    )?;
    // Empty tables that metadata queries join to.
    let empty = |columns: &[(&str, DataType)]| -> (SchemaRef, RecordBatch) {
        let schema: SchemaRef =
            Arc::new(Schema::new(columns.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>()));
        (schema.clone(), RecordBatch::new_empty(schema))
    };
    use DataType::{Boolean as B, Int16 as I2, Int32 as I4, Int64 as I8, Utf8 as T};
    for (name, columns) in [
        (
            "pg_index",
            vec![("indexrelid", I8), ("indrelid", I8), ("indisprimary", B), ("indisunique", B), ("indkey", T)],
        ),
        (
            "pg_constraint",
            vec![("oid", I8), ("conname", T), ("contype", T), ("conrelid", I8), ("confrelid", I8), ("conkey", T)],
        ),
        ("pg_inherits", vec![("inhrelid", I8), ("inhparent", I8), ("inhseqno", I4), ("inhdetachpending", B)]),
        ("pg_attrdef", vec![("oid", I8), ("adrelid", I8), ("adnum", I2), ("adbin", T)]),
        ("pg_range", vec![("rngtypid", I8), ("rngsubtype", I8), ("rngmultitypid", I8)]),
        (
            "pg_depend",
            vec![
                ("classid", I8),
                ("objid", I8),
                ("objsubid", I4),
                ("refclassid", I8),
                ("refobjid", I8),
                ("refobjsubid", I4),
                ("deptype", T),
            ],
        ),
        ("pg_extension", vec![("oid", I8), ("extname", T), ("extversion", T), ("extnamespace", I8)]),
        ("pg_enum", vec![("oid", I8), ("enumtypid", I8), ("enumsortorder", DataType::Float32), ("enumlabel", T)]),
        ("pg_trigger", vec![("oid", I8), ("tgrelid", I8), ("tgname", T)]),
        ("pg_collation", vec![("oid", I8), ("collname", T), ("collnamespace", I8)]),
    ] {
        register(name, empty(&columns))?;
    }

    let user = user.to_owned();
    let constant = |name: &str, inputs: Vec<DataType>, value: ScalarValue| {
        let return_type = value.data_type();
        ctx.register_udf(create_udf(
            name,
            inputs,
            return_type,
            Volatility::Stable,
            Arc::new(move |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()))),
        ));
    };
    let text_value = |s: &str| ScalarValue::Utf8(Some(s.to_owned()));
    constant("version", vec![], text_value(&format!("PostgreSQL {SERVER_VERSION} (wangban warehouse, DataFusion)")));
    constant("current_schema", vec![], text_value("public"));
    constant("current_database", vec![], text_value(DATABASE));
    constant("pg_backend_pid", vec![], ScalarValue::Int32(Some(pid)));
    constant("pg_table_is_visible", vec![DataType::Int64], ScalarValue::Boolean(Some(true)));
    constant("pg_type_is_visible", vec![DataType::Int64], ScalarValue::Boolean(Some(true)));
    constant("pg_get_userbyid", vec![DataType::Int64], text_value(&user));
    constant("pg_encoding_to_char", vec![DataType::Int64], text_value("UTF8"));
    let descriptions: std::collections::HashMap<i64, &'static str> = described.iter().copied().collect();
    of_first_integer(ctx, "obj_description", vec![DataType::Int64, DataType::Utf8], move |oid| {
        descriptions.get(&oid).map(|d| (*d).to_owned())
    });
    constant("col_description", vec![DataType::Int64, DataType::Int64], ScalarValue::Utf8(None));
    constant("shobj_description", vec![DataType::Int64, DataType::Utf8], ScalarValue::Utf8(None));
    constant("has_table_privilege", vec![DataType::Utf8, DataType::Utf8], ScalarValue::Boolean(Some(true)));
    constant("has_schema_privilege", vec![DataType::Utf8, DataType::Utf8], ScalarValue::Boolean(Some(true)));
    constant("has_database_privilege", vec![DataType::Utf8, DataType::Utf8], ScalarValue::Boolean(Some(true)));
    // Sizes are not known here (the Parquet files are the warehouse's): NULL, shown blank.
    for name in ["pg_total_relation_size", "pg_relation_size", "pg_table_size", "pg_indexes_size"] {
        constant(name, vec![DataType::Int64], ScalarValue::Int64(None));
    }
    of_first_integer(ctx, "pg_size_pretty", vec![DataType::Int64], |size| Some(size_pretty(size)));
    of_first_integer(ctx, "format_type", vec![DataType::Int64, DataType::Int64], |oid| {
        Some(type_name(oid).unwrap_or("???").to_owned())
    });
    Ok(())
}

/// Registers `name(inputs…)`: text from its first argument, an integer
/// (an OID or a size), by `f`; NULL in, NULL out.
fn of_first_integer(
    ctx: &SessionContext,
    name: &'static str,
    inputs: Vec<DataType>,
    f: impl Fn(i64) -> Option<String> + Send + Sync + 'static,
) {
    ctx.register_udf(create_udf(
        name,
        inputs,
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let first = warehouse::datafusion::arrow::compute::cast(&arrays[0], &DataType::Int64)?;
            let integers = first
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| DataFusionError::Internal(format!("{name}: its argument is not an integer")))?;
            let text: StringArray = integers.iter().map(|i| i.and_then(&f)).collect();
            Ok(ColumnarValue::Array(Arc::new(text)))
        }),
    ));
}

/// PostgreSQL's `pg_size_pretty`: bytes, kB, MB, GB, TB (units of 1024, rounded).
fn size_pretty(bytes: i64) -> String {
    let mut size = bytes;
    for unit in ["bytes", "kB", "MB", "GB"] {
        if size.abs() < 10 * 1024 {
            return format!("{size} {unit}");
        }
        size = (size + if size >= 0 { 512 } else { -512 }) / 1024;
    }
    format!("{size} TB")
}

/// What a query reads, by the tables it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Catalog relations only, at least one: every table it names is in
    /// `pg_catalog` or `information_schema` (qualified, or an unqualified
    /// `pg_…` name), or is one of its own `WITH` names. Only such a query may
    /// be answered with no rows when it does not plan even rewritten ([`rewrite`]):
    /// a metadata query about objects this catalog lacks.
    CatalogOnly,
    /// No table at all (`SELECT current_user`, `SELECT version()`): it may be
    /// rewritten, never answered empty.
    NoTable,
    /// A warehouse table, or SQL that does not parse: a failure is an error.
    Warehouse,
}

/// What `sql` reads (see [`Reads`]).
pub fn reads(sql: &str) -> Reads {
    use std::ops::ControlFlow;
    use warehouse::datafusion::sql::sqlparser::ast::{ObjectName, Query, Visit, Visitor};
    use warehouse::datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use warehouse::datafusion::sql::sqlparser::parser::Parser;

    #[derive(Default)]
    struct Relations {
        ctes: Vec<String>,
        named: Vec<Vec<String>>,
    }
    impl Visitor for Relations {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                self.ctes.extend(with.cte_tables.iter().map(|c| c.alias.name.value.to_ascii_lowercase()));
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
            let parts = relation
                .0
                .iter()
                .map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()).unwrap_or_default())
                .collect();
            self.named.push(parts);
            ControlFlow::Continue(())
        }
    }

    let parsed = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .or_else(|_| Parser::parse_sql(&PostgreSqlDialect {}, &rewrite(sql)));
    let Ok(statements) = parsed else { return Reads::Warehouse };
    let mut relations = Relations::default();
    for statement in &statements {
        let _ = statement.visit(&mut relations);
    }
    if statements.is_empty() {
        return Reads::Warehouse;
    }
    let catalog = relations.named.iter().all(|parts| match parts.as_slice() {
        [schema, _] | [_, schema, _] => schema == "pg_catalog" || schema == "information_schema",
        [name] => name.starts_with("pg_") || relations.ctes.contains(name),
        _ => false,
    });
    match (catalog, relations.named.is_empty()) {
        (false, _) => Reads::Warehouse,
        (true, true) => Reads::NoTable,
        (true, false) => Reads::CatalogOnly,
    }
}

struct Rewrite {
    pattern: Regex,
    with: &'static str,
}

#[allow(clippy::unwrap_used)] // the patterns are fixed text, checked by the tests
static REWRITES: LazyLock<Vec<Rewrite>> = LazyLock::new(|| {
    [
        // SQLAlchemy's get_columns: the default, identity and collation subqueries are correlated
        // (there are no defaults, identities, sequences or collations).
        (
            r"(?is)\(\s*SELECT\s+(pg_catalog\.)?pg_get_expr\([^()]*\)\s+AS\s+\w+\s+FROM\s+pg_catalog\.pg_attrdef\s+WHERE[^()]*\)",
            "NULL",
        ),
        (r"(?is)CASE\s+WHEN\s+\(pg_catalog\.pg_attribute\.attidentity\b.*?ELSE\s+NULL\s+END\s+AS\s+identity_options", "NULL AS identity_options"),
        (r"(?is)CASE\s+WHEN\s+\(pg_catalog\.pg_attribute\.attcollation\b.*?ELSE\s+NULL\s+END\s+AS\s+collation", "NULL AS collation"),
        // `= ANY (ARRAY[…])` of a literal list (SQLAlchemy's relkind filters): DataFusion plans arrays only
        // with its nested-expression feature, which the warehouse does not build.
        (r"(?is)=\s*ANY\s*\(\s*ARRAY\s*\[([^\[\]]*)\]\s*\)", " IN ($1)"),
        // psql's \d: the column default and collation subqueries are correlated (there are neither).
        (r"(?is)\(\s*SELECT\s+pg_catalog\.pg_get_expr\(d\.adbin.*?a\.atthasdef\s*\)", "NULL"),
        (r"(?is)\(\s*SELECT\s+c\.collname\s+FROM\s+pg_catalog\.pg_collation.*?t\.typcollation\s*\)", "NULL"),
        (r"(?i)(pg_catalog\.)?pg_get_expr\([^()]*\)", "NULL"),
        // psql's \d+: table options (there are none), by an array subquery.
        (r"(?is)pg_catalog\.array_to_string\(\s*c\.reloptions\s*\|\|\s*array\(select.*?tc\.reloptions\)\s*x\),\s*', '\)", "''"),
        // Npgsql's type loading: multiranges (there are none) by a correlated subquery.
        (r"(?is)\(\s*SELECT\s+rngtypid\s+FROM\s+pg_range\s+WHERE\s+rngmultitypid\s*=\s*typ\.oid\s*\)", "NULL"),
        (r"(?i)OPERATOR\(\s*pg_catalog\.([~!=<>*]+)\s*\)", "$1"),
        (r#"(?i)\s+COLLATE\s+(pg_catalog\.)?"?default"?"#, ""),
        (r"(?i)::\s*(pg_catalog\.)?(regclass|regtype|regnamespace|regproc|regprocedure|oid)\b", ""),
        (r#"(?i)::\s*(pg_catalog\.)?("char"|name|bpchar|varchar)"#, "::text"),
        (r"(?i)::\s*pg_catalog\.", "::"),
        (r"(?i)\bpg_catalog\.(\w+)\s*\(", "$1("),
        (r"(?i)\b(current_user|session_user)\b(\s*\(\s*\))?", "current_user_name()"),
    ]
    .into_iter()
    .map(|(pattern, with)| Rewrite { pattern: Regex::new(pattern).unwrap(), with })
    .collect()
});

#[allow(clippy::unwrap_used)] // fixed text
static REGCLASS_LITERAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)'(?:pg_catalog\.)?([A-Za-z_]+)'\s*::\s*(?:pg_catalog\.)?regclass").unwrap());

#[allow(clippy::unwrap_used)] // fixed text
static OID_AND_STAR: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(\w+)\.oid\s*,\s*(\w+)\.\*").unwrap());

#[allow(clippy::unwrap_used)] // fixed text
static UNQUALIFIED_CATALOG_TABLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(FROM|JOIN|,)(\s+)(pg_[a-z_]+)\b(\.?)").unwrap());

/// `sql` with the catalog syntax DataFusion does not plan rewritten: see the module doc.
pub fn rewrite(sql: &str) -> String {
    let mut sql = REGCLASS_LITERAL
        .replace_all(sql, |c: &Captures| {
            let name = c[1].to_ascii_lowercase();
            CATALOG_OIDS.iter().find(|(n, _)| *n == name).map(|(_, o)| o.to_string()).unwrap_or_else(|| "0".into())
        })
        .into_owned();
    for rewrite in REWRITES.iter() {
        sql = rewrite.pattern.replace_all(&sql, rewrite.with).into_owned();
    }
    // DBeaver's `t.oid, t.*` names `oid` twice, which DataFusion refuses: `t.*` holds it.
    sql = OID_AND_STAR
        .replace_all(&sql, |c: &Captures| if c[1] == c[2] { format!("{}.*", &c[2]) } else { c[0].to_owned() })
        .into_owned();
    UNQUALIFIED_CATALOG_TABLE
        .replace_all(&sql, |c: &Captures| {
            if &c[4] == "." || c[3].eq_ignore_ascii_case("pg_catalog") {
                c[0].to_owned()
            } else {
                format!("{}{}pg_catalog.{}", &c[1], &c[2], &c[3])
            }
        })
        .into_owned()
}

/// Registers `current_user_name()` (what `current_user` and `session_user` become).
pub fn install_user(ctx: &SessionContext, user: &str) {
    let value = ScalarValue::Utf8(Some(user.to_owned()));
    ctx.register_udf(create_udf(
        "current_user_name",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()))),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_describe_queries_are_rewritten_into_what_datafusion_plans() {
        let q = "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(cases)$' \
                 COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid)";
        assert_eq!(
            rewrite(q),
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname ~ '^(cases)$' AND pg_table_is_visible(c.oid)"
        );
        let q = "SELECT a.attname,\n  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)\n   FROM pg_catalog.pg_attrdef d\n   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),\n  a.attnotnull FROM pg_catalog.pg_attribute a";
        assert_eq!(rewrite(q), "SELECT a.attname,\n  NULL,\n  a.attnotnull FROM pg_catalog.pg_attribute a");
        assert_eq!(
            rewrite("SELECT 'pg_class'::regclass, x::pg_catalog.text FROM pg_type"),
            "SELECT 1259, x::text FROM pg_catalog.pg_type"
        );
        assert_eq!(rewrite("select session_user, current_user"), "select current_user_name(), current_user_name()");
        assert_eq!(
            rewrite("WHERE c.relkind = ANY (ARRAY[$1::VARCHAR, $2::VARCHAR]) AND x"),
            "WHERE c.relkind  IN ($1::text, $2::text) AND x"
        );
        assert_eq!(size_pretty(8192), "8192 bytes");
        assert_eq!(size_pretty(10 * 1024), "10 kB");
        assert_eq!(size_pretty(5 * 1024 * 1024 * 1024), "5120 MB");
    }

    #[test]
    fn only_queries_of_catalog_relations_may_be_rewritten_or_answered_empty() {
        for catalog in [
            "select * from pg_catalog.pg_class",
            "SELECT n.nspname FROM pg_namespace n JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid",
            "select table_name from information_schema.tables where table_schema = 'public'",
            "WITH t AS (SELECT oid FROM pg_type) SELECT * FROM t",
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(cases)$'",
            "SELECT 1 FROM wangban.pg_catalog.pg_proc",
        ] {
            assert_eq!(reads(catalog), Reads::CatalogOnly, "{catalog}");
        }
        for not_catalog in [
            "select * from cases",
            // Mentions the catalog, reads a warehouse table: a failure is an error.
            "select count(*) from cases where ' pg_' <> district or 1 = (select 1 from pg_class limit 1)",
            "SELECT * FROM cases JOIN information_schema.columns c ON true",
            "SELECT pg_catalog.version_that_does_not_exist()",
            "SELECT * FROM pg_class_copy_of_cases x JOIN cases USING (case_no)",
            "not sql at all pg_catalog",
            "",
        ] {
            assert_ne!(reads(not_catalog), Reads::CatalogOnly, "{not_catalog}");
        }
        assert_eq!(reads("SELECT current_user"), Reads::NoTable);
        assert_eq!(reads("select count(*) from cases"), Reads::Warehouse);
    }
}
