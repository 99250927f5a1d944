//! The one typed settings tree, layered: built-in defaults → the `--config`
//! TOML file → `WANGBAN__SECTION__KEY` environment variables → command-line
//! flags. Unknown keys are errors that name the key, so a typo never silently
//! falls back to a default.
//!
//! ```toml
//! data_dir = "./data"
//!
//! [database]
//! url = "postgres://wangban@db.internal/wangban"   # default: sqlite://<data_dir>/wangban.db
//! sandbox_url = "postgres://wangban@db.internal/wangban_sandbox"  # default: sqlite://<data_dir>/sandbox.db
//! max_connections = 8
//!
//! sqlite_synchronous = "full"   # or "normal": faster, may lose the last commits on power loss
//!
//! [server]
//! listen = "127.0.0.1:8080"
//!
//! [jobs]
//! seizure_lapse = "0 5 16 * * *"   # cron, UTC: 00:05 China time
//! reconciliation = "0 30 16 * * *" # cron, UTC: 00:30 China time
//! monthly_report = "0 0 1 1 * *"    # cron, UTC: 09:00 China time on the 1st, last month's 月报
//!
//! [domain]
//! calendar_file = "/etc/wangban/calendar-2027.toml"   # extra calendar years
//! catalogue_file = "/etc/wangban/catalogue.toml"      # business-type limit overrides
//!
//! [log]
//! level = "info"      # or a RUST_LOG-style filter
//! format = "text"     # or "json"
//!
//! [alerts]
//! webhook_url = "http://alerts.internal/hook"   # none: dashboards only
//! webhook_format = "json"                       # or "robot" (WeCom / DingTalk text)
//! target_month = "2026-12"                      # when 90% is due
//! seizure_expiry_days = 30
//! connector_lag_hours = 3           # office hours on working days without new data
//! connector_lag_hours_by = { housing = 13, "registry-qc" = 13, "registry-evaluations" = 13 }
//! connector_lag_clock_by = {}       # "always" for a feed expected round the clock
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use domain::{Calendar, Catalogue};
use serde::Deserialize;

use crate::cli::Cli;

/// Prefix of environment overrides: `WANGBAN__DATABASE__URL` sets `database.url`.
pub const ENV_PREFIX: &str = "WANGBAN__";

/// All settings.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Data directory (SQLite file, warehouse).
    pub data_dir: PathBuf,
    /// Database.
    pub database: DatabaseSettings,
    /// HTTP server.
    pub server: ServerSettings,
    /// Domain data files.
    pub domain: DomainSettings,
    /// Logging.
    pub log: LogSettings,
    /// Scheduled jobs.
    pub jobs: JobSettings,
    /// Partner connectors (`wangban simulate --write-config` writes them).
    pub connectors: ConnectorsSettings,
    /// The Parquet warehouse and the analyst console.
    pub warehouse: WarehouseSettings,
    /// Alerts evaluated after each warehouse refresh, and where they are sent.
    pub alerts: AlertSettings,
    /// Analysts' own tools: the warehouse over the PostgreSQL wire protocol.
    pub analytics: AnalyticsSettings,
    /// This host's part of a Ballista cluster.
    pub cluster: ClusterSettings,
    /// `[partners.NAME]`: partners by configuration (exchange tables and HTTP
    /// feeds mapped onto our record kinds; `docs/adapters.md`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub partners: std::collections::BTreeMap<String, connectors::partner::config::PartnerConfig>,
}

/// `[analytics]`: the warehouse's PostgreSQL front end (crate `pgfront`).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsSettings {
    /// Where `serve` listens for PostgreSQL clients (`127.0.0.1:5433`); none: not started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pg_listen: Option<SocketAddr>,
    /// Refuse connections that do not start TLS (needs `[server.tls]`).
    pub pg_require_tls: bool,
    /// Rows one statement returns at most (streamed; larger than the console's, for exports).
    pub pg_max_rows: usize,
    /// Seconds a PostgreSQL connection may idle with a transaction block or a
    /// cursor open (`idle_in_transaction_session_timeout`); then it ends and
    /// its cursors' memory returns to the analysts' pool.
    pub pg_idle_in_transaction_seconds: u64,
    /// Seconds one statement may take to answer, counting time spent waiting
    /// for the client to read its rows.
    pub pg_statement_wall_seconds: u64,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        let limits = pgfront::SessionLimits::default();
        Self {
            pg_listen: None,
            pg_require_tls: false,
            pg_max_rows: 2_000_000,
            pg_idle_in_transaction_seconds: limits.idle_in_transaction.as_secs(),
            pg_statement_wall_seconds: limits.statement_wall.as_secs(),
        }
    }
}

