//! Upkeep an IT section does by hand: looking at a database without changing
//! it, SQLite online backups and integrity checks. PostgreSQL is backed up
//! with its own tools (`pg_dump`, base backups); see the README.

use std::path::Path;

use crate::{Backend, ConnectOptions, Store, StoreError, StoreResult, connect};

/// How far a database's schema is from this build's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Migrations recorded as applied in the database.
    pub applied: usize,
    /// Migrations this build carries.
    pub known: usize,
}

impl SchemaStatus {
    /// True when the database has migrations this build does not know (a newer build wrote it).
    pub fn is_ahead(&self) -> bool {
        self.applied > self.known
    }
}

impl Store {
    /// Opens the store without applying migrations: for checks and backups,
    /// which must not change the database they look at.
    pub async fn connect_unmigrated(url: &str, options: &ConnectOptions) -> StoreResult<Self> {
        connect::open(url, options).await
    }

    /// How many migrations the database has applied, against how many this build knows.
    pub async fn schema_status(&self) -> StoreResult<SchemaStatus> {
        let (known, applied) = match &self.backend {
            Backend::Sqlite(pool) => {
                let known = sqlx::migrate!("./migrations/sqlite").migrations.len();
                let exists: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(pool)
                .await?;
                let applied: i64 = if exists == 0 {
                    0
                } else {
                    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(pool).await?
                };
                (known, applied)
            }
            Backend::Postgres(pool) => {
                let known = sqlx::migrate!("./migrations/postgres").migrations.len();
                let exists: bool =
                    sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(pool).await?;
                let applied: i64 = if exists {
                    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(pool).await?
                } else {
                    0
                };
                (known, applied)
            }
        };
        Ok(SchemaStatus { applied: usize::try_from(applied).unwrap_or(0), known })
    }

    /// SQLite: writes a consistent copy of the live database to `target` with
    /// `VACUUM INTO`, while other connections go on reading and writing. The
    /// target must not exist. PostgreSQL: [`StoreError::Unsupported`].
    pub async fn backup_sqlite_to(&self, target: &Path) -> StoreResult<()> {
        let Backend::Sqlite(pool) = &self.backend else {
            return Err(StoreError::Unsupported {
                what: "backup of a PostgreSQL store: use pg_dump or a base backup (see the README)",
            });
        };
        if target.exists() {
            return Err(StoreError::AlreadyExists { what: "backup file", key: target.display().to_string() });
        }
        let target = target.to_str().ok_or(StoreError::Unsupported { what: "a backup path that is not UTF-8" })?;
        sqlx::query("VACUUM INTO ?").bind(target).execute(pool).await?;
        Ok(())
    }

    /// SQLite: `PRAGMA integrity_check`; the problems found, empty when sound.
    /// PostgreSQL: [`StoreError::Unsupported`] (use `amcheck`).
    pub async fn sqlite_integrity_problems(&self) -> StoreResult<Vec<String>> {
        let Backend::Sqlite(pool) = &self.backend else {
            return Err(StoreError::Unsupported { what: "integrity check of a PostgreSQL store: use amcheck" });
        };
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(pool).await?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }
}

/// The file of an `sqlite:` URL; [`StoreError::Unsupported`] for other URLs.
pub fn sqlite_file(url: &str) -> StoreResult<std::path::PathBuf> {
    use std::str::FromStr as _;
    if !url.starts_with("sqlite:") {
        return Err(StoreError::Unsupported { what: "a file path for a database that is not SQLite" });
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    Ok(options.get_filename().to_path_buf())
}
