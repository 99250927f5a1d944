//! An exchange-database table (前置库) read through `sqlx`: PostgreSQL or
//! MySQL/MariaDB, chosen by the URL.
//!
//! Every column is selected cast to text, so rows are the same on every
//! database and the mapping reads them as it reads any feed. Identifiers come
//! from configuration and are checked to be plain names (letters, digits,
//! `_`, `$`, one optional `schema.`): they are written unquoted, so the
//! database folds them as the partner's own SQL would, and nothing else is
//! ever spliced into SQL; values are bound.
//!
//! # Increment mode
//!
//! A pass reads the rows whose cursor is in `[lower, upper)`, in (cursor, key)
//! order, a page at a time:
//! - `upper` is the partner database's own clock minus `settle_seconds`, read
//!   when the pass starts: a long transaction that holds an earlier timestamp
//!   and commits late is read by a later pass, not skipped (Kafka Connect JDBC
//!   #27, #172, #915);
//! - `lower` is the last pass's `upper` minus `lookback`, inclusive: rows
//!   committed later still than the settle delay are read again, and rows
//!   with the cursor value a pass ended on are never skipped (#1093; Airbyte
//!   #14732, #21500, #10782);
//! - within a pass the position is (cursor, key), so a thousand rows with one
//!   timestamp across a page boundary are each read once;
//! - the position is saved with each page's data in one transaction (the
//!   poll loop's rule), so a killed sync resumes exactly; re-read rows are
//!   deduplicated by key and version by the store's versioned upsert.
//!
//! # Sync-flag mode
//!
//! A pass reads the rows whose flag is pending, in key order. Once a page is
//! committed, each row is marked done with a conditional update naming its key
//! **and the version read**, so a row the partner re-wrote in between stays
//! pending and is read again. The read time and, for a quarantined row, the
//! reason are written back.

use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use sqlx::Row as _;
use tokio::sync::OnceCell;

use super::config::{ColumnType, Dialect, ReadMode, TableConfig};
use crate::poll::{Mark, PageError};

/// A connection to the partner's database.
#[derive(Clone)]
pub enum Db {
    /// PostgreSQL (and 人大金仓 in its PostgreSQL mode).
    Postgres(sqlx::PgPool),
    /// MySQL or MariaDB.
    MySql(sqlx::MySqlPool),
    /// An ODBC driver (Oracle, 达梦, 人大金仓, or any other): its connection
    /// string (credentials included: never printed), the SQL it speaks, and
    /// the statements that set up each session.
    Odbc {
        /// The connection string.
        connection: String,
        /// Its dialect.
        dialect: Dialect,
        /// Run on each new connection (time zone, date formats).
        session: Vec<String>,
    },
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres(_) => f.write_str("Postgres"),
            Self::MySql(_) => f.write_str("MySql"),
            Self::Odbc { dialect, .. } => write!(f, "Odbc({dialect:?})"),
        }
    }
}

impl Db {
    /// The SQL it speaks.
    pub fn dialect(&self) -> Dialect {
        match self {
            Self::Postgres(_) => Dialect::Postgres,
            Self::MySql(_) => Dialect::Mysql,
            Self::Odbc { dialect, .. } => *dialect,
        }
    }
}