impl AnalyticsSettings {
    /// The PostgreSQL front end's time limits after login.
    pub fn pg_limits(&self) -> pgfront::SessionLimits {
        pgfront::SessionLimits {
            idle_in_transaction: std::time::Duration::from_secs(self.pg_idle_in_transaction_seconds.max(1)),
            statement_wall: std::time::Duration::from_secs(self.pg_statement_wall_seconds.max(1)),
        }
    }
}

/// `[alerts]`
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Where alert changes are POSTed as JSON (plain `http://`; none: shown on the dashboards only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// `json` (wangban's own document) or `robot` (a WeCom or DingTalk group robot's text message).
    pub webhook_format: WebhookFormat,
    /// Seconds a webhook delivery may take.
    pub webhook_timeout_seconds: u64,
    /// The month whose online rate starts the trajectory (`YYYY-MM`).
    pub baseline_month: String,
    /// The month the 90% target is to be reached (`YYYY-MM`; the plan names no date).
    pub target_month: String,
    /// Active seizures ending within this many days raise an alert.
    pub seizure_expiry_days: u32,
    /// A connector's silence alerts when it is less probable than this at the
    /// feed's own arrival rhythm, learned per weekday and hour from its last
    /// eight weeks (a Poisson tail; 0.01). A failed poll alerts at once.
    pub silence_probability: f64,
    /// Until a connector has a week of history to learn its rhythm from: one whose
    /// newest data is older than this many hours raises an alert, counted in
    /// office hours on working days (or every hour, see `connector_lag_clock_by`).
    pub connector_lag_hours: u32,
    /// Thresholds of particular connectors, in hours (default: `housing` and
    /// `registry-qc` 72, as daily files and QC findings are quiet over a weekend).
    pub connector_lag_hours_by: std::collections::BTreeMap<String, u32>,
    /// How particular connectors' lag is counted: `office` (the default: office
    /// hours on working days of the official calendar) or `always` (every hour).
    pub connector_lag_clock_by: std::collections::BTreeMap<String, String>,
}

/// What the alert webhook receives.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// `{"source":"wangban","alerts":[…]}`.
    Json,
    /// `{"msgtype":"text","text":{"content":"…"}}` for WeCom and DingTalk group robots.
    Robot,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            webhook_url: None,
            webhook_format: WebhookFormat::Json,
            webhook_timeout_seconds: 10,
            baseline_month: "2024-05".into(),
            target_month: "2026-12".into(),
            seizure_expiry_days: 30,
            silence_probability: 0.01,
            connector_lag_hours: 3,
            connector_lag_hours_by: [
                ("housing".to_owned(), 13),
                ("registry-qc".to_owned(), 13),
                ("registry-evaluations".to_owned(), 13),
            ]
            .into(),
            connector_lag_clock_by: std::collections::BTreeMap::new(),
        }
    }
}

impl AlertSettings {
    /// The rules these settings describe.
    pub fn rules(&self, calendar: &domain::Calendar) -> warehouse::alerts::AlertRules {
        warehouse::alerts::AlertRules {
            baseline_month: self.baseline_month.clone(),
            target_month: self.target_month.clone(),
            target_rate: warehouse::kpi::TARGET_ONLINE_RATE,
            expiring_within_days: self.seizure_expiry_days,
            connector_lag: chrono::TimeDelta::hours(i64::from(self.connector_lag_hours)),
            connector_lag_by: self
                .connector_lag_hours_by
                .iter()
                .map(|(name, hours)| (name.clone(), chrono::TimeDelta::hours(i64::from(*hours))))
                .collect(),
            connector_clock_by: self
                .connector_lag_clock_by
                .iter()
                .filter_map(|(name, clock)| Some((name.clone(), warehouse::alerts::LagClock::from_name(clock)?)))
                .collect(),
            calendar: calendar.clone(),
            silence_probability: self.silence_probability,
        }
    }
}

