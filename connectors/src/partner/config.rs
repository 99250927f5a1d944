//! A partner as configuration: one TOML section says where its rows are
//! (an exchange table or an HTTP feed), how they are read, and how their
//! fields map onto one of our record kinds (`docs/adapters.md`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::mapping::{FieldSpec, RecordKind};

/// `[partners.NAME]`: one configured partner feed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// The record kind its rows are.
    pub kind: RecordKind,
    /// When to pull (cron, UTC).
    pub schedule: String,
    /// Whether it runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The store source name its bank loans carry (default `bank:NAME`);
    /// the other kinds carry their kind's own, whatever this says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// An exchange-database table (前置库).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableConfig>,
    /// An HTTP feed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpConfig>,
    /// A drop folder of CSV or XML files (前置机).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<super::files::FilesConfig>,
    /// Target field → how it is filled.
    pub fields: BTreeMap<String, FieldSpec>,
    /// Code tables: name → (partner's code → ours).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub codes: BTreeMap<String, BTreeMap<String, String>>,
}

fn yes() -> bool {
    true
}

/// Where a secret comes from: never the configuration file itself.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// An environment variable holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A file holding it (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Given by the program (the legacy `[[connectors.banks]]` token); never read from TOML.
    #[serde(skip)]
    pub inline: Option<String>,
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRef").field("env", &self.env).field("file", &self.file).finish_non_exhaustive()
    }
}

impl SecretRef {
    /// The secret, or why it cannot be had (naming the variable or file, never the value).
    pub fn resolve(&self) -> Result<String, String> {
        if let Some(value) = &self.inline {
            return Ok(value.clone());
        }
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var).map_err(|_| format!("environment variable {var} is not set")),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| format!("{}: {e}", path.display())),
            (Some(_), Some(_)) => Err("give env or file, not both".into()),
            (None, None) => Err("give env or file".into()),
        }
    }
}

/// How an exchange table is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// By a cursor column (time or number) and the key.
    Increment,
    /// By a sync flag the partner sets to pending and we set to done.
    SyncFlag,
}

/// The SQL a database speaks, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// PostgreSQL, 人大金仓 (KingbaseES).
    Postgres,
    /// MySQL, MariaDB.
    Mysql,
    /// Oracle, 达梦 (DM) in its Oracle-compatible mode.
    Oracle,
}

/// The type of a cursor or key column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// A timestamp without zone (`timestamp`, `DATETIME`).
    #[default]
    Timestamp,
    /// A whole number.
    Integer,
    /// Text.
    Text,
}

/// `[partners.NAME.table]`: an exchange-database table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The database URL (`postgres://…`, `mysql://…`), with its
    /// password, from the environment or a file.
    pub url: SecretRef,
    /// The table (`schema.table` allowed).
    pub table: String,
    /// The key column.
    pub key: String,
    /// The key's type (`text` or `integer`).
    #[serde(default = "text_type")]
    pub key_type: ColumnType,
    /// How it is read.
    pub mode: ReadMode,
    /// The cursor column (increment mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The cursor's type (`timestamp` or `integer`).
    #[serde(default)]
    pub cursor_type: ColumnType,
    /// The version column the sync flag's mark names (sync-flag mode;
    /// defaults to the cursor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Rows newer than the partner's clock minus this are left for the next
    /// pass: a transaction still open holds an earlier time.
    #[serde(default = "settle_default")]
    pub settle_seconds: u64,
    /// Each pass reads again this far behind its start (seconds, or cursor
    /// units for a number cursor), for rows committed later than the settle delay.
    #[serde(default = "lookback_default")]
    pub lookback: u64,
    /// Rows per page.
    #[serde(default = "page_default")]
    pub page_size: u32,
    /// The operation column (I/U/D); a delete ends the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The operation values that are deletes.
    #[serde(default = "delete_default")]
    pub delete_values: Vec<String>,
    /// The sync flag (sync-flag mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncConfig>,
    /// The SQL dialect behind an ODBC connection (`postgres`, `mysql`,
    /// `oracle`; default: guessed from the driver's name: PostgreSQL and
    /// 人大金仓 → postgres, MySQL and MariaDB → mysql, Oracle and 达梦 → oracle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<Dialect>,
    /// The session time zone set on each connection (`+08:00`, or a zone name
    /// such as `Asia/Shanghai` where the server knows it): the zone the
    /// partner's clock is read in, which should be the zone its timestamps are
    /// written in (`partner check` shows the offset from ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_time_zone: Option<String>,
    /// Columns an expression reads that no field names with `from`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// The timestamp column rows are counted by day for the day
    /// reconciliation (default: the version column, else the cursor); the
    /// record's version should be mapped from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_column: Option<String>,
}

