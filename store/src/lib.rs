//! The normalized store: one logical schema on SQLite (embedded, the default)
//! or PostgreSQL (production), chosen by the database URL. This is the only
//! crate that writes operational SQL.
//!
//! Every query is written once. Each backend has its own pool type, and the
//! private `on_pool!` / `on_tx!` macros expand a query body for both, so the
//! same text runs with each driver's native types (TIMESTAMPTZ and DATE on
//! PostgreSQL, RFC 3339 text on SQLite). Placeholders are `$1, $2, …`, which
//! both drivers accept.
//!
//! Writes that must stand or fall together go through a [`StoreTx`]
//! ([`Store::begin`]); on SQLite it starts with `BEGIN IMMEDIATE` so a
//! read-then-write transaction never fails on a stale snapshot.
//!
//! # Layout
//!
//! - `connect`: URL parsing, SQLite file options, pools, migrations.
//! - [`cases`], [`records`]: cases and the other partner records (QC findings,
//!   evaluations, contract filings, loan applications), upserted by version.
//! - [`partners`]: partners and their credentials.
//! - [`court`]: the court tables and the seizure register as transaction primitives (locks, savepoints, a group read and written in few round trips); the `court-orders` crate applies orders with them.
//! - [`export`]: reads for the warehouse (record tables whole, the seizure register, change times).
//! - [`inbox`]: every payload received, kept raw with its hash.
//! - [`quarantine`]: bad records kept for inspection and replay.
//! - [`findings`]: data-quality findings: flawed fields of records that were kept.
//! - [`connector_state`]: cursors and health, committed with the data they cover.
//! - [`day_checks`]: configured partners' day reconciliation (their count per day against ours).
//! - [`outbox`]: feedback to the court platform, sent at least once, acknowledgements recorded.
//! - [`reconcile`]: linking partner records to cases, anomalies, daily reconciliation per partner.
//! - [`accounts`]: dashboard accounts (argon2 hashes) and login sessions (token hashes).
//! - [`alerts`]: alert states from evaluations after warehouse refreshes, and webhook deliveries.
//! - [`audit`]: the append-only, hash-chained audit log.
//! - [`sandbox`]: the sandbox log: sandbox partners' requests and what was wrong with them.
//! - [`maintenance`]: read-only inspection, SQLite online backups and integrity checks.
//! - `error`: [`StoreError`], the one error type of the store.
//! - `upsert`: versioned upserts a page at a time (a few statements per page, not one per row).
//! - `value`: typed values bound identically on both backends.
//! - [`testing`]: fresh SQLite and PostgreSQL databases for tests.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod cases;
mod connect;
pub mod connector_state;
pub mod court;
pub mod day_checks;
mod error;
pub mod export;
pub mod findings;
pub mod inbox;
pub mod maintenance;
pub mod outbox;
pub mod partners;
pub mod quarantine;
pub mod reconcile;
pub mod records;
pub mod sandbox;
pub mod testing;
mod upsert;
mod value;

use std::sync::Arc;

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};

pub use connect::{ConnectOptions, DEFAULT_SQLITE_URL, redact_url};
pub use error::{StoreError, StoreResult};

/// Expands `$body` once per backend with `$pool` bound to that backend's pool.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Expands `$body` once per backend with `$conn` bound to the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::TxInner::Sqlite(tx) => {
                let $conn: &mut sqlx::SqliteConnection = &mut *tx;
                $body
            }
            $crate::TxInner::Postgres(tx) => {
                let $conn: &mut sqlx::PgConnection = &mut *tx;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle to the normalized store; cheap to clone (it shares the pool).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    /// SQLite has one writer. Writers queue here, in order, instead of
    /// spinning in SQLite's busy handler (which sleeps up to 100 ms a try).
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Partners and their secrets as the gateway checks them, reused for a
    /// few seconds (see [`partners::PartnerCache`]).
    pub(crate) partner_cache: Arc<partners::PartnerCache>,
}

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A store transaction: everything done through it commits together or not at all.
/// Dropping it without [`StoreTx::commit`] rolls back.
pub struct StoreTx {
    pub(crate) inner: TxInner,
    /// Held for the life of an SQLite write transaction (see `Store::write_lock`).
    _write_guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Audit entries chained and written at commit.
    pub(crate) audit_buffer: Vec<audit::PendingAudit>,
}

