//! Crash consistency: `kill -9` the service while courts push orders, restart
//! it on the same database, and every order that was answered 200 is there,
//! exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use store::testing::TestDatabase;
use tokio::sync::Mutex;

use crate::support::{add_court_partner, start_serve, stop_serve, temp_dir};

fn order(i: usize) -> String {
    let now = Utc::now();
    let today = domain::time::local_date(now);
    let end = today + chrono::Days::new(365);
    format!(
        "<CourtOrder><OrderNo>K-{i:05}</OrderNo><CourtCode>湘0405</CourtCode><CourtName>珠晖区人民法院</CourtName>\
         <CaseNo>(2024)湘0405执{}号</CaseNo><Action>SEIZE</Action><UnitNo>430405001002GB00001F0001{:04}</UnitNo>\
         <Respondent><Name>王五</Name><IdNo>11010519491231002X</IdNo></Respondent><StartDate>{today}</StartDate>\
         <EndDate>{end}</EndDate><RulingNo>裁定{i}</RulingNo><Judge>赵</Judge><ServedAt>{}</ServedAt></CourtOrder>",
        i + 1,
        i % 10,
        domain::time::china_rfc3339(now)
    )
}

async fn kill_during_push_load(database_url: String, store: store::Store) {
    let data = temp_dir(&format!("crash_{}", store.kind() as u8));
    let data = data.to_str().expect("utf-8 path").to_owned();
    let global = ["--database-url", database_url.as_str(), "--data", data.as_str()];
    let secret = add_court_partner(&global, "court-k");

    let (mut child, url) = start_serve(&global);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (url, secret, acknowledged, killed, next) =
            (url.clone(), secret.clone(), acknowledged.clone(), killed.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !killed.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let body = order(i);
                let signature =
                    gateway::court::signature::sign(&secret, Utc::now().timestamp(), body.as_bytes(), false);
                let response = client
                    .post(format!("{url}/api/court/v1/orders"))
                    .header("content-type", "application/xml")
                    .header("x-partner-id", "court-k")
                    .header("x-signature", signature)
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 200 => acknowledged.lock().await.push(format!("K-{i:05}")),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    // Let the load run, then kill without warning, mid-flight.
    while acknowledged.lock().await.len() < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.kill().expect("kill -9");
    killed.store(true, Ordering::SeqCst);
    let _ = child.wait();
    for worker in workers {
        worker.await.expect("worker");
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(acknowledged.len() >= 200);

    // Restart on the same database: every acknowledged order reads back, once.
    let (child, url) = start_serve(&global);
    let client = reqwest::Client::new();
    for order_no in &acknowledged {
        let path = format!("/api/court/v1/orders/{order_no}");
        let signature = gateway::court::signature::sign(&secret, Utc::now().timestamp(), path.as_bytes(), false);
        let response = client
            .get(format!("{url}{path}"))
            .header("x-partner-id", "court-k")
            .header("x-signature", signature)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "acknowledged order {order_no} is missing after the crash");
    }
    stop_serve(child);

    let (orders, distinct, seizures) = match (store.sqlite_pool(), store.postgres_pool()) {
        (Some(pool), _) => sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT (SELECT COUNT(*) FROM court_orders), (SELECT COUNT(DISTINCT order_no) FROM court_orders), (SELECT COUNT(*) FROM seizures)",
        )
        .fetch_one(pool)
        .await
        .expect("counts"),
        (_, Some(pool)) => sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT (SELECT COUNT(*) FROM court_orders), (SELECT COUNT(DISTINCT order_no) FROM court_orders), (SELECT COUNT(*) FROM seizures)",
        )
        .fetch_one(pool)
        .await
        .expect("counts"),
        _ => unreachable!(),
    };
    assert_eq!(orders, distinct, "no order applied twice");
    assert_eq!(orders, seizures, "every applied seizure order has exactly one register entry");
    assert!(orders as usize >= acknowledged.len());
    assert_eq!(
        store.verify_audit_chain().await.expect("audit").map(|n| n > 0),
        Ok(true),
        "audit chain intact after the crash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_push_load_loses_nothing_acknowledged_on_sqlite() {
    let db = TestDatabase::sqlite().await.expect("sqlite");
    kill_during_push_load(db.url.clone(), db.store.clone()).await;
    db.drop_database().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_push_load_loses_nothing_acknowledged_on_postgres() {
    let Some(db) = TestDatabase::postgres("kill_9_during_push_load").await.expect("postgres") else { return };
    kill_during_push_load(db.url.clone(), db.store.clone()).await;
    db.drop_database().await.expect("drop");
}

/// Starts `wangban simulate --listen` over a fixed half-year flow; the child, the
/// written config, and its stdout kept open (the simulator stops when it closes).
fn start_simulator(
    name: &str,
) -> (std::process::Child, std::path::PathBuf, std::io::BufReader<std::process::ChildStdout>) {
    use std::io::BufRead as _;
    let dir = temp_dir(name);
    let config = dir.join("sim.toml");
    let mut child = crate::support::wangban()
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--from",
            "2024-01-01",
            "--to",
            "2024-06-30",
            "--volume",
            "24000",
        ])
        .args(["--seed", "5", "--write-config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn simulate");
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read");
        if line.starts_with("court_platform ") || line.is_empty() {
            break;
        }
    }
    (child, config, reader)
}

