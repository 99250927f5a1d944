//! The simulator as an exchange database (前置库): the registry's cases
//! written into a gtmap-style table in a real PostgreSQL or MariaDB, with the
//! faults such databases really have.
//!
//! The table `BDC_YW_SL` has pinyin-initial columns (`YWH`, `DJLX`, `QLRMC`,
//! `ZJH`, `BDCDYH` …), the partner's own business-type codes (`DJLX`: 200
//! 二手房转移 …, see [`DJLX_CODES`]), a `SJSJ` in `yyyyMMddHHmmss` text, and
//! the exchange columns `CD_BATCH`, `CD_TIME` 更新时间, `CD_OPERATION` I/U/D,
//! `SYNC_SIGN` 0 待交换 / 1 已交换, `SYNC_DATE` and `SYNC_ERROR_DESC`.
//!
//! Faults: a transaction that holds an earlier `CD_TIME` open while later rows
//! commit ([`Exchange::hold`]); hundreds of rows with one `CD_TIME`
//! ([`Exchange::write_at`] with one time); logical deletes (`D`); a row
//! re-written just after it was read. A partner clock off ours is the test's
//! `now` differing from the database's.

use chrono::NaiveDateTime;
use sqlx::Row as _;

/// The cases table.
pub const CASES_TABLE: &str = "BDC_YW_SL";

/// The partner's business-type codes (`DJLX`) and ours (the registry's `sqlx`).
pub const DJLX_CODES: [(&str, &str); 6] =
    [("100", "2001"), ("200", "2002"), ("300", "3001"), ("400", "4001"), ("500", "1001"), ("800", "8001")];

/// One case as the partner writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeCase {
    /// 业务号.
    pub ywh: String,
    /// The partner's business-type code.
    pub djlx: String,
    /// 申请方式: `1` 线上 … (ours).
    pub sqfs: String,
    /// 收件时间, `yyyyMMddHHmmss`.
    pub sjsj: String,
    /// 状态: 受理 / 登簿 / 办结 (the partner's words).
    pub zt: String,
    /// 权利人名称.
    pub qlrmc: String,
    /// 证件号.
    pub zjh: String,
    /// 行政区代码.
    pub xzqdm: String,
}

/// A partner's exchange database.
#[derive(Debug, Clone)]
pub enum Exchange {
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
    /// MySQL or MariaDB.
    MySql(sqlx::MySqlPool),
}

/// A transaction holding rows not yet committed.
#[derive(Debug)]
pub enum Held {
    /// PostgreSQL.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    /// MySQL or MariaDB.
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
}

impl Held {
    /// Commits the held rows.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(tx) => tx.commit().await,
            Self::MySql(tx) => tx.commit().await,
        }
    }
}

