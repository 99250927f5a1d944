//! A full disk under the SQLite store: simulated with `max_page_count`, so the
//! database can grow only a little past what it holds. Pushes go on until the
//! store refuses to grow; the court gets 503 ("retry later"), never a 200 for
//! an order that was not kept; every order answered 200 is there; the file
//! passes SQLite's integrity check; and once there is room again, writes work.

use std::str::FromStr as _;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use store::Store;
use store::testing::TestDatabase;

use crate::support::{Order, TestApp};

#[tokio::test]
async fn a_full_sqlite_store_answers_503_and_keeps_what_it_acknowledged() {
    let mut db = TestDatabase::sqlite().await.expect("sqlite");
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(db.store.sqlite_pool().expect("sqlite"))
        .await
        .expect("page count");
    // Room for the partner and a few dozen orders, then the "disk" is full.
    let limited = SqliteConnectOptions::from_str(&db.url)
        .expect("url")
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .pragma("max_page_count", (pages + 60).to_string());
    db.store.close().await;
    db.store = Store::from_sqlite_pool(
        SqlitePoolOptions::new().max_connections(4).connect_with(limited).await.expect("limited pool"),
    );
    let url = db.url.clone();
    let app = TestApp::start(db).await;

    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..3000 {
        let order_no = format!("FULL-{i:05}");
        let unit_no = format!("430405001002GB00001F0001{:04}", i % 10_000);
        let body = Order { order_no: &order_no, unit_no: &unit_no, ..Order::default() }.document();
        let (status, answer) = app.post(&body).await;
        match status {
            200 => acknowledged.push(order_no),
            503 => {
                refused = Some(answer);
                break;
            }
            other => panic!("order {i}: {other} {answer}"),
        }
    }
    let refused = refused.expect("the store filled up and the push was refused");
    eprintln!("full disk: {} orders acknowledged, then 503", acknowledged.len());
    assert!(refused.contains("retry later"), "the court is told to retry: {refused}");
    assert!(acknowledged.len() >= 5, "orders were kept before the disk filled: {}", acknowledged.len());
    // Still answering, and every acknowledged order reads back.
    for order_no in acknowledged.iter().step_by(5) {
        let (status, receipt) = app.get_order(order_no).await;
        assert_eq!(status, 200, "{order_no}: {receipt}");
    }
    let problems = app.store.sqlite_integrity_problems().await.expect("integrity check");
    assert!(problems.is_empty(), "{problems:?}");

    // Room again (a fresh connection without the limit): the file takes writes and holds every order.
    let roomy = Store::connect_unmigrated(&url, &store::ConnectOptions::default()).await.expect("reopen");
    for order_no in &acknowledged {
        assert!(
            court_orders::status(&roomy, "court-0405", order_no, chrono::NaiveDate::MIN)
                .await
                .expect("status")
                .is_some()
        );
    }
    roomy.append_audit(chrono::Utc::now(), "test", "disk.freed", "store", "{}").await.expect("writes work again");
    assert!(roomy.verify_audit_chain().await.expect("chain").is_ok(), "the audit chain held through the full disk");
    roomy.close().await;
    app.finish().await;
}