/// `[warehouse]`
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseSettings {
    /// Where snapshots live; default `<data_dir>/warehouse`.
    pub dir: Option<PathBuf>,
    /// File with the secret key of applicant hashes; default `<data_dir>/warehouse.key`, created on first refresh.
    pub key_file: Option<PathBuf>,
    /// Rows an analyst query returns at most.
    pub sql_max_rows: usize,
    /// Seconds an analyst query may run.
    pub sql_timeout_seconds: u64,
    /// Memory an analyst query may use, in MiB.
    pub sql_memory_mb: usize,
    /// Where every reader's queries run (the pages, `/api/kpi`, `wangban kpi`
    /// and `sql`, reports, the PostgreSQL front end): `local` (this process),
    /// or a Ballista scheduler's `df://host:port` whose executors read
    /// `dir` at the same path (docs/ballista.md; a build with `--features ballista`).
    pub engine: String,
}

impl Default for WarehouseSettings {
    fn default() -> Self {
        Self {
            dir: None,
            key_file: None,
            sql_max_rows: 10_000,
            sql_timeout_seconds: 30,
            sql_memory_mb: 512,
            engine: "local".into(),
        }
    }
}

/// `[cluster]`: this host's part of a Ballista cluster (`wangban cluster
/// scheduler`, `wangban cluster executor`; docs/ballista.md).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// Where the scheduler listens.
    pub scheduler_listen: SocketAddr,
    /// The scheduler an executor registers with, `host:port`.
    pub scheduler: String,
    /// The address an executor listens on.
    pub executor_bind_host: String,
    /// The host name or address others reach this executor at; default: the host's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_external_host: Option<String>,
    /// The executor's Arrow Flight port (shuffle data and results are fetched here).
    pub executor_flight_port: u16,
    /// The executor's gRPC port.
    pub executor_grpc_port: u16,
    /// Where the executor writes shuffle files; default `<data_dir>/ballista-work`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_work_dir: Option<PathBuf>,
    /// The memory pool of all the executor's tasks together, MiB (they spill beyond it).
    pub executor_memory_mb: u64,
    /// Tasks the executor runs at once; 0: one per core.
    pub executor_concurrent_tasks: usize,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            scheduler_listen: SocketAddr::from(([127, 0, 0, 1], 50050)),
            scheduler: "127.0.0.1:50050".into(),
            executor_bind_host: "127.0.0.1".into(),
            executor_external_host: None,
            executor_flight_port: 50051,
            executor_grpc_port: 50052,
            executor_work_dir: None,
            executor_memory_mb: 2048,
            executor_concurrent_tasks: 0,
        }
    }
}

/// `[connectors]`: the partner feeds to pull.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorsSettings {
    /// `[connectors.registry]`: the registry's business system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<FeedSettings>,
    /// `[connectors.housing]`: the housing authority's contract filings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub housing: Option<FeedSettings>,
    /// `[connectors.provident_fund]`: the housing provident fund.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provident_fund: Option<FeedSettings>,
    /// `[connectors.court_platform]`: the courts' control platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub court_platform: Option<FeedSettings>,
    /// `[[connectors.banks]]`: one entry per bank.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub banks: Vec<BankSettings>,
    /// A CA (PEM) trusted for https partners besides the system's roots (a private CA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) presented to https partners that ask for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
}

/// One partner feed.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeedSettings {
    /// The feed's base URL.
    pub base_url: String,
    /// When to pull (cron, UTC; seconds first or five-field crontab).
    pub schedule: String,
    /// Whether it runs.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

/// One bank's feed. Its `Debug` masks the token.
#[derive(Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BankSettings {
    /// The bank's id, e.g. `icbc` (the connector is named `bank:ID`).
    pub id: String,
    /// The feed's base URL.
    pub base_url: String,
    /// Bearer token; never printed or logged.
    pub token: String,
    /// When to pull (cron, UTC).
    pub schedule: String,
    /// Whether it runs.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

impl std::fmt::Debug for BankSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankSettings")
            .field("id", &self.id)
            .field("base_url", &self.base_url)
            .field("token", &"***")
            .field("schedule", &self.schedule)
            .field("enabled", &self.enabled)
            .finish()
    }
}

fn enabled_by_default() -> bool {
    true
}

/// A configured connector, whatever its section.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorEntry<'a> {
    /// Its name: `registry`, `housing`, `provident_fund`, `court_platform` or `bank:ID`.
    pub name: String,
    /// Its kind (the name without the bank id).
    pub kind: &'static str,
    /// Base URL.
    pub base_url: &'a str,
    /// Bearer token (banks).
    pub token: Option<&'a str>,
    /// Cron schedule.
    pub schedule: &'a str,
    /// Whether it runs.
    pub enabled: bool,
}