fn render(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

impl Exchange {
    /// Connects (`postgres://…` or `mysql://…`).
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        // The partner's database runs in China time, as a Chinese centre's does.
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(4)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query("SET time_zone = '+08:00'").execute(conn).await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await?;
            Ok(Self::MySql(pool))
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query("SET TIME ZONE INTERVAL '+08:00' HOUR TO MINUTE").execute(conn).await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await?;
            Ok(Self::Postgres(pool))
        }
    }

    async fn exec(&self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(p).await.map(|_| ()),
            Self::MySql(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(p).await.map(|_| ()),
        }
    }

    /// (Re)creates the cases table, empty.
    pub async fn create_cases_table(&self) -> Result<(), sqlx::Error> {
        let (time, nullable_time) = match self {
            Self::Postgres(_) => ("TIMESTAMP(6)", "TIMESTAMP(6) NULL"),
            Self::MySql(_) => ("DATETIME(6)", "DATETIME(6) NULL"),
        };
        self.exec(&format!("DROP TABLE IF EXISTS {CASES_TABLE}")).await?;
        self.exec(&format!(
            "CREATE TABLE {CASES_TABLE} (\
             YWH VARCHAR(40) PRIMARY KEY, DJLX VARCHAR(10) NOT NULL, SQFS VARCHAR(4), SJSJ VARCHAR(14), \
             ZT VARCHAR(8), QLRMC VARCHAR(100), ZJH VARCHAR(40), XZQDM VARCHAR(6), \
             CD_BATCH VARCHAR(20), CD_TIME {time} NOT NULL, CD_OPERATION CHAR(1) NOT NULL DEFAULT 'I', \
             SYNC_SIGN INT NOT NULL DEFAULT 0, SYNC_DATE {nullable_time}, SYNC_ERROR_DESC VARCHAR(500) NULL)"
        ))
        .await?;
        self.exec(&format!("CREATE INDEX {CASES_TABLE}_CD_TIME ON {CASES_TABLE} (CD_TIME, YWH)")).await
    }

    /// The database's clock (local time).
    pub async fn clock(&self) -> Result<NaiveDateTime, sqlx::Error> {
        let text: String = match self {
            Self::Postgres(p) => sqlx::query("SELECT CAST(LOCALTIMESTAMP AS text)").fetch_one(p).await?.try_get(0)?,
            Self::MySql(p) => sqlx::query("SELECT CAST(NOW(6) AS CHAR)").fetch_one(p).await?.try_get(0)?,
        };
        NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f").map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }

    fn upsert_sql(&self) -> String {
        let columns = "YWH, DJLX, SQFS, SJSJ, ZT, QLRMC, ZJH, XZQDM, CD_BATCH, CD_TIME, CD_OPERATION, SYNC_SIGN";
        match self {
            Self::Postgres(_) => format!(
                "INSERT INTO {CASES_TABLE} ({columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CAST($10 AS timestamp), $11, 0) \
                 ON CONFLICT (YWH) DO UPDATE SET DJLX = excluded.DJLX, SQFS = excluded.SQFS, SJSJ = excluded.SJSJ, \
                 ZT = excluded.ZT, QLRMC = excluded.QLRMC, ZJH = excluded.ZJH, XZQDM = excluded.XZQDM, \
                 CD_BATCH = excluded.CD_BATCH, CD_TIME = excluded.CD_TIME, CD_OPERATION = excluded.CD_OPERATION, \
                 SYNC_SIGN = 0, SYNC_DATE = NULL, SYNC_ERROR_DESC = NULL"
            ),
            Self::MySql(_) => format!(
                "INSERT INTO {CASES_TABLE} ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS DATETIME(6)), ?, 0) \
                 ON DUPLICATE KEY UPDATE DJLX = VALUES(DJLX), SQFS = VALUES(SQFS), SJSJ = VALUES(SJSJ), ZT = VALUES(ZT), \
                 QLRMC = VALUES(QLRMC), ZJH = VALUES(ZJH), XZQDM = VALUES(XZQDM), CD_BATCH = VALUES(CD_BATCH), \
                 CD_TIME = VALUES(CD_TIME), CD_OPERATION = VALUES(CD_OPERATION), SYNC_SIGN = 0, SYNC_DATE = NULL, \
                 SYNC_ERROR_DESC = NULL"
            ),
        }
    }

    fn binds(case: &ExchangeCase, at: NaiveDateTime, operation: char) -> [String; 11] {
        [
            case.ywh.clone(),
            case.djlx.clone(),
            case.sqfs.clone(),
            case.sjsj.clone(),
            case.zt.clone(),
            case.qlrmc.clone(),
            case.zjh.clone(),
            case.xzqdm.clone(),
            at.format("%Y%m%d").to_string(),
            render(at),
            operation.to_string(),
        ]
    }

    /// Writes (inserts or re-writes) `cases` with `CD_TIME` `at` and the
    /// operation (`I`, `U`, `D`), pending exchange, in one transaction.
    pub async fn write_at(
        &self,
        cases: &[ExchangeCase],
        at: NaiveDateTime,
        operation: char,
    ) -> Result<(), sqlx::Error> {
        let held = self.hold(cases, at, operation).await?;
        held.commit().await
    }

    /// Writes `cases` like [`Exchange::write_at`] in a transaction left open:
    /// the rows carry `at` but are seen only once the caller commits.
    pub async fn hold(&self, cases: &[ExchangeCase], at: NaiveDateTime, operation: char) -> Result<Held, sqlx::Error> {
        let sql = self.upsert_sql();
        macro_rules! held {
            ($pool:expr, $variant:path) => {{
                let mut tx = $pool.begin().await?;
                for case in cases {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                    for b in Self::binds(case, at, operation) {
                        q = q.bind(b);
                    }
                    q.execute(&mut *tx).await?;
                }
                Ok($variant(tx))
            }};
        }
        match self {
            Self::Postgres(pool) => held!(pool, Held::Postgres),
            Self::MySql(pool) => held!(pool, Held::MySql),
        }
    }

    /// (YWH, SYNC_SIGN, SYNC_ERROR_DESC, SYNC_DATE set) of every row, by YWH.
    pub async fn sync_states(&self) -> Result<Vec<(String, i64, Option<String>, bool)>, sqlx::Error> {
        let sql = format!(
            "SELECT YWH, CAST(SYNC_SIGN AS {}), SYNC_ERROR_DESC, CASE WHEN SYNC_DATE IS NULL THEN 0 ELSE 1 END FROM {CASES_TABLE} ORDER BY YWH",
            if matches!(self, Self::Postgres(_)) { "bigint" } else { "SIGNED" }
        );
        macro_rules! rows {
            ($pool:expr) => {{
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all($pool)
                    .await?
                    .iter()
                    .map(|r| {
                        let dated: i64 = r.try_get::<i32, _>(3).map(i64::from).or_else(|_| r.try_get::<i64, _>(3))?;
                        Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, dated == 1))
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            }};
        }
        match self {
            Self::Postgres(p) => rows!(p),
            Self::MySql(p) => rows!(p),
        }
    }
}