fn sync(config: &std::path::Path, database_url: &str) -> std::process::Command {
    let mut command = crate::support::wangban();
    command.arg("--config").arg(config).args(["--database-url", database_url, "sync", "--quiet"]);
    command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    command
}

/// `kill -9` of `wangban sync` at three moments of a run, then a run to the end:
/// the store ends identical (record keys and versions) to one uninterrupted run.
async fn kill_during_sync(reference: TestDatabase, victim: TestDatabase) {
    let name = format!("crash_sync_{}", reference.store.kind() as u8);
    let (mut simulator, config, _stdout) =
        tokio::task::spawn_blocking(move || start_simulator(&name)).await.expect("join");
    let started = std::time::Instant::now();
    let status = sync(&config, &reference.url).status().expect("reference sync");
    assert!(status.success(), "the uninterrupted sync succeeds");
    let full = started.elapsed();
    let mut kills = 0;
    for share in [0.15, 0.4, 0.7] {
        let mut child = sync(&config, &victim.url).spawn().expect("spawn sync");
        std::thread::sleep(full.mul_f64(share));
        if child.try_wait().expect("poll").is_none() {
            child.kill().expect("kill -9");
            kills += 1;
        }
        let _ = child.wait();
    }
    assert!(kills >= 2, "the sync was killed mid-run at least twice (a full run takes {full:?})");
    let status = sync(&config, &victim.url).status().expect("resumed sync");
    assert!(status.success(), "the resumed sync succeeds");
    assert_eq!(
        victim.store.records_fingerprint().await.expect("fingerprint"),
        reference.store.records_fingerprint().await.expect("fingerprint"),
        "killed and resumed = uninterrupted"
    );
    let _ = simulator.kill();
    let _ = simulator.wait();
    reference.drop_database().await.expect("drop");
    victim.drop_database().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_sync_resumes_to_the_same_store_on_sqlite() {
    let reference = TestDatabase::sqlite().await.expect("sqlite");
    let victim = TestDatabase::sqlite().await.expect("sqlite");
    kill_during_sync(reference, victim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_sync_resumes_to_the_same_store_on_postgres() {
    let Some(reference) = TestDatabase::postgres("kill_9_during_sync").await.expect("postgres") else { return };
    let victim = TestDatabase::like(&reference.store).await.expect("postgres");
    kill_during_sync(reference, victim).await;
}

/// `kill -9` of `wangban sync` reading a partner's exchange table (MariaDB,
/// the simulator's gtmap-style table) at three moments, then a run to the
/// end: the store ends identical to one uninterrupted run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_exchange_table_sync_resumes_to_the_same_store() {
    let Ok(admin) = std::env::var("WANGBAN_TEST_MYSQL_URL") else {
        assert!(std::env::var("WANGBAN_TEST_MYSQL_REQUIRED").is_err(), "WANGBAN_TEST_MYSQL_URL is unset");
        return eprintln!("WANGBAN_TEST_MYSQL_URL is unset: skipping the exchange-table crash test");
    };
    let (server, _) = admin.rsplit_once('/').expect("a database in the URL");
    let database = format!("wangban_test_crash_{}", std::process::id());
    let mysql = |sql: String| {
        let status = std::process::Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", &sql])
            .status()
            .expect("mariadb client");
        assert!(status.success(), "{sql}");
    };
    mysql(format!("DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}"));
    let url = format!("{server}/{database}");
    let dir = crate::support::temp_dir("crash_exchange");
    let config = dir.join("wangban.toml");
    let output = crate::support::run(
        crate::support::wangban()
            .args(["simulate", "--exchange-db", &url, "--exchange-cases", "30000", "--write-config"])
            .arg(&config),
    );
    assert!(output.status.success(), "{}", crate::support::stderr(&output));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let reference = TestDatabase::sqlite().await.expect("sqlite");
    let victim = TestDatabase::sqlite().await.expect("sqlite");
    let run = |db: &TestDatabase| {
        let mut command = sync(&config, &db.url);
        command.env("WANGBAN_EXCHANGE_URL", &url);
        command
    };
    let started = std::time::Instant::now();
    assert!(run(&reference).status().expect("reference sync").success());
    let full = started.elapsed();
    let mut kills = 0;
    for share in [0.2, 0.45, 0.7] {
        let mut child = run(&victim).spawn().expect("spawn sync");
        std::thread::sleep(full.mul_f64(share));
        if child.try_wait().expect("poll").is_none() {
            child.kill().expect("kill -9");
            kills += 1;
        }
        let _ = child.wait();
    }
    assert!(kills >= 2, "the sync was killed mid-run at least twice (a full run takes {full:?})");
    assert!(run(&victim).status().expect("resumed sync").success());
    let cases = victim.store.table_counts().await.expect("counts").cases;
    assert_eq!(cases, 30_000, "every case of the table");
    assert_eq!(
        victim.store.records_fingerprint().await.expect("fingerprint"),
        reference.store.records_fingerprint().await.expect("fingerprint"),
        "killed and resumed = uninterrupted"
    );
    reference.drop_database().await.expect("drop");
    victim.drop_database().await.expect("drop");
    mysql(format!("DROP DATABASE IF EXISTS {database}"));
}