impl Dialect {
    /// The text type for casts.
    fn text(self) -> &'static str {
        match self {
            Self::Postgres => "text",
            Self::Mysql => "CHAR",
            Self::Oracle => "VARCHAR2(4000)",
        }
    }

    /// A value cast to a timestamp.
    fn timestamp(self, value: &str) -> String {
        match self {
            Self::Postgres => format!("CAST({value} AS timestamp)"),
            Self::Mysql => format!("CAST({value} AS DATETIME(6))"),
            Self::Oracle => format!("TO_TIMESTAMP({value}, 'YYYY-MM-DD HH24:MI:SS.FF6')"),
        }
    }

    /// A value cast to a whole number.
    fn integer(self, value: &str) -> String {
        match self {
            Self::Postgres => format!("CAST({value} AS bigint)"),
            Self::Mysql => format!("CAST({value} AS SIGNED)"),
            Self::Oracle => format!("CAST({value} AS NUMBER(19))"),
        }
    }

    /// A timestamp's day as `YYYY-MM-DD`.
    fn day(self, value: &str) -> String {
        match self {
            Self::Postgres => format!("CAST(CAST({value} AS date) AS text)"),
            Self::Mysql => format!("CAST(CAST({value} AS DATE) AS CHAR)"),
            Self::Oracle => format!("TO_CHAR({value}, 'YYYY-MM-DD')"),
        }
    }

    /// The database's local clock.
    fn now(self) -> &'static str {
        match self {
            Self::Postgres | Self::Oracle => "LOCALTIMESTAMP",
            Self::Mysql => "NOW(6)",
        }
    }

    /// A query for the clock as text.
    fn clock(self) -> &'static str {
        match self {
            Self::Postgres => "SELECT CAST(LOCALTIMESTAMP AS text)",
            Self::Mysql => "SELECT CAST(NOW(6) AS CHAR)",
            Self::Oracle => "SELECT TO_CHAR(LOCALTIMESTAMP, 'YYYY-MM-DD HH24:MI:SS.FF6') FROM DUAL",
        }
    }

    /// At most `n` rows.
    fn limit(self, n: u32) -> String {
        match self {
            Self::Postgres | Self::Mysql => format!("LIMIT {n}"),
            Self::Oracle => format!("FETCH FIRST {n} ROWS ONLY"),
        }
    }

    /// The statement that sets a session's time zone (checked plain before).
    fn set_zone(self, zone: &str) -> String {
        match self {
            // An offset as an ISO interval: PostgreSQL reads a bare '+08:00' as a
            // POSIX zone, eight hours *west*.
            Self::Postgres if zone.starts_with(['+', '-']) => format!("SET TIME ZONE INTERVAL '{zone}' HOUR TO MINUTE"),
            Self::Postgres => format!("SET TIME ZONE '{zone}'"),
            Self::Mysql => format!("SET time_zone = '{zone}'"),
            Self::Oracle => format!("ALTER SESSION SET TIME_ZONE = '{zone}'"),
        }
    }

    /// Guessed from an ODBC connection string's driver.
    fn guess(connection: &str) -> Option<Self> {
        let lower = connection.to_ascii_lowercase();
        let driver = lower.split(';').find_map(|part| part.trim().strip_prefix("driver="))?;
        if driver.contains("postgres") || driver.contains("kingbase") {
            Some(Self::Postgres)
        } else if driver.contains("mysql") || driver.contains("mariadb") {
            Some(Self::Mysql)
        } else if driver.contains("oracle") || driver.contains("dm") || driver.contains("dameng") {
            Some(Self::Oracle)
        } else {
            None
        }
    }
}

/// The one ODBC environment of the process.
fn odbc_environment() -> Result<&'static odbc_api::Environment, String> {
    static ENV: std::sync::OnceLock<Result<odbc_api::Environment, String>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| odbc_api::Environment::new().map_err(|e| format!("ODBC environment: {e}")))
        .as_ref()
        .map_err(Clone::clone)
}

/// Rows as text, and the rows a statement changed.
type OdbcResult = (Vec<Vec<Option<String>>>, u64);

/// Runs `sql` with text parameters over ODBC (blocking, on its own
/// connection): its rows as text, or the rows it changed.
fn odbc_run(
    connection: &str,
    session: &[String],
    sql: &str,
    binds: &[String],
    fetch: bool,
) -> Result<OdbcResult, String> {
    use odbc_api::{Cursor as _, IntoParameter as _};
    let env = odbc_environment()?;
    let conn = env
        .connect_with_connection_string(connection, odbc_api::ConnectionOptions::default())
        .map_err(|e| format!("cannot connect: {e}"))?;
    for statement in session {
        conn.execute(statement, (), None).map_err(|e| format!("{statement}: {e}"))?;
    }
    let params: Vec<_> = binds.iter().map(|b| b.clone().into_parameter()).collect();
    let mut statement = conn.preallocate().map_err(|e| e.to_string())?;
    if !fetch {
        drop(statement.execute(sql, &params[..]).map_err(|e| e.to_string())?);
        let changed = statement.row_count().map_err(|e| e.to_string())?.unwrap_or(0);
        return Ok((Vec::new(), changed as u64));
    }
    let Some(mut cursor) = statement.execute(sql, &params[..]).map_err(|e| e.to_string())? else {
        return Ok((Vec::new(), 0));
    };
    let buffer = odbc_api::buffers::TextRowSet::for_cursor(200, &mut cursor, Some(2048)).map_err(|e| e.to_string())?;
    let mut block = cursor.bind_buffer(buffer).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    while let Some(batch) = block.fetch().map_err(|e| e.to_string())? {
        for r in 0..batch.num_rows() {
            rows.push((0..batch.num_cols()).map(|c| batch.at_as_str(c, r).ok().flatten().map(str::to_owned)).collect());
        }
    }
    Ok((rows, 0))
}

/// One row as text, by configured column name.
#[derive(Debug, Clone, PartialEq)]
pub struct TextRow {
    /// The columns (as configured) and their values (`null` for SQL NULL).
    pub columns: Map<String, Value>,
}

/// An exchange table.
#[derive(Debug)]
pub struct Table {
    config: TableConfig,
    columns: Vec<String>,
    db: OnceCell<Db>,
}

/// Where a table's reading is (the saved cursor, JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TablePosition {
    /// Increment: every row below this cursor value was read by a finished pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<String>,
    /// The running pass's lower bound (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<String>,
    /// The running pass's upper bound (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<String>,
    /// The running pass's position: the last (cursor, key) read, or the last key (sync flag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<(String, String)>,
    /// Pages read in the running pass.
    #[serde(default)]
    pub page: u64,
}