/// `n` cases for the exchange table, deterministic by `seed`: partner codes,
/// a `SJSJ` on the day before `day`, names and valid ID numbers.
pub fn cases(n: usize, seed: u64, day: chrono::NaiveDate) -> Vec<ExchangeCase> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let ids = ["11010519491231002X", "430405198807150019", "430421199002280021"];
    (0..n)
        .map(|i| {
            let submitted =
                day.pred_opt().unwrap_or(day).and_hms_opt(8 + (i % 9) as u32, (i % 60) as u32, 0).unwrap_or_default();
            ExchangeCase {
                ywh: format!("GT{:06}", i + 1),
                djlx: DJLX_CODES[rng.random_range(0..DJLX_CODES.len())].0.to_owned(),
                sqfs: if rng.random_bool(0.6) { "1" } else { "3" }.to_owned(),
                sjsj: submitted.format("%Y%m%d%H%M%S").to_string(),
                zt: ["受理", "登簿", "办结"][rng.random_range(0..3)].to_owned(),
                qlrmc: format!("权利人{}", i + 1),
                zjh: ids[i % ids.len()].to_owned(),
                xzqdm: ["430405", "430406", "430482"][i % 3].to_owned(),
            }
        })
        .collect()
}

/// The adapter section that reads [`CASES_TABLE`] (docs/adapters.md's first
/// example); `url` is where its URL comes from, as TOML (`{ env = "GTMAP_URL" }`).
pub fn adapter_toml(url: &str, mode: &str) -> String {
    let djlx: String = DJLX_CODES.iter().map(|(theirs, ours)| format!("\"{theirs}\" = \"{ours}\"\n")).collect();
    let sync = if mode == "sync_flag" {
        "version = \"CD_TIME\"\n[table.sync]\ncolumn = \"SYNC_SIGN\"\npending = \"0\"\ndone = \"1\"\nfailed = \"2\"\ndate_column = \"SYNC_DATE\"\nerror_column = \"SYNC_ERROR_DESC\"\n"
    } else {
        "cursor = \"CD_TIME\"\n"
    };
    format!(
        r#"kind = "case"
schedule = "0 */5 * * * *"

[table]
url = {url}
table = "{CASES_TABLE}"
key = "YWH"
mode = "{mode}"
settle_seconds = 1
lookback = 120
page_size = 100
operation = "CD_OPERATION"
session_time_zone = "+08:00"
{sync}
[fields]
ywh = "YWH"
sqlx = {{ from = "DJLX", codes = "djlx" }}
sqfs = "SQFS"
sjsj = {{ from = "SJSJ", format = "%Y%m%d%H%M%S" }}
gxsj = "CD_TIME"
zt = {{ from = "ZT", codes = "zt" }}
sqrlx = {{ value = "1" }}
"sqr[0].xm" = "QLRMC"
"sqr[0].zjzl" = {{ value = "1" }}
"sqr[0].zjh" = "ZJH"
xzqdm = "XZQDM"

[codes.djlx]
{djlx}
[codes.zt]
"受理" = "SL"
"登簿" = "DB"
"办结" = "GD"
"#
    )
}

/// The registry's case contract as an exchange table (`REG_CASES`): one
/// column per contract field (column, field), text, with `GXSJ` the version
/// as a timestamp (China time).
pub const REGISTRY_COLUMNS: [(&str, &str); 22] = [
    ("YWH", "ywh"),
    ("SQLX", "sqlx"),
    ("SQFS", "sqfs"),
    ("LZFS", "lzfs"),
    ("SQRLX", "sqrlx"),
    ("XM", "sqr[0].xm"),
    ("ZJZL", "sqr[0].zjzl"),
    ("ZJH", "sqr[0].zjh"),
    ("BDCDYH", "bdcdyh"),
    ("XZQDM", "xzqdm"),
    ("SJSJ", "sjsj"),
    ("SLSJ", "slsj"),
    ("HDSJ", "hdsj"),
    ("DBSJ", "dbsj"),
    ("SZSJ", "szsj"),
    ("FZSJ", "fzsj"),
    ("GDSJ", "gdsj"),
    ("ZT", "zt"),
    ("BZCS", "bzcs"),
    ("HTBAH", "htbah"),
    ("DKBH", "dkbh"),
    ("BLR", "blr"),
];

