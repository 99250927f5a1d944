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
//! max_connections = 8
//!
//! sqlite_synchronous = "full"   # or "normal": faster, may lose the last commits on power loss
//!
//! [server]
//! listen = "127.0.0.1:8080"
//!
//! [jobs]
//! seizure_lapse = "0 5 16 * * *"   # cron, UTC: 00:05 China time
//!
//! [domain]
//! calendar_file = "/etc/wangban/calendar-2027.toml"   # extra calendar years
//! catalogue_file = "/etc/wangban/catalogue.toml"      # business-type limit overrides
//!
//! [log]
//! level = "info"      # or a RUST_LOG-style filter
//! format = "text"     # or "json"
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    /// Partner connectors by name. Read and checked now; pulled by the
    /// connectors (not built yet). `wangban simulate --write-config` writes them.
    pub connectors: std::collections::BTreeMap<String, ConnectorSettings>,
}

/// `[connectors.NAME]`: one partner feed to pull.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// `registry`, `housing`, `bank`, `provident_fund` or `court_platform`.
    pub kind: String,
    /// The feed's base URL.
    pub base_url: String,
    /// Bearer token (banks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When to pull (cron, UTC; seconds first or five-field crontab).
    pub schedule: String,
    /// Whether it runs.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Connector kinds the settings accept.
pub const CONNECTOR_KINDS: [&str; 5] = ["registry", "housing", "bank", "provident_fund", "court_platform"];

/// `[jobs]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// When the seizure lapse job runs (cron, UTC; seconds field first or five-field crontab).
    pub seizure_lapse: String,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self { seizure_lapse: "0 5 16 * * *".into() }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`; default `sqlite://<data_dir>/wangban.db`.
    pub url: Option<String>,
    /// Largest pool size.
    pub max_connections: u32,
    /// SQLite `synchronous` in WAL mode: `full` makes every commit durable on
    /// power loss; `normal` survives a crash of the process but not of the machine.
    pub sqlite_synchronous: SqliteSync,
}

/// SQLite durability level.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// fsync on every commit.
    Full,
    /// fsync at checkpoints.
    Normal,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
}

/// `[domain]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DomainSettings {
    /// Extra calendar years (TOML).
    pub calendar_file: Option<PathBuf>,
    /// Business-type catalogue overrides (TOML).
    pub catalogue_file: Option<PathBuf>,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Level or filter, e.g. `info` or `wangban=debug,sqlx=warn`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
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
            connectors: std::collections::BTreeMap::new(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: None, max_connections: 8, sqlite_synchronous: SqliteSync::Full }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 8080)) }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}

impl Settings {
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
            Some((path, text)) => text
                .parse::<toml::Table>()
                .with_context(|| format!("config file {} is not valid TOML", path.display()))?,
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
        for (name, connector) in &settings.connectors {
            if !CONNECTOR_KINDS.contains(&connector.kind.as_str()) {
                anyhow::bail!(
                    "{source}: connectors.{name}.kind {:?} is not one of {}",
                    connector.kind,
                    CONNECTOR_KINDS.join(", ")
                );
            }
            connectors::schedule::Schedule::parse(&connector.schedule)
                .with_context(|| format!("{source}: connectors.{name}.schedule"))?;
            if !(connector.base_url.starts_with("http://") || connector.base_url.starts_with("https://")) {
                anyhow::bail!("{source}: connectors.{name}.base_url must be an http:// or https:// URL");
            }
        }
        Ok(settings)
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database.url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("wangban.db").display()))
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
        store::Store::connect_with(&url, &options)
            .await
            .with_context(|| format!("cannot open the database {}", store::redact_url(&url)))
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
    fn connectors_are_checked() {
        let good = "[connectors.registry]\nkind = \"registry\"\nbase_url = \"http://127.0.0.1:9/registry/v1\"\nschedule = \"*/5 * * * *\"\n";
        let s = Settings::from_layers(Some((Path::new("x.toml"), good)), env(&[])).expect("valid");
        assert!(s.connectors["registry"].enabled);
        let bad = good.replace("*/5 * * * *", "often");
        let err = Settings::from_layers(Some((Path::new("x.toml"), &bad)), env(&[])).expect_err("bad cron");
        assert!(format!("{err:#}").contains("connectors.registry.schedule"), "{err:#}");
        let bad = good.replace("\"registry\"\nbase", "\"ftp\"\nbase");
        let err = Settings::from_layers(Some((Path::new("x.toml"), &bad)), env(&[])).expect_err("bad kind");
        assert!(format!("{err:#}").contains("kind"), "{err:#}");
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