fn text_type() -> ColumnType {
    ColumnType::Text
}
fn settle_default() -> u64 {
    30
}
fn lookback_default() -> u64 {
    600
}
fn page_default() -> u32 {
    1000
}
fn delete_default() -> Vec<String> {
    vec!["D".into()]
}

/// The sync flag's columns and values (gtmap: `SYNC_SIGN` 0 待交换 / 1 已交换).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The flag column.
    #[serde(default = "sign_default")]
    pub column: String,
    /// Its value for rows waiting to be read.
    #[serde(default = "pending_default")]
    pub pending: String,
    /// Its value once read.
    #[serde(default = "done_default")]
    pub done: String,
    /// Its value for a row we quarantined (default: `done`; the reason is written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Where the read time is written back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_column: Option<String>,
    /// Where a quarantined row's reason is written back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_column: Option<String>,
}

fn sign_default() -> String {
    "SYNC_SIGN".into()
}
fn pending_default() -> String {
    "0".into()
}
fn done_default() -> String {
    "1".into()
}

/// The body of an HTTP feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// JSON.
    #[default]
    Json,
    /// XML: records are repeated elements.
    Xml,
}

/// How an HTTP feed pages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// The answer names the next page's token (`next`), sent back as `param`.
    Cursor {
        /// The query parameter.
        param: String,
        /// Path to the next token in the answer.
        next: String,
        /// Path to a has-more flag, if the feed gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        has_more: Option<String>,
    },
    /// Page numbers.
    Page {
        /// The query parameter.
        param: String,
        /// The first page's number.
        #[serde(default = "one")]
        first: u64,
        /// Path to the page count (`@pages` for an attribute of an XML list).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total_pages: Option<String>,
    },
    /// Offsets.
    Offset {
        /// The offset parameter.
        param: String,
        /// The limit parameter.
        limit_param: String,
        /// Records per page.
        limit: u64,
    },
    /// The answer holds the next page's URL.
    NextLink {
        /// Path to it.
        next: String,
    },
}

fn one() -> u64 {
    1
}

/// How the feed is asked for changes since the last run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SinceConfig {
    /// The query parameter (`updated_after`).
    pub param: String,
    /// The path of each record's version, as the feed writes it (`updatedAt`).
    pub from: String,
}

/// Authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// None.
    #[default]
    None,
    /// `Authorization: Bearer …`.
    Bearer {
        /// The token.
        token: SecretRef,
    },
    /// HTTP basic.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: SecretRef,
    },
    /// Our HMAC signature (`X-Partner-Id`, `X-Signature` over the path; docs/court-api.md).
    Hmac {
        /// Our id at the partner.
        partner_id: String,
        /// The shared secret.
        secret: SecretRef,
        /// Also sign with HMAC-SM3.
        #[serde(default)]
        sm3: bool,
    },
}

/// `[partners.NAME.http]`: an HTTP feed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The feed's URL.
    pub url: String,
    /// JSON or XML.
    #[serde(default)]
    pub format: BodyFormat,
    /// `utf-8` (default), `gbk` or `gb18030`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Path to the records: `data`, `result.items`; for XML `List/Row`.
    pub records: String,
    /// Query parameters sent on every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// How it pages.
    pub pagination: Pagination,
    /// Changes since the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<SinceConfig>,
    /// Authentication.
    #[serde(default)]
    pub auth: AuthConfig,
}