impl ConnectorsSettings {
    /// The enabled feeds (or every feed, `all`) as the connectors crate takes them.
    pub fn specs(&self, all: bool) -> Vec<connectors::runner::Spec> {
        use connectors::runner::{Kind, Spec};
        self.entries()
            .into_iter()
            .filter(|e| all || e.enabled)
            .map(|e| Spec {
                kind: match e.kind {
                    "registry" => Kind::Registry,
                    "housing" => Kind::Housing,
                    "provident_fund" => Kind::ProvidentFund,
                    "court_platform" => Kind::CourtPlatform,
                    _ => Kind::Bank {
                        id: e.name.trim_start_matches("bank:").to_owned(),
                        token: e.token.unwrap_or_default().to_owned(),
                    },
                },
                base_url: e.base_url.to_owned(),
                schedule: e.schedule.to_owned(),
            })
            .collect()
    }

    /// Every configured connector, in a fixed order.
    pub fn entries(&self) -> Vec<ConnectorEntry<'_>> {
        let mut out = Vec::new();
        for (kind, feed) in [
            ("registry", &self.registry),
            ("housing", &self.housing),
            ("provident_fund", &self.provident_fund),
            ("court_platform", &self.court_platform),
        ] {
            if let Some(f) = feed {
                out.push(ConnectorEntry {
                    name: kind.to_owned(),
                    kind,
                    base_url: &f.base_url,
                    token: None,
                    schedule: &f.schedule,
                    enabled: f.enabled,
                });
            }
        }
        for b in &self.banks {
            out.push(ConnectorEntry {
                name: format!("bank:{}", b.id),
                kind: "bank",
                base_url: &b.base_url,
                token: Some(&b.token),
                schedule: &b.schedule,
                enabled: b.enabled,
            });
        }
        out
    }
}

/// `[jobs]`
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// When the seizure lapse job runs (cron, UTC; seconds field first or five-field crontab).
    pub seizure_lapse: String,
    /// When the daily reconciliation of partner records runs (cron, UTC).
    pub reconciliation: String,
    /// When last month's report (月报) is made and kept (cron, UTC).
    pub monthly_report: String,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            seizure_lapse: "0 5 16 * * *".into(),
            reconciliation: "0 30 16 * * *".into(),
            monthly_report: "0 0 1 1 * *".into(),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`; default `sqlite://<data_dir>/wangban.db`.
    pub url: Option<String>,
    /// The sandbox register's own database (sandbox partners' orders, never
    /// the real register's); default `sqlite://<data_dir>/sandbox.db`.
    pub sandbox_url: Option<String>,
    /// Largest pool size.
    pub max_connections: u32,
    /// SQLite `synchronous` in WAL mode: `full` makes every commit durable on
    /// power loss; `normal` survives a crash of the process but not of the machine.
    pub sqlite_synchronous: SqliteSync,
}

/// SQLite durability level.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// fsync on every commit.
    Full,
    /// fsync at checkpoints.
    Normal,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Mark session cookies `Secure`: set when users reach the service over TLS (a proxy in
    /// front); always on with `[server.tls]`.
    pub secure_cookies: bool,
    /// `[server.tls]`: serve HTTPS in the process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    /// Seconds the gateway reuses a court partner and its secrets once read:
    /// a partner disabled or a key rotated by another process (`wangban
    /// partner …`) takes effect within this time; 0 reads the database on
    /// every request.
    pub partner_cache_seconds: u64,
    /// Seconds for a request's header to arrive; an idle keep-alive connection
    /// is closed after the same time.
    pub header_read_seconds: u64,
    /// Seconds for a request's body to arrive once its header has.
    pub body_read_seconds: u64,
    /// HTTP connections open at once (court pushes, APIs and pages together);
    /// more are closed at accept.
    pub max_connections: usize,
    /// HTTP connections open at once from one address.
    pub max_connections_per_address: usize,
    /// Of `max_connections`, the slots kept for addresses court partners pushed from.
    pub reserved_for_partners: usize,
}