/// The registry cases table.
pub const REGISTRY_TABLE: &str = "REG_CASES";

fn field_text(value: &serde_json::Value, path: &str) -> Option<String> {
    let mut at = value;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        at = at.get(name)?;
        if let Some(i) = index {
            at = at.get(i)?;
        }
    }
    match at {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Exchange {
    /// (Re)creates [`REGISTRY_TABLE`] and writes the flow's cases into it, as
    /// the registry's feed would deliver them (the same fields, as columns).
    pub async fn write_registry_cases(&self, cases: &[crate::world::Case]) -> Result<(), sqlx::Error> {
        let time = match self {
            Self::Postgres(_) => "TIMESTAMP(6)",
            Self::MySql(_) => "DATETIME(6)",
        };
        self.exec(&format!("DROP TABLE IF EXISTS {REGISTRY_TABLE}")).await?;
        let columns: Vec<String> = REGISTRY_COLUMNS
            .iter()
            .map(|(c, _)| if *c == "YWH" { format!("{c} VARCHAR(40) NOT NULL") } else { format!("{c} VARCHAR(200)") })
            .collect();
        self.exec(&format!(
            "CREATE TABLE {REGISTRY_TABLE} ({}, GXSJ {time} NOT NULL, PRIMARY KEY (YWH))",
            columns.join(", ")
        ))
        .await?;
        self.exec(&format!("CREATE INDEX {REGISTRY_TABLE}_GXSJ ON {REGISTRY_TABLE} (GXSJ, YWH)")).await?;
        let names: Vec<&str> = REGISTRY_COLUMNS.iter().map(|(c, _)| *c).collect();
        for chunk in cases.chunks(500) {
            let width = names.len() + 1;
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let cells: Vec<String> = (1..=width)
                        .map(|i| {
                            let n = r * width + i;
                            let p = match self {
                                Self::Postgres(_) => format!("${n}"),
                                Self::MySql(_) => "?".into(),
                            };
                            if i == width {
                                match self {
                                    Self::Postgres(_) => format!("CAST({p} AS timestamp)"),
                                    Self::MySql(_) => format!("CAST({p} AS DATETIME(6))"),
                                }
                            } else {
                                p
                            }
                        })
                        .collect();
                    format!("({})", cells.join(", "))
                })
                .collect();
            let sql = format!("INSERT INTO {REGISTRY_TABLE} ({}, GXSJ) VALUES {}", names.join(", "), rows.join(", "));
            let mut binds: Vec<Option<String>> = Vec::with_capacity(chunk.len() * width);
            for case in chunk {
                let json = crate::servers::registry::case_json(case, case.source_updated_at);
                binds.extend(REGISTRY_COLUMNS.iter().map(|(_, field)| field_text(&json, field)));
                let gxsj = domain::time::china_time(case.source_updated_at).naive_local();
                binds.push(Some(render(gxsj)));
            }
            macro_rules! run {
                ($pool:expr) => {{
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                    for b in &binds {
                        q = q.bind(b.clone());
                    }
                    q.execute($pool).await?;
                }};
            }
            match self {
                Self::Postgres(p) => run!(p),
                Self::MySql(p) => run!(p),
            }
        }
        Ok(())
    }
}

/// The adapter that reads [`REGISTRY_TABLE`] as the registry's cases; `url` is
/// where its URL comes from, as TOML.
pub fn registry_adapter_toml(url: &str) -> String {
    let fields: String =
        REGISTRY_COLUMNS.iter().map(|(column, field)| format!("\"{field}\" = \"{column}\"\n")).collect();
    format!(
        "kind = \"case\"\nschedule = \"0 */5 * * * *\"\n\n[table]\nurl = {url}\ntable = \"{REGISTRY_TABLE}\"\nkey = \"YWH\"\n\
         mode = \"increment\"\ncursor = \"GXSJ\"\nsettle_seconds = 1\nlookback = 600\npage_size = 5000\nsession_time_zone = \"+08:00\"\n\n[fields]\n{fields}gxsj = \"GXSJ\"\n"
    )
}
