//! Runs one async test body on both backends.

use chrono::{DateTime, TimeZone, Utc};

/// A fixed instant: tests never read the clock.
pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().expect("valid test time")
}

/// Declares, for each listed `async fn name(store: Store)`, a module with a
/// `sqlite` and a `postgres` test.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    let db = store::testing::TestDatabase::sqlite().await.expect("fresh SQLite database");
                    super::$name(db.store.clone()).await;
                    db.drop_database().await.expect("drop test database");
                }

                #[tokio::test]
                async fn postgres() {
                    let Some(db) = store::testing::TestDatabase::postgres(stringify!($name)).await.expect("fresh PostgreSQL database") else {
                        return;
                    };
                    super::$name(db.store.clone()).await;
                    db.drop_database().await.expect("drop test database");
                }
            }
        )*
    };
}
pub(crate) use both_backends;