impl ServerSettings {
    /// The HTTP listener's limits.
    pub fn http_limits(&self) -> gateway::listen::HttpLimits {
        let defaults = gateway::listen::HttpLimits::default();
        gateway::listen::HttpLimits {
            header_read: std::time::Duration::from_secs(self.header_read_seconds.max(1)),
            body_read: std::time::Duration::from_secs(self.body_read_seconds.max(1)),
            handshake: defaults.handshake,
            max_connections: self.max_connections.max(1),
            max_connections_per_address: self.max_connections_per_address.max(1),
            reserved_for_partners: self.reserved_for_partners.min(self.max_connections.saturating_sub(1)),
        }
    }
}

/// `[server.tls]`
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsSettings {
    /// Certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// Its private key, PEM.
    pub key_file: PathBuf,
    /// CA of partners' client certificates, PEM; when set, a presented certificate must verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// Refuse connections without a verified client certificate.
    #[serde(default)]
    pub require_client_cert: bool,
}

impl ServerTlsSettings {
    /// The gateway's view of these settings.
    pub fn files(&self) -> gateway::tls::TlsFiles {
        gateway::tls::TlsFiles {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            client_ca_file: self.client_ca_file.clone(),
            require_client_cert: self.require_client_cert,
        }
    }
}

/// `[domain]`
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DomainSettings {
    /// Extra calendar years (TOML).
    pub calendar_file: Option<PathBuf>,
    /// Business-type catalogue overrides (TOML).
    pub catalogue_file: Option<PathBuf>,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Level or filter, e.g. `info` or `wangban=debug,sqlx=warn`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database: DatabaseSettings::default(),
            server: ServerSettings::default(),
            domain: DomainSettings::default(),
            log: LogSettings::default(),
            jobs: JobSettings::default(),
            connectors: ConnectorsSettings::default(),
            warehouse: WarehouseSettings::default(),
            alerts: AlertSettings::default(),
            analytics: AnalyticsSettings::default(),
            cluster: ClusterSettings::default(),
            partners: std::collections::BTreeMap::new(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: None, sandbox_url: None, max_connections: 8, sqlite_synchronous: SqliteSync::Full }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        let limits = gateway::listen::HttpLimits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            secure_cookies: false,
            tls: None,
            partner_cache_seconds: store::partners::PARTNER_CACHE_TTL.as_secs(),
            header_read_seconds: limits.header_read.as_secs(),
            body_read_seconds: limits.body_read.as_secs(),
            max_connections: limits.max_connections,
            max_connections_per_address: limits.max_connections_per_address,
            reserved_for_partners: limits.reserved_for_partners,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}

impl Settings {
    /// The enabled connectors (or every one, `all`): the `[connectors]` feeds
    /// and the `[partners]` sections.
    pub fn connector_specs(&self, all: bool) -> Vec<connectors::runner::Spec> {
        let mut specs = self.connectors.specs(all);
        for (name, partner) in &self.partners {
            if all || partner.enabled {
                specs.push(connectors::runner::Spec {
                    kind: connectors::runner::Kind::Configured {
                        name: name.clone(),
                        config: Box::new(partner.clone()),
                    },
                    base_url: String::new(),
                    schedule: partner.schedule.clone(),
                });
            }
        }
        specs
    }