impl std::fmt::Debug for StoreTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            TxInner::Sqlite(_) => "sqlite",
            TxInner::Postgres(_) => "postgres",
        };
        f.debug_struct("StoreTx").field("backend", &kind).finish()
    }
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`), creating the
    /// SQLite file and its directory if missing, and applies pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, &ConnectOptions::default()).await
    }

    /// Like [`Store::connect`], with pool options.
    pub async fn connect_with(url: &str, options: &ConnectOptions) -> StoreResult<Self> {
        let store = connect::open(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Wraps an existing SQLite pool (migrations not applied).
    pub fn from_sqlite_pool(pool: SqlitePool) -> Self {
        Self { backend: Backend::Sqlite(pool), write_lock: Arc::default(), partner_cache: Arc::default() }
    }

    /// Wraps an existing PostgreSQL pool (migrations not applied).
    pub fn from_postgres_pool(pool: PgPool) -> Self {
        Self { backend: Backend::Postgres(pool), write_lock: Arc::default(), partner_cache: Arc::default() }
    }

    /// The SQLite pool, when the store is SQLite (for tools such as online backup, and tests).
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.backend {
            Backend::Sqlite(pool) => Some(pool),
            Backend::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, when the store is PostgreSQL (for tools and tests).
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.backend {
            Backend::Postgres(pool) => Some(pool),
            Backend::Sqlite(_) => None,
        }
    }

    /// Applies pending migrations for the backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Backend::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Starts a transaction. On SQLite it first waits its turn among this
    /// process's writers, then runs `BEGIN IMMEDIATE` (the write lock at once).
    pub async fn begin(&self) -> StoreResult<StoreTx> {
        match &self.backend {
            Backend::Sqlite(pool) => {
                let guard = self.write_lock.clone().lock_owned().await;
                let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(StoreTx { inner: TxInner::Sqlite(tx), _write_guard: Some(guard), audit_buffer: Vec::new() })
            }
            Backend::Postgres(pool) => Ok(StoreTx {
                inner: TxInner::Postgres(pool.begin().await?),
                _write_guard: None,
                audit_buffer: Vec::new(),
            }),
        }
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, pool => { sqlx::query("SELECT 1").execute(pool).await?; });
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }

    /// Names of the tables in the schema, sorted (for schema checks and tooling).
    pub async fn table_names(&self) -> StoreResult<Vec<String>> {
        let names: Vec<String> = match &self.backend {
            Backend::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
                )
                .fetch_all(pool)
                .await?
            }
            Backend::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%' ORDER BY table_name",
                )
                .fetch_all(pool)
                .await?
            }
        };
        Ok(names)
    }

    /// Column names of a table, sorted.
    pub async fn column_names(&self, table: &str) -> StoreResult<Vec<String>> {
        let names: Vec<String> = match &self.backend {
            Backend::Sqlite(pool) => {
                sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY name").bind(table).fetch_all(pool).await?
            }
            Backend::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY column_name",
                )
                .bind(table)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(names)
    }
}

impl StoreTx {
    /// Writes the buffered audit entries, then commits everything done through this transaction.
    pub async fn commit(mut self) -> StoreResult<()> {
        self.flush_audit().await?;
        match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await?,
            TxInner::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Rolls back explicitly (dropping does the same).
    pub async fn rollback(self) -> StoreResult<()> {
        match self.inner {
            TxInner::Sqlite(tx) => tx.rollback().await?,
            TxInner::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpsertOutcome {
    /// A new row.
    Inserted,
    /// An existing row replaced by a newer version.
    Updated,
    /// The same version arrived again: nothing changed.
    Unchanged,
    /// An older version arrived after a newer one: ignored.
    Stale,
}