impl TablePosition {
    /// Parses a saved cursor (empty: the start).
    pub fn parse(cursor: Option<&str>) -> Result<Self, PageError> {
        match cursor.filter(|c| !c.is_empty()) {
            None => Ok(Self::default()),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| PageError::Unreadable(format!("saved cursor {text:?} is not a table position: {e}"))),
        }
    }

    /// As saved.
    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One page of a table.
#[derive(Debug)]
pub struct TablePage {
    /// Its rows.
    pub rows: Vec<TextRow>,
    /// The position after it.
    pub next: TablePosition,
    /// Whether the pass goes on.
    pub has_more: bool,
}

/// Checks that `name` is a plain identifier (or `schema.name`).
pub fn check_identifier(name: &str) -> Result<(), String> {
    let plain = |part: &str| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            && part.len() <= 63
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() <= 2 && parts.iter().all(|p| plain(p)) {
        Ok(())
    } else {
        Err(format!("{name:?} is not a plain column or table name (letters, digits, _ and $)"))
    }
}

fn check_literal(value: &str) -> Result<(), String> {
    if !value.is_empty()
        && value.len() <= 32
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(format!("{value:?} is not a plain flag value (letters, digits, _ and -)"))
    }
}

/// A flag value as SQL: a number as it is, anything else quoted (checked plain first).
fn literal(value: &str) -> String {
    if value.bytes().all(|b| b.is_ascii_digit()) { value.to_owned() } else { format!("'{value}'") }
}

/// Removes `secret` (and its percent-decoded form) from an error text.
pub fn redact(text: &str, secret: &str) -> String {
    let mut out = text.to_owned();
    if secret.is_empty() {
        return out;
    }
    out = out.replace(secret, "***");
    if let Some(password) = url_password(secret).or_else(|| odbc_password(secret)).filter(|p| p.len() >= 3) {
        out = out.replace(&password, "***");
    }
    out
}

/// The password in an ODBC connection string (`PWD=…;` or `Password=…;`).
fn odbc_password(connection: &str) -> Option<String> {
    connection.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        matches!(key.trim().to_ascii_lowercase().as_str(), "pwd" | "password").then(|| value.trim().to_owned())
    })
}

fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split('@').next().filter(|_| rest.contains('@'))?;
    let password = userinfo.split_once(':')?.1;
    Some(password.to_owned())
}

