//! Fresh databases for tests: an SQLite file in a new temporary directory, or
//! a new PostgreSQL database on the server named by
//! [`POSTGRES_URL_VAR`]. Each test gets its own and drops it afterwards.
//! Used by this crate's tests and the end-to-end tests; not by the product.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor, PgConnection};

use crate::{Store, StoreResult};

/// Declares, for each listed `async fn name(store: Store)`, a module with a
/// `sqlite` and a `postgres` test (multi-threaded runtime), each on a fresh
/// database dropped afterwards. The PostgreSQL one returns early, saying so,
/// when [`POSTGRES_URL_VAR`] is unset.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::testing::TestDatabase::sqlite().await.expect("fresh SQLite database");
                    super::$name(db.store.clone()).await;
                    db.drop_database().await.expect("drop test database");
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(db) = $crate::testing::TestDatabase::postgres(stringify!($name)).await.expect("fresh PostgreSQL database") else {
                        return;
                    };
                    super::$name(db.store.clone()).await;
                    db.drop_database().await.expect("drop test database");
                }
            }
        )*
    };
}

/// The one environment variable that tells tests where PostgreSQL is, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`. `.ci/run` always sets it.
pub const POSTGRES_URL_VAR: &str = "WANGBAN_TEST_POSTGRES_URL";

/// Prefix of every database the tests create (so leftovers can be found and dropped).
pub const TEST_DB_PREFIX: &str = "wangban_test_";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A database made for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// The store on it, migrated.
    pub store: Store,
    /// Its URL (to start a whole application on it).
    pub url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Directory(std::path::PathBuf),
    Database { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh SQLite database in a new temporary directory.
    pub async fn sqlite() -> StoreResult<Self> {
        let dir = std::env::temp_dir().join(format!("{TEST_DB_PREFIX}{}", unique_suffix()));
        let url = format!("sqlite://{}", dir.join("wangban.db").display());
        let store = Store::connect(&url).await?;
        Ok(Self { store, url, cleanup: Cleanup::Directory(dir) })
    }

    /// A fresh PostgreSQL database, or `None` (after saying so on stderr) when
    /// [`POSTGRES_URL_VAR`] is unset.
    pub async fn postgres(test_name: &str) -> StoreResult<Option<Self>> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            eprintln!("{POSTGRES_URL_VAR} is unset: skipping the PostgreSQL run of {test_name}");
            return Ok(None);
        };
        let name = format!("{TEST_DB_PREFIX}{}", unique_suffix());
        let mut admin = PgConnection::connect(&admin_url).await?;
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await?;
        admin.close().await?;
        let url = replace_database(&admin_url, &name);
        let store = Store::connect(&url).await?;
        Ok(Some(Self { store, url, cleanup: Cleanup::Database { admin_url, name } }))
    }

    /// Another fresh database on the same backend as `store`.
    pub async fn like(store: &Store) -> StoreResult<Self> {
        match store.kind() {
            crate::BackendKind::Sqlite => Self::sqlite().await,
            crate::BackendKind::Postgres => Self::postgres("like").await?.ok_or_else(|| crate::StoreError::NotFound {
                what: "PostgreSQL test server",
                key: POSTGRES_URL_VAR.to_owned(),
            }),
        }
    }

    /// Closes the store and removes the database.
    pub async fn drop_database(self) -> StoreResult<()> {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin_url, name } => {
                let mut admin = PgConnection::connect(&admin_url).await?;
                admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await?;
                admin.close().await?;
            }
        }
        Ok(())
    }
}

/// The URL with its database path replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs a counting query written for both backends (`$1`, `$2` … bound to
/// `times`) and returns its single integer: for tests that recompute a
/// figure with plain SQL on the store, independently of the warehouse.
pub async fn count(store: &Store, sql: &str, times: &[chrono::DateTime<chrono::Utc>]) -> StoreResult<i64> {
    let value: i64 = crate::on_pool!(store, pool => {
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()));
        for t in times {
            query = query.bind(*t);
        }
        query.fetch_one(pool).await?
    });
    Ok(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(super::replace_database("postgres://p@h:5432/postgres", "x"), "postgres://p@h:5432/x");
        assert_eq!(super::replace_database("postgres://p@h:5432", "x"), "postgres://p@h:5432/x");
        assert_eq!(
            super::replace_database("postgres://p@h/db?sslmode=disable", "x"),
            "postgres://p@h/x?sslmode=disable"
        );
    }
}