    /// Loads settings for a command line from the real environment.
    pub fn load(cli: &Cli) -> anyhow::Result<Self> {
        let file = match &cli.config {
            Some(path) => Some((
                path.clone(),
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?,
            )),
            None => None,
        };
        let mut settings = Self::from_layers(file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())), std::env::vars())?;
        if let Some(data) = &cli.data {
            settings.data_dir = data.clone();
        }
        if let Some(url) = &cli.database_url {
            settings.database.url = Some(url.clone());
        }
        if let Some(calendar) = &cli.calendar {
            settings.domain.calendar_file = Some(calendar.clone());
        }
        Ok(settings)
    }

    /// Builds settings from a config file's text (if any) and environment variables.
    pub fn from_layers(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut table = match file {
            Some((path, text)) => {
                // The file alone first: the TOML parser then points at the line and
                // column of an unknown key or a bad value.
                toml::from_str::<Settings>(text)
                    .with_context(|| format!("config file {} is not valid", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("config file {} is not valid TOML", path.display()))?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            let Some(path) = key.strip_prefix(ENV_PREFIX) else { continue };
            let parts: Vec<String> = path.split("__").map(str::to_lowercase).collect();
            set_path(&mut table, &parts, env_value(&value)).with_context(|| format!("environment variable {key}"))?;
        }
        let source = file.map_or_else(|| "settings".to_owned(), |(p, _)| format!("config file {}", p.display()));
        let settings: Settings = toml::Value::Table(table)
            .try_into()
            .with_context(|| format!("{source} (with WANGBAN__ environment overrides) is not valid"))?;
        for c in settings.connectors.entries() {
            let section = if c.kind == "bank" {
                format!("connectors.banks ({})", c.name)
            } else {
                format!("connectors.{}", c.name)
            };
            connectors::schedule::Schedule::parse(c.schedule)
                .with_context(|| format!("{source}: {section}.schedule"))?;
            if !(c.base_url.starts_with("http://") || c.base_url.starts_with("https://")) {
                anyhow::bail!("{source}: {section}.base_url must be an http:// or https:// URL");
            }
        }
        let built_in: Vec<String> = settings.connectors.entries().into_iter().map(|e| e.name).collect();
        for (name, partner) in &settings.partners {
            if built_in.iter().any(|b| b == name || name.starts_with("registry") && b == "registry") {
                anyhow::bail!("{source}: partners.{name}: the name is taken by a [connectors] feed");
            }
            connectors::partner::Partner::new(name, partner.clone()).with_context(|| source.clone())?;
        }
        for (key, cron) in [
            ("jobs.seizure_lapse", &settings.jobs.seizure_lapse),
            ("jobs.reconciliation", &settings.jobs.reconciliation),
            ("jobs.monthly_report", &settings.jobs.monthly_report),
        ] {
            connectors::schedule::Schedule::parse(cron).with_context(|| format!("{source}: {key}"))?;
        }
        for (connector, clock) in &settings.alerts.connector_lag_clock_by {
            if warehouse::alerts::LagClock::from_name(clock).is_none() {
                anyhow::bail!(
                    "{source}: alerts.connector_lag_clock_by.{connector} = {clock:?}: expected \"office\" or \"always\""
                );
            }
        }
        for (key, month) in [
            ("alerts.baseline_month", &settings.alerts.baseline_month),
            ("alerts.target_month", &settings.alerts.target_month),
        ] {
            if warehouse::export::first_day_of_month(month).is_none() {
                anyhow::bail!("{source}: {key} = {month:?} is not a month like \"2026-12\"");
            }
        }
        if !(settings.alerts.silence_probability > 0.0 && settings.alerts.silence_probability < 1.0) {
            anyhow::bail!("{source}: alerts.silence_probability must be between 0 and 1 (such as 0.01)");
        }
        if settings.alerts.baseline_month >= settings.alerts.target_month {
            anyhow::bail!("{source}: alerts.baseline_month must come before alerts.target_month");
        }
        if let Some(url) = &settings.alerts.webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            anyhow::bail!("{source}: alerts.webhook_url must be an http:// or https:// URL");
        }
        let engine = settings.warehouse.engine.as_str();
        if engine != "local" && !engine.starts_with("df://") {
            anyhow::bail!(
                "{source}: warehouse.engine = {engine:?}: expected \"local\" or a Ballista scheduler's \"df://host:port\" \
                 (\"standalone\" is for `--engine` only)"
            );
        }
        if settings.cluster.scheduler.rsplit_once(':').and_then(|(_, port)| port.parse::<u16>().ok()).is_none() {
            anyhow::bail!("{source}: cluster.scheduler = {:?}: expected host:port", settings.cluster.scheduler);
        }
        Ok(settings)
    }

    /// TLS material for https partners (`connectors.ca_file`, `client_cert_file`, `client_key_file`).
    pub fn partner_tls(&self) -> anyhow::Result<connectors::fetch::ClientTls> {
        let read = |path: &Path| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
        let c = &self.connectors;
        let identity_pem = match (&c.client_cert_file, &c.client_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let mut pem = read(cert)?;
                pem.push(b'\n');
                pem.extend(read(key)?);
                Some(pem)
            }
            _ => anyhow::bail!("connectors.client_cert_file and connectors.client_key_file go together"),
        };
        Ok(connectors::fetch::ClientTls { ca_pem: c.ca_file.as_deref().map(read).transpose()?, identity_pem })
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database.url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("wangban.db").display()))
    }

    /// The sandbox register's database URL in force.
    pub fn sandbox_database_url(&self) -> String {
        self.database
            .sandbox_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("sandbox.db").display()))
    }

    /// The calendar: built in, plus the configured file.
    pub fn calendar(&self) -> anyhow::Result<Calendar> {
        let calendar = Calendar::builtin();
        match &self.domain.calendar_file {
            None => Ok(calendar),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read calendar file {}", path.display()))?;
                calendar.with_toml(&text).with_context(|| format!("calendar file {}", path.display()))
            }
        }
    }

    /// The warehouse directory: `warehouse.dir`, or `<data_dir>/warehouse`.
    pub fn warehouse_dir(&self) -> PathBuf {
        self.warehouse.dir.clone().unwrap_or_else(|| self.data_dir.join("warehouse"))
    }

    /// The KPI service every reader asks: the warehouse directory, the memory
    /// pool of `warehouse.sql_memory_mb`, queries on `warehouse.engine`.
    pub fn kpi_service(&self) -> warehouse::kpi::KpiService {
        warehouse::kpi::KpiService::new(self.warehouse_dir(), self.warehouse.sql_memory_mb << 20)
            .with_engine(self.warehouse.engine.clone())
    }

    /// The limits of analyst queries (`warehouse.sql_*`).
    pub fn sql_limits(&self) -> warehouse::console::Limits {
        warehouse::console::Limits {
            max_rows: self.warehouse.sql_max_rows,
            timeout: std::time::Duration::from_secs(self.warehouse.sql_timeout_seconds),
            memory_bytes: self.warehouse.sql_memory_mb * 1024 * 1024,
        }
    }

    /// The applicant-hash key: read from its file, created (random, owner-only) if missing.
    pub fn warehouse_key(&self) -> anyhow::Result<Vec<u8>> {
        use anyhow::Context as _;
        let path = self.warehouse.key_file.clone().unwrap_or_else(|| self.data_dir.join("warehouse.key"));
        match std::fs::read(&path) {
            Ok(key) if key.len() >= 16 => return Ok(key),
            Ok(_) => anyhow::bail!("{}: the warehouse key is shorter than 16 bytes", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        let key: [u8; 32] = rand::random();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).with_context(|| format!("cannot create {}", path.display()))?;
        std::io::Write::write_all(&mut file, &key)?;
        Ok(key.to_vec())
    }

    /// The business-type catalogue: built in, plus the configured overrides.
    pub fn catalogue(&self) -> anyhow::Result<Catalogue> {
        let catalogue = Catalogue::builtin();
        match &self.domain.catalogue_file {
            None => Ok(catalogue),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read catalogue file {}", path.display()))?;
                catalogue.with_overrides_toml(&text).with_context(|| format!("catalogue file {}", path.display()))
            }
        }
    }

    /// Opens the store named by the settings, applying migrations.
    pub async fn open_store(&self) -> anyhow::Result<store::Store> {
        let url = self.database_url();
        let options = store::ConnectOptions {
            max_connections: self.database.max_connections,
            sqlite_full_sync: self.database.sqlite_synchronous == SqliteSync::Full,
            ..Default::default()
        };
        let store = store::Store::connect_with(&url, &options)
            .await
            .with_context(|| format!("cannot open the database {}", store::redact_url(&url)))?;
        Ok(store.with_partner_cache_ttl(std::time::Duration::from_secs(self.server.partner_cache_seconds)))
    }

    /// Opens the sandbox register's store (its own database, migrated like the
    /// real one); refuses a sandbox URL that is the real database's.
    pub async fn open_sandbox_store(&self) -> anyhow::Result<store::Store> {
        let url = self.sandbox_database_url();
        if url == self.database_url() {
            anyhow::bail!("database.sandbox_url must name another database than database.url");
        }
        let options = store::ConnectOptions { max_connections: 4, ..Default::default() };
        store::Store::connect_with(&url, &options)
            .await
            .with_context(|| format!("cannot open the sandbox database {}", store::redact_url(&url)))
    }
}