impl Table {
    /// A table reader; checks the configuration (no connection yet).
    /// `mapped` are the columns the mapping reads.
    pub fn new(config: TableConfig, mapped: impl IntoIterator<Item = String>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut columns: Vec<String> = Vec::new();
        let mut add = |name: &str, problems: &mut Vec<String>| {
            if let Err(e) = check_identifier(name) {
                problems.push(e);
            } else if !columns.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                columns.push(name.to_owned());
            }
        };
        if let Err(e) = check_identifier(&config.table) {
            problems.push(format!("table: {e}"));
        }
        add(&config.key, &mut problems);
        match config.mode {
            ReadMode::Increment => match &config.cursor {
                Some(cursor) => add(cursor, &mut problems),
                None => problems.push("increment mode needs cursor = \"COLUMN\"".into()),
            },
            ReadMode::SyncFlag => {
                match &config.sync {
                    None => problems.push("sync_flag mode needs a [sync] table (column, pending, done)".into()),
                    Some(sync) => {
                        for name in [Some(&sync.column), sync.date_column.as_ref(), sync.error_column.as_ref()]
                            .into_iter()
                            .flatten()
                        {
                            if let Err(e) = check_identifier(name) {
                                problems.push(format!("sync: {e}"));
                            }
                        }
                        for value in [Some(&sync.pending), Some(&sync.done), sync.failed.as_ref()].into_iter().flatten()
                        {
                            if let Err(e) = check_literal(value) {
                                problems.push(format!("sync: {e}"));
                            }
                        }
                    }
                }
                match config.version.as_ref().or(config.cursor.as_ref()) {
                    Some(version) => add(version, &mut problems),
                    None => problems
                        .push("sync_flag mode needs version = \"COLUMN\" (the update time the mark names)".into()),
                }
            }
        }
        if config.mode == ReadMode::Increment && config.cursor_type == ColumnType::Text {
            problems.push("cursor_type is timestamp or integer".into());
        }
        if let Some(op) = &config.operation {
            add(op, &mut problems);
        }
        if let Some(day) = &config.day_column {
            add(day, &mut problems);
        }
        for c in config.columns.iter().cloned().chain(mapped) {
            add(&c, &mut problems);
        }
        if let Some(zone) = &config.session_time_zone
            && !zone.chars().all(|c| c.is_ascii_alphanumeric() || "+-:/_".contains(c))
        {
            problems.push(format!("session_time_zone {zone:?} is not a zone name or offset"));
        }
        if config.page_size == 0 || config.page_size > 50_000 {
            problems.push("page_size is 1 to 50000".into());
        }
        if problems.is_empty() { Ok(Self { config, columns, db: OnceCell::new() }) } else { Err(problems) }
    }

    /// Its configuration.
    pub fn config(&self) -> &TableConfig {
        &self.config
    }

    /// The columns it selects.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The connection (made on first use). Errors never carry the URL or password.
    pub async fn db(&self) -> Result<&Db, PageError> {
        self.db.get_or_try_init(|| self.connect()).await
    }

    async fn connect(&self) -> Result<Db, PageError> {
        let url =
            self.config.url.resolve().map_err(|e| PageError::Unreadable(format!("{}: url: {e}", self.config.table)))?;
        let fail = |e: sqlx::Error| {
            PageError::Unreadable(format!("{}: cannot connect: {}", self.config.table, redact(&e.to_string(), &url)))
        };
        let zone = self.config.session_time_zone.clone();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(15))
                .after_connect(move |conn, _| {
                    let zone = zone.clone();
                    Box::pin(async move {
                        if let Some(zone) = zone {
                            // Checked to be a plain zone name or offset in `Table::new`. An
                            // offset is an ISO interval here: PostgreSQL reads a bare '+08:00'
                            // as a POSIX zone, eight hours *west*.
                            let set = Dialect::Postgres.set_zone(&zone);
                            sqlx::query(sqlx::AssertSqlSafe(set)).execute(conn).await?;
                        }
                        Ok(())
                    })
                })
                .connect(&url)
                .await
                .map_err(fail)?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(15))
                .after_connect(move |conn, _| {
                    let zone = zone.clone();
                    Box::pin(async move {
                        if let Some(zone) = zone {
                            sqlx::query(sqlx::AssertSqlSafe(Dialect::Mysql.set_zone(&zone))).execute(conn).await?;
                        }
                        Ok(())
                    })
                })
                .connect(&url)
                .await
                .map_err(fail)?;
            Ok(Db::MySql(pool))
        } else if let Some(connection) = url.strip_prefix("odbc:") {
            let dialect = self.config.dialect.or_else(|| Dialect::guess(connection)).ok_or_else(|| {
                PageError::Unreadable(format!(
                    "{}: say dialect = \"postgres\", \"mysql\" or \"oracle\" for this ODBC driver",
                    self.config.table
                ))
            })?;
            let mut session = Vec::new();
            if dialect == Dialect::Oracle {
                // Timestamps as text in one form, whatever the server's NLS settings.
                session.push("ALTER SESSION SET NLS_TIMESTAMP_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF6'".to_owned());
                session.push("ALTER SESSION SET NLS_DATE_FORMAT = 'YYYY-MM-DD HH24:MI:SS'".to_owned());
            }
            if let Some(zone) = &self.config.session_time_zone {
                session.push(dialect.set_zone(zone));
            }
            // Connect once now, so a wrong connection string fails here, clearly.
            let (probe, probe_session, table) = (connection.to_owned(), session.clone(), self.config.table.clone());
            tokio::task::spawn_blocking(move || odbc_run(&probe, &probe_session, dialect.clock(), &[], true))
                .await
                .map_err(|e| PageError::Unreadable(format!("{table}: {e}")))?
                .map_err(|e| PageError::Unreadable(format!("{}: {}", self.config.table, redact(&e, connection))))?;
            Ok(Db::Odbc { connection: connection.to_owned(), dialect, session })
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            Err(PageError::Unreadable(format!(
                "{}: url scheme {scheme:?} is not postgres://, mysql:// or odbc:",
                self.config.table
            )))
        }
    }

    fn ph(&self, db: &Db, n: usize) -> String {
        match db {
            Db::Postgres(_) => format!("${n}"),
            Db::MySql(_) | Db::Odbc { .. } => "?".into(),
        }
    }

    fn as_text(db: &Db, column: &str) -> String {
        format!("CAST({column} AS {})", db.dialect().text())
    }

    fn typed(&self, db: &Db, placeholder: String, ty: ColumnType) -> String {
        match ty {
            ColumnType::Text => placeholder,
            ColumnType::Timestamp => db.dialect().timestamp(&placeholder),
            ColumnType::Integer => db.dialect().integer(&placeholder),
        }
    }

    fn select_list(&self, db: &Db) -> String {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS c{i}", Self::as_text(db, c)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Runs `sql` with text `binds` and returns its rows as text.
    pub async fn query_text(&self, sql: &str, binds: &[String]) -> Result<Vec<Vec<Option<String>>>, PageError> {
        let db = self.db().await?;
        let fail = |e: sqlx::Error| PageError::Unreadable(format!("{}: {e}", self.config.table));
        macro_rules! run {
            ($pool:expr) => {{
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    query = query.bind(b.clone());
                }
                let rows = query.fetch_all($pool).await.map_err(fail)?;
                rows.iter()
                    .map(|row| {
                        (0..row.len()).map(|i| row.try_get::<Option<String>, _>(i)).collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(fail)?
            }};
        }
        Ok(match db {
            Db::Postgres(pool) => run!(pool),
            Db::MySql(pool) => run!(pool),
            Db::Odbc { .. } => self.odbc(db, sql, binds, true).await?.0,
        })
    }

    async fn odbc(
        &self,
        db: &Db,
        sql: &str,
        binds: &[String],
        fetch: bool,
    ) -> Result<(Vec<Vec<Option<String>>>, u64), PageError> {
        let Db::Odbc { connection, session, .. } = db else { return Ok((Vec::new(), 0)) };
        let (connection, session, sql, binds) = (connection.clone(), session.clone(), sql.to_owned(), binds.to_vec());
        let secret = connection.clone();
        let table = self.config.table.clone();
        tokio::task::spawn_blocking(move || odbc_run(&connection, &session, &sql, &binds, fetch))
            .await
            .map_err(|e| PageError::Unreadable(format!("{table}: {e}")))?
            .map_err(|e| PageError::Unreadable(format!("{table}: {}", redact(&e, &secret))))
    }

    /// Runs a statement with text `binds`; the rows it changed.
    async fn execute(&self, sql: &str, binds: &[String]) -> Result<u64, PageError> {
        let db = self.db().await?;
        let fail = |e: sqlx::Error| PageError::Unreadable(format!("{}: {e}", self.config.table));
        macro_rules! run {
            ($pool:expr) => {{
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    query = query.bind(b.clone());
                }
                query.execute($pool).await.map_err(fail)?.rows_affected()
            }};
        }
        Ok(match db {
            Db::Postgres(pool) => run!(pool),
            Db::MySql(pool) => run!(pool),
            Db::Odbc { .. } => self.odbc(db, sql, binds, false).await?.1,
        })
    }

    /// The partner database's clock (local time, as text).
    pub async fn clock(&self) -> Result<NaiveDateTime, PageError> {
        let db = self.db().await?;
        let sql = db.dialect().clock();
        let rows = self.query_text(sql, &[]).await?;
        let text = rows.first().and_then(|r| r.first().cloned().flatten()).unwrap_or_default();
        parse_naive(&text).ok_or_else(|| PageError::Unreadable(format!("the partner's clock {text:?} is not a time")))
    }

    fn to_rows(&self, raw: Vec<Vec<Option<String>>>) -> Vec<TextRow> {
        raw.into_iter()
            .map(|values| TextRow {
                columns: self
                    .columns
                    .iter()
                    .zip(values)
                    .map(|(c, v)| (c.clone(), v.map_or(Value::Null, Value::String)))
                    .collect(),
            })
            .collect()
    }

    /// The value of `column` in `row` (empty for NULL).
    pub fn value<'a>(&self, row: &'a TextRow, column: &str) -> &'a str {
        row.columns.get(column).and_then(Value::as_str).unwrap_or_default()
    }

    /// The page after `position`.
    pub async fn read(&self, position: &TablePosition) -> Result<TablePage, PageError> {
        match self.config.mode {
            ReadMode::Increment => self.read_increment(position).await,
            ReadMode::SyncFlag => self.read_pending(position).await,
        }
    }

    async fn read_increment(&self, position: &TablePosition) -> Result<TablePage, PageError> {
        let db = self.db().await?.clone();
        let cfg = &self.config;
        let cursor = cfg.cursor.as_deref().unwrap_or_default();
        let mut at = position.clone();
        if at.upper.is_none() && at.after.is_none() {
            // A new pass: its bounds.
            match cfg.cursor_type {
                ColumnType::Timestamp => {
                    let clock = self.clock().await?;
                    let upper =
                        clock - chrono::Duration::seconds(i64::try_from(cfg.settle_seconds).unwrap_or(i64::MAX / 2));
                    at.upper = Some(render_naive(upper));
                    at.lower = at.done.as_deref().and_then(parse_naive).map(|done| {
                        render_naive(done - chrono::Duration::seconds(i64::try_from(cfg.lookback).unwrap_or(0)))
                    });
                }
                _ => {
                    at.upper = None;
                    at.lower = at
                        .done
                        .as_deref()
                        .and_then(|d| d.parse::<i64>().ok())
                        .map(|d| (d - i64::try_from(cfg.lookback).unwrap_or(0)).to_string());
                }
            }
            at.page = 0;
        }
        let mut clauses = Vec::new();
        let mut binds = Vec::new();
        let bind = |value: String, ty: ColumnType, binds: &mut Vec<String>| {
            binds.push(value);
            self.typed(&db, self.ph(&db, binds.len()), ty)
        };
        if let Some(lower) = &at.lower {
            clauses.push(format!("{cursor} >= {}", bind(lower.clone(), cfg.cursor_type, &mut binds)));
        }
        if let Some(upper) = &at.upper {
            clauses.push(format!("{cursor} < {}", bind(upper.clone(), cfg.cursor_type, &mut binds)));
        }
        if let Some((c, k)) = &at.after {
            let c1 = bind(c.clone(), cfg.cursor_type, &mut binds);
            let c2 = bind(c.clone(), cfg.cursor_type, &mut binds);
            let k1 = bind(k.clone(), cfg.key_type, &mut binds);
            clauses.push(format!("({cursor} > {c1} OR ({cursor} = {c2} AND {key} > {k1}))", key = cfg.key));
        }
        clauses.push(format!("{cursor} IS NOT NULL"));
        let sql = format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {cursor}, {} {}",
            self.select_list(&db),
            cfg.table,
            clauses.join(" AND "),
            cfg.key,
            db.dialect().limit(cfg.page_size)
        );
        let rows = self.to_rows(self.query_text(&sql, &binds).await?);
        let full = rows.len() == cfg.page_size as usize;
        let mut next = at.clone();
        next.page += 1;
        if let Some(last) = rows.last() {
            next.after = Some((self.value(last, cursor).to_owned(), self.value(last, &cfg.key).to_owned()));
        }
        if !full {
            // The pass is over: everything below its upper bound committed
            // before it began has been read.
            let done = match cfg.cursor_type {
                ColumnType::Timestamp => at.upper.clone(),
                _ => {
                    let seen = rows.iter().filter_map(|r| self.value(r, cursor).parse::<i64>().ok()).max();
                    let before = at.done.as_deref().and_then(|d| d.parse::<i64>().ok());
                    seen.max(before).map(|v| v.to_string())
                }
            };
            next = TablePosition { done: done.or(at.done.clone()), ..TablePosition::default() };
        }
        Ok(TablePage { rows, next, has_more: full })
    }

    async fn read_pending(&self, position: &TablePosition) -> Result<TablePage, PageError> {
        let db = self.db().await?.clone();
        let cfg = &self.config;
        let Some(sync) = &cfg.sync else { return Err(PageError::Unreadable("no [sync] settings".into())) };
        let mut binds = Vec::new();
        let mut clause = format!("{} = {}", sync.column, literal(&sync.pending));
        if let Some((_, key)) = &position.after {
            binds.push(key.clone());
            clause.push_str(&format!(" AND {} > {}", cfg.key, self.typed(&db, self.ph(&db, 1), cfg.key_type)));
        }
        let sql = format!(
            "SELECT {} FROM {} WHERE {clause} ORDER BY {} {}",
            self.select_list(&db),
            cfg.table,
            cfg.key,
            db.dialect().limit(cfg.page_size)
        );
        let rows = self.to_rows(self.query_text(&sql, &binds).await?);
        let full = rows.len() == cfg.page_size as usize;
        let next = match (full, rows.last()) {
            (true, Some(last)) => TablePosition {
                after: Some((String::new(), self.value(last, &cfg.key).to_owned())),
                page: position.page + 1,
                ..TablePosition::default()
            },
            _ => TablePosition::default(),
        };
        Ok(TablePage { rows, next, has_more: full })
    }

    /// The first `limit` rows in reading order, with no bound (what `partner
    /// map` shows; an increment pass would leave the newest for their settle delay).
    pub async fn peek(&self, limit: u32) -> Result<Vec<TextRow>, PageError> {
        if self.config.mode == ReadMode::SyncFlag {
            return Ok(self
                .read_pending(&TablePosition::default())
                .await?
                .rows
                .into_iter()
                .take(limit as usize)
                .collect());
        }
        let db = self.db().await?.clone();
        let cursor = self.config.cursor.as_deref().unwrap_or_default();
        let sql = format!(
            "SELECT {} FROM {} WHERE {cursor} IS NOT NULL ORDER BY {cursor}, {} {}",
            self.select_list(&db),
            self.config.table,
            self.config.key,
            db.dialect().limit(limit.min(self.config.page_size))
        );
        Ok(self.to_rows(self.query_text(&sql, &[]).await?))
    }

    /// The version text of a row (what its mark names).
    pub fn version_of(&self, row: &TextRow) -> String {
        let column = self.config.version.as_deref().or(self.config.cursor.as_deref()).unwrap_or_default();
        self.value(row, column).to_owned()
    }

    /// The key text of a row.
    pub fn key_of(&self, row: &TextRow) -> String {
        self.value(row, &self.config.key).to_owned()
    }

    /// Whether the row is a delete.
    pub fn is_delete(&self, row: &TextRow) -> bool {
        self.config.operation.as_deref().is_some_and(|op| {
            let value = self.value(row, op).trim();
            self.config.delete_values.iter().any(|d| d.eq_ignore_ascii_case(value))
        })
    }

    /// Marks rows read (sync-flag mode): each by key and the version read,
    /// only while still pending. Rows re-written since are left pending.
    /// Returns how many were marked.
    pub async fn mark(&self, marks: &[Mark]) -> Result<u64, PageError> {
        let (Some(sync), ReadMode::SyncFlag) = (&self.config.sync, self.config.mode) else { return Ok(0) };
        let db = self.db().await?.clone();
        let cfg = &self.config;
        let version = cfg.version.as_deref().or(cfg.cursor.as_deref()).unwrap_or_default();
        let now = db.dialect().now();
        let mut marked = 0;
        // Rows read well: in batches, by (key, version) pairs.
        let good: Vec<&Mark> = marks.iter().filter(|m| m.error.is_none()).collect();
        for chunk in good.chunks(200) {
            let mut binds = Vec::new();
            let mut pairs = Vec::new();
            for m in chunk {
                binds.push(m.key.clone());
                let k = self.typed(&db, self.ph(&db, binds.len()), cfg.key_type);
                binds.push(m.version.clone());
                let v = self.ph(&db, binds.len());
                pairs.push(format!("({} = {k} AND {} = {v})", cfg.key, Self::as_text(&db, version)));
            }
            let mut set = format!("{} = {}", sync.column, literal(&sync.done));
            if let Some(date) = &sync.date_column {
                set.push_str(&format!(", {date} = {now}"));
            }
            if let Some(error) = &sync.error_column {
                set.push_str(&format!(", {error} = NULL"));
            }
            let sql = format!(
                "UPDATE {} SET {set} WHERE {} = {} AND ({})",
                cfg.table,
                sync.column,
                literal(&sync.pending),
                pairs.join(" OR ")
            );
            marked += self.execute(&sql, &binds).await?;
        }
        // Rows we quarantined: one by one, each with its reason.
        for m in marks.iter().filter(|m| m.error.is_some()) {
            let mut binds = vec![m.key.clone(), m.version.clone()];
            let mut set = format!("{} = {}", sync.column, literal(sync.failed.as_deref().unwrap_or(&sync.done)));
            if let Some(date) = &sync.date_column {
                set.push_str(&format!(", {date} = {now}"));
            }
            if let Some(error) = &sync.error_column {
                binds.insert(0, m.error.clone().unwrap_or_default().chars().take(500).collect());
                set.push_str(&format!(", {error} = {}", self.ph(&db, 1)));
            }
            let n = binds.len();
            let sql = format!(
                "UPDATE {} SET {set} WHERE {} = {} AND {} = {} AND {} = {}",
                cfg.table,
                sync.column,
                literal(&sync.pending),
                cfg.key,
                self.typed(&db, self.ph(&db, n - 1), cfg.key_type),
                Self::as_text(&db, version),
                self.ph(&db, n)
            );
            marked += self.execute(&sql, &binds).await?;
        }
        Ok(marked)
    }

    /// Whether our account may update the sync flag: an update that matches
    /// no row, which the database still checks for privileges.
    pub async fn may_mark(&self) -> Result<(), PageError> {
        let Some(sync) = &self.config.sync else { return Ok(()) };
        let sql = format!("UPDATE {} SET {col} = {col} WHERE 1 = 0", self.config.table, col = sync.column);
        self.execute(&sql, &[]).await.map(|_| ())
    }

    /// How many rows share the most common cursor value, and that value.
    pub async fn widest_cursor_value(&self) -> Result<Option<(String, i64)>, PageError> {
        let Some(cursor) = self.config.cursor.as_deref() else { return Ok(None) };
        let db = self.db().await?.clone();
        let sql = format!(
            "SELECT {} AS v, CAST(COUNT(*) AS {}) AS n FROM {} GROUP BY {cursor} ORDER BY COUNT(*) DESC {}",
            Self::as_text(&db, cursor),
            db.dialect().text(),
            self.config.table,
            db.dialect().limit(1)
        );
        let rows = self.query_text(&sql, &[]).await?;
        Ok(rows.first().map(|r| {
            let value = r.first().cloned().flatten().unwrap_or_default();
            let n = r.get(1).cloned().flatten().and_then(|n| n.parse().ok()).unwrap_or(0);
            (value, n)
        }))
    }

    /// The distinct values of `column` (at most `limit`), for code-table coverage.
    pub async fn distinct(&self, column: &str, limit: u32) -> Result<Vec<String>, PageError> {
        check_identifier(column).map_err(PageError::Unreadable)?;
        let db = self.db().await?.clone();
        let sql = format!(
            "SELECT DISTINCT {} FROM {} WHERE {column} IS NOT NULL {}",
            Self::as_text(&db, column),
            self.config.table,
            db.dialect().limit(limit)
        );
        Ok(self.query_text(&sql, &[]).await?.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect())
    }

    /// The column days are counted by: `day_column`, else the version, else the cursor.
    pub fn day_column(&self) -> Option<&str> {
        self.config.day_column.as_deref().or(self.config.version.as_deref()).or(self.config.cursor.as_deref())
    }

    /// Keys by the day of their latest version (`day_column`), for versions in
    /// `[lower, upper)` (the partner's local time): the partner's side of the
    /// day reconciliation.
    pub async fn day_counts(
        &self,
        lower: NaiveDateTime,
        upper: NaiveDateTime,
    ) -> Result<std::collections::BTreeMap<String, i64>, PageError> {
        let Some(day) = self.day_column() else { return Ok(Default::default()) };
        let db = self.db().await?.clone();
        let dialect = db.dialect();
        let sql = format!(
            "SELECT {d}, CAST(COUNT(*) AS {text}) FROM (SELECT {key}, MAX({day}) AS v FROM {table} GROUP BY {key}) latest WHERE v >= {p1} AND v < {p2} GROUP BY {d}",
            d = dialect.day("v"),
            text = dialect.text(),
            key = self.config.key,
            table = self.config.table,
            p1 = dialect.timestamp(&self.ph(&db, 1)),
            p2 = dialect.timestamp(&self.ph(&db, 2)),
        );
        let rows = self.query_text(&sql, &[render_naive(lower), render_naive(upper)]).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let day = r.first().cloned().flatten()?;
                let n = r.get(1).cloned().flatten()?.parse().ok()?;
                Some((day, n))
            })
            .collect())
    }

    /// The page after `after` of the rows whose `day_column` is in `[lower,
    /// upper)`, in (day column, key) order: a day read again whole.
    pub async fn read_range(
        &self,
        lower: NaiveDateTime,
        upper: NaiveDateTime,
        after: Option<&(String, String)>,
    ) -> Result<Vec<TextRow>, PageError> {
        let Some(day) = self.day_column() else { return Ok(Vec::new()) };
        let db = self.db().await?.clone();
        let cfg = &self.config;
        let ts = ColumnType::Timestamp;
        let mut binds = vec![render_naive(lower), render_naive(upper)];
        let mut clause = format!(
            "{day} >= {} AND {day} < {}",
            self.typed(&db, self.ph(&db, 1), ts),
            self.typed(&db, self.ph(&db, 2), ts)
        );
        if let Some((c, k)) = after {
            binds.extend([c.clone(), c.clone(), k.clone()]);
            clause.push_str(&format!(
                " AND ({day} > {} OR ({day} = {} AND {} > {}))",
                self.typed(&db, self.ph(&db, 3), ts),
                self.typed(&db, self.ph(&db, 4), ts),
                cfg.key,
                self.typed(&db, self.ph(&db, 5), cfg.key_type)
            ));
        }
        let sql = format!(
            "SELECT {} FROM {} WHERE {clause} ORDER BY {day}, {} {}",
            self.select_list(&db),
            cfg.table,
            cfg.key,
            db.dialect().limit(cfg.page_size)
        );
        Ok(self.to_rows(self.query_text(&sql, &binds).await?))
    }

    /// Rows whose cursor is NULL (an increment pass never reads them).
    pub async fn count_null_cursor(&self) -> Result<i64, PageError> {
        let Some(cursor) = self.config.cursor.as_deref() else { return Ok(0) };
        let db = self.db().await?.clone();
        let sql = format!(
            "SELECT CAST(COUNT(*) AS {}) FROM {} WHERE {cursor} IS NULL",
            db.dialect().text(),
            self.config.table
        );
        let rows = self.query_text(&sql, &[]).await?;
        Ok(rows.first().and_then(|r| r.first().cloned().flatten()).and_then(|n| n.parse().ok()).unwrap_or(0))
    }
}

