//! PostgreSQL restarted under court-push load. The service reaches the
//! database through a TCP proxy in the test; "restarting" severs every open
//! connection and refuses new ones for a while, which is what a client sees of
//! a restart (a real `pg_ctlcluster restart` would also cut the other tests
//! sharing the server). Courts retry on 503 or a dropped connection, as the
//! interface tells them to. Nothing acknowledged may be lost, nothing applied
//! twice, no answer may be a 500, and the service must recover by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use store::testing::TestDatabase;
use store::{ConnectOptions, Store};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Order, TestApp};

/// A TCP proxy to PostgreSQL that can sever every connection and refuse new ones.
struct Proxy {
    addr: std::net::SocketAddr,
    down: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let down = Arc::new(AtomicBool::new(false));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (is_down, cuts) = (down.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if is_down.load(Ordering::SeqCst) {
                    drop(client); // the server is not there
                    continue;
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {} // severed: both sockets drop here
                    }
                });
            }
        });
        Self { addr, down, cut }
    }

    /// Cuts every connection and refuses new ones for `for_how_long`.
    async fn restart(&self, for_how_long: Duration) {
        self.down.store(true, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
        tokio::time::sleep(for_how_long).await;
        self.down.store(false, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_load_loses_and_doubles_nothing() {
    let Some(mut db) = TestDatabase::postgres("pg_restart").await.expect("fresh PostgreSQL database") else {
        eprintln!("skipped: WANGBAN_TEST_POSTGRES_URL is not set");
        return;
    };
    let direct = db.store.clone();
    let proxy = Proxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    assert!(db.url.contains("127.0.0.1:5432"), "the test database is on 127.0.0.1:5432: {}", db.url);
    let proxied_url = db.url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    let options = ConnectOptions { acquire_timeout: Duration::from_secs(3), ..ConnectOptions::default() };
    db.store = Store::connect_with(&proxied_url, &options).await.expect("store through the proxy");
    let app = Arc::new(TestApp::start(db).await);

    const ORDERS: usize = 400;
    const WORKERS: usize = 8;
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let retried = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (app, acknowledged, retried) = (app.clone(), acknowledged.clone(), retried.clone());
        workers.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in (w..ORDERS).step_by(WORKERS) {
                let order_no = format!("PGR-{i:04}");
                let unit_no = format!("430405001002GB00001F0002{i:04}");
                let body = Order { order_no: &order_no, unit_no: &unit_no, ..Order::default() }.document();
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < 300, "{order_no}: never accepted");
                    match app.try_post(&body).await {
                        Ok((200, _)) => break,
                        Ok((503, _)) | Err(_) => {
                            retried.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Ok((status, answer)) => panic!("{order_no}: {status} {answer}"),
                    }
                }
                acknowledged.fetch_add(1, Ordering::Relaxed);
                acks.push(order_no);
            }
            acks
        }));
    }
    // Restart once a quarter of the orders are in.
    while acknowledged.load(Ordering::Relaxed) < ORDERS / 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let at_restart = acknowledged.load(Ordering::Relaxed);
    proxy.restart(Duration::from_secs(3)).await;
    let mut acks = Vec::new();
    for w in workers {
        acks.extend(w.await.expect("worker"));
    }
    eprintln!(
        "PostgreSQL restart: {at_restart} orders in before it, {} retries, all {} acknowledged after",
        retried.load(Ordering::Relaxed),
        acks.len()
    );
    assert_eq!(acks.len(), ORDERS);
    assert!(retried.load(Ordering::Relaxed) > 0, "the restart was felt");

    // On a direct connection: every order once, one seizure per unit.
    let pool = direct.postgres_pool().expect("postgres");
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM court_orders WHERE order_no LIKE 'PGR-%'")
        .fetch_one(pool)
        .await
        .expect("count orders");
    assert_eq!(orders, ORDERS as i64, "every acknowledged order kept, none twice");
    let doubled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT unit_no FROM seizures WHERE order_no LIKE 'PGR-%' GROUP BY unit_no HAVING COUNT(*) > 1) d",
    )
    .fetch_one(pool)
    .await
    .expect("count doubles");
    assert_eq!(doubled, 0, "no order applied twice");
    for order_no in acks.iter().step_by(37) {
        let (status, receipt) = app.get_order(order_no).await;
        assert_eq!(status, 200, "{order_no}: {receipt}");
    }
    let ready = reqwest::get(format!("http://{}/readyz", app.addr)).await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 200, "ready again without a restart of the service");
    let problems = direct.verify_audit_chain().await.expect("audit");
    assert!(problems.is_ok(), "the audit chain holds: {problems:?}");
    drop(direct);
    Arc::try_unwrap(app).ok().expect("the only reference").finish().await;
}