/// Environment values are text; numbers and booleans are recognised so typed settings accept them.
fn env_value(text: &str) -> toml::Value {
    if let Ok(n) = text.parse::<i64>() {
        return toml::Value::Integer(n);
    }
    match text {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(text.to_owned()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> anyhow::Result<()> {
    match path {
        [] => anyhow::bail!("empty key"),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => set_path(inner, rest, value),
                _ => anyhow::bail!("{first} is not a section"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_give_sqlite_under_the_data_dir() {
        let s = Settings::from_layers(None, env(&[])).expect("defaults");
        assert_eq!(s.database_url(), "sqlite://./data/wangban.db");
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = "[database]\nurl = \"sqlite://a.db\"\nmax_connections = 3\n[server]\nlisten = \"0.0.0.0:9000\"\n";
        let s = Settings::from_layers(
            Some((Path::new("x.toml"), file)),
            env(&[
                ("WANGBAN__DATABASE__URL", "postgres://p@h/db"),
                ("WANGBAN__DATABASE__MAX_CONNECTIONS", "20"),
                ("OTHER", "x"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.database_url(), "postgres://p@h/db");
        assert_eq!(s.database.max_connections, 20);
        assert_eq!(s.server.listen.to_string(), "0.0.0.0:9000");
    }

    #[test]
    fn the_engine_and_the_cluster_are_checked() {
        let file = "[warehouse]\nengine = \"df://sched.internal:50050\"\n[cluster]\nscheduler = \"sched.internal:50050\"\n\
                    executor_memory_mb = 8192\n";
        let s = Settings::from_layers(Some((Path::new("x.toml"), file)), env(&[])).expect("valid");
        assert_eq!(s.kpi_service().engine(), "df://sched.internal:50050");
        assert_eq!(s.cluster.executor_memory_mb, 8192);
        assert_eq!(s.cluster.executor_flight_port, 50051, "the rest default");
        for (bad, says) in [
            ("[warehouse]\nengine = \"standalone\"\n", "warehouse.engine"),
            ("[warehouse]\nengine = \"ballista\"\n", "warehouse.engine"),
            ("[cluster]\nscheduler = \"sched.internal\"\n", "cluster.scheduler"),
            ("[cluster]\nexecutor_memory = 1\n", "executor_memory"),
        ] {
            let e = Settings::from_layers(Some((Path::new("x.toml"), bad)), env(&[])).expect_err(bad);
            assert!(format!("{e:#}").contains(says), "{bad}: {e:#}");
        }
        let from_env =
            Settings::from_layers(None, env(&[("WANGBAN__WAREHOUSE__ENGINE", "df://10.0.0.1:50050")])).expect("valid");
        assert_eq!(from_env.warehouse.engine, "df://10.0.0.1:50050");
    }

    #[test]
    fn connectors_are_checked() {
        let good = "[connectors.registry]\nbase_url = \"http://127.0.0.1:9/registry/v1\"\nschedule = \"*/5 * * * *\"\n\
                    [[connectors.banks]]\nid = \"icbc\"\nbase_url = \"http://127.0.0.1:9/banks/icbc\"\ntoken = \"t\"\nschedule = \"0 */10 * * * *\"\n";
        let s = Settings::from_layers(Some((Path::new("x.toml"), good)), env(&[])).expect("valid");
        let entries = s.connectors.entries();
        assert_eq!(entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["registry", "bank:icbc"]);
        assert!(entries.iter().all(|e| e.enabled));
        assert!(!format!("{s:?}").contains("token: \"t\""), "Debug must mask bank tokens");
        let bad = good.replace("*/5 * * * *", "often");
        let err = Settings::from_layers(Some((Path::new("x.toml"), &bad)), env(&[])).expect_err("bad cron");
        assert!(format!("{err:#}").contains("connectors.registry.schedule"), "{err:#}");
        let bad = good.replace("[connectors.registry]", "[connectors.registy]");
        let err = Settings::from_layers(Some((Path::new("x.toml"), &bad)), env(&[])).expect_err("unknown section");
        assert!(format!("{err:#}").contains("registy"), "{err:#}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_problem() {
        let err =
            Settings::from_layers(Some((Path::new("x.toml"), "[databse]\nurl = \"x\"\n")), env(&[])).expect_err("typo");
        assert!(format!("{err:#}").contains("databse"), "{err:#}");
        let err = Settings::from_layers(None, env(&[("WANGBAN__SERVER__LISTEN", "nowhere")])).expect_err("bad address");
        assert!(format!("{err:#}").contains("listen"), "{err:#}");
        let err = Settings::from_layers(Some((Path::new("x.toml"), "data_dir = [")), env(&[])).expect_err("bad toml");
        assert!(format!("{err:#}").contains("x.toml"), "{err:#}");
    }
}