/// A database timestamp as text (`2024-10-08 09:30:00.123456`).
pub fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
}

fn render_naive(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_reach_sql() {
        assert!(check_identifier("BDC_YW_SL").is_ok());
        assert!(check_identifier("qzk.BDC_YW_SL").is_ok());
        for bad in ["a;drop table x", "a b", "\"x\"", "a.b.c", "", "1abc"] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
        assert!(check_literal("0").is_ok());
        assert!(check_literal("0' OR '1").is_err());
    }

    #[test]
    fn odbc_dialects_are_guessed_from_the_driver() {
        assert_eq!(Dialect::guess("Driver={PostgreSQL Unicode};Server=h"), Some(Dialect::Postgres));
        assert_eq!(Dialect::guess("DRIVER={KingbaseES ODBC};Server=h"), Some(Dialect::Postgres));
        assert_eq!(Dialect::guess("Driver={MariaDB Unicode};Server=h"), Some(Dialect::Mysql));
        assert_eq!(Dialect::guess("Driver={DM8 ODBC DRIVER};Server=h"), Some(Dialect::Oracle));
        assert_eq!(Dialect::guess("Driver={Oracle 21 ODBC driver};Dbq=x"), Some(Dialect::Oracle));
        assert_eq!(Dialect::guess("DSN=qzk"), None);
        let text = "[unixODBC] login failed for Driver={DM8};Server=h;UID=sync;PWD=Qz9secret;";
        assert!(!redact(text, "Driver={DM8};Server=h;UID=sync;PWD=Qz9secret;").contains("Qz9secret"));
        assert_eq!(Dialect::Oracle.limit(5), "FETCH FIRST 5 ROWS ONLY");
    }

    #[test]
    fn passwords_never_reach_an_error_text() {
        let url = "mysql://sync:s3cr%40t@10.0.0.5/qzk";
        let text = format!("error connecting to {url}: password s3cr%40t refused");
        let clean = redact(&text, url);
        assert!(!clean.contains("s3cr"), "{clean}");
    }
}
