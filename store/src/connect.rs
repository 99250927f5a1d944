//! Opening the store: URL → backend, SQLite file options, pool sizes.

use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{Store, StoreError, StoreResult};

/// The default database: an SQLite file under the data directory.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://data/wangban.db";

/// Pool settings.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Largest number of open connections.
    pub max_connections: u32,
    /// How long to wait for a connection (and, on SQLite, for the write lock).
    pub acquire_timeout: Duration,
    /// SQLite only: `synchronous = FULL` (every commit reaches the disk) rather than `NORMAL`.
    pub sqlite_full_sync: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { max_connections: 8, acquire_timeout: Duration::from_secs(10), sqlite_full_sync: true }
    }
}

pub(crate) async fn open(url: &str, options: &ConnectOptions) -> StoreResult<Store> {
    if url.starts_with("sqlite:") {
        let sqlite = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.sqlite_full_sync { SqliteSynchronous::Full } else { SqliteSynchronous::Normal })
            .foreign_keys(true)
            // A page of 5,000 case upserts touches many index pages: with SQLite's default
            // 2 MiB cache they spill mid-transaction and are read back from the kernel.
            // 64 MiB per connection, and statement
            // journals (one per savepoint) in memory rather than temporary files.
            .pragma("cache_size", "-65536")
            // ... while SQLite as a whole (every connection's cache) stays near 96 MiB:
            // past this soft limit it recycles cache pages instead of growing.
            .pragma("soft_heap_limit", "100663296")
            .pragma("temp_store", "memory")
            // Checkpoint the write-ahead log every ~40 MB rather than every 4 MB: fewer
            // rewrites of the same hot index pages during a long sync.
            .pragma("wal_autocheckpoint", "10000")
            .busy_timeout(options.acquire_timeout)
            // Page upserts are long multi-row statements: sqlx would log each slow one in full.
            .log_slow_statements(log::LevelFilter::Off, std::time::Duration::from_secs(1))
            .log_statements(log::LevelFilter::Off);
        let file = sqlite.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::CreateDir { path: dir.display().to_string(), source })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(sqlite)
            .await?;
        Ok(Store::from_sqlite_pool(pool))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // Page upserts look versions up with `id IN ($2 … $1001)`: a generic plan
        // (chosen after five runs of a prepared statement) scans the table and
        // compares each row with every parameter. Custom plans use the index.
        let pg = sqlx::postgres::PgConnectOptions::from_str(url)?
            .options([("plan_cache_mode", "force_custom_plan")])
            .log_slow_statements(log::LevelFilter::Off, std::time::Duration::from_secs(1))
            .log_statements(log::LevelFilter::Off);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(pg)
            .await?;
        Ok(Store::from_postgres_pool(pool))
    } else {
        Err(StoreError::UnsupportedUrl { url: redact_url(url) })
    }
}

/// The URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("mysql://x"), "mysql://x");
    }
}
