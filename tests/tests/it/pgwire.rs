//! The warehouse's PostgreSQL front end (crate `pgfront`) with real clients:
//! `psql` (`\dt`, `\d cases`, queries, refusals with their SQLSTATEs),
//! Python's psycopg (parameters, binary results, a cursor over a million
//! rows, a cancel request; and the catalog queries DBeaver and Npgsql send,
//! `tests/clients/catalog_queries.py`) and Debian's pgJDBC driver (DatabaseMetaData, prepared statements,
//! fetch sizes), over a store and warehouse made from one simulated year.
//! Logins: a wrong password, a disabled account, a staff account and a
//! locked account are refused; TLS is used when asked and can be required.
//! Every statement is in the audit log.
//!
//! `psql` is on every machine that runs the store's PostgreSQL tests. psycopg
//! and pgJDBC (`python3 -m pip install 'psycopg[binary]'`, Debian's
//! `libpostgresql-jdbc-java` and a JDK) are installed by `.ci/run`, which sets
//! `WANGBAN_PG_CLIENTS=required`; elsewhere a missing client skips its check.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use dashboards::Dashboards;
use dashboards::auth::hash_password;
use pgfront::{PgFront, PgSettings};
use simulator::caseflow::{FlowParams, generate};
use store::{Store, both_backends};
use warehouse::console::Limits;
use warehouse::export::{RefreshOptions, refresh};

const QC_PASSWORD: &str = "qc-password-for-pg";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 10, 2, 0, 0).single().expect("time")
}

fn clients_required() -> bool {
    std::env::var("WANGBAN_PG_CLIENTS").is_ok_and(|v| v == "required")
}

/// Whether `program --version` runs; when clients are required, a missing one fails the test.
fn have(program: &str) -> bool {
    let ok = Command::new(program).arg("-version").output().is_ok()
        || Command::new(program).arg("--version").output().is_ok();
    assert!(ok || !clients_required(), "{program} is required (WANGBAN_PG_CLIENTS=required) but not installed");
    if !ok {
        eprintln!("skipped: {program} is not installed");
    }
    ok
}

struct Env {
    dir: PathBuf,
    addr: SocketAddr,
    store: Store,
    cases: i64,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl Env {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.expect("the front end stopped");
        }
    }

    fn conninfo(&self, user: &str, extra: &str) -> String {
        format!("host={} port={} dbname=wangban user={user} {extra}", self.addr.ip(), self.addr.port())
    }

    /// `psql` as `user` with `password`, running `commands` (`-c` each); verbose errors (with SQLSTATEs).
    fn psql(&self, user: &str, password: &str, extra: &str, commands: &[&str]) -> Output {
        let mut psql = Command::new("psql");
        psql.arg(self.conninfo(user, extra)).args(["-X", "-v", "VERBOSITY=verbose", "-v", "ON_ERROR_STOP=1"]);
        for c in commands {
            psql.args(["-c", c]);
        }
        psql.env("PGPASSWORD", password).env("PGCONNECT_TIMEOUT", "20").output().expect("psql runs")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A store with one simulated year, its warehouse, accounts `qc`, `leader`, `staff`,
/// `gone` (disabled), and the front end serving them on a free port.
async fn env(store: Store, name: &str, tls: Option<Arc<rustls::ServerConfig>>, require_tls: bool) -> Env {
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 5);
    params.yearly_volume = 2000;
    let flow = generate(&params);
    use connectors::registry::parse_case;
    use simulator::servers::registry::case_json;
    let cases: Vec<_> =
        flow.cases.iter().map(|c| parse_case(&case_json(c, c.source_updated_at)).expect("a case decodes").0).collect();
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_cases(&cases, now()).await.expect("cases");
    tx.commit().await.expect("commit");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("wangban_test_pg_{name}_{}_{nanos}", std::process::id()));
    let options = RefreshOptions {
        now: now(),
        key: b"test-key".to_vec(),
        calendar: domain::Calendar::builtin(),
        catalogue: domain::Catalogue::builtin(),
        full: true,
    };
    refresh(&store, &dir, &options).await.expect("refresh");
    for (account, role) in [("qc", "qc"), ("leader", "leadership"), ("staff", "staff"), ("gone", "qc")] {
        let hash = hash_password(&format!("{account}-password-for-pg")).expect("hash");
        store.create_account(account, role, None, &hash, now()).await.expect("account");
    }
    store.set_account_disabled("gone", true, now()).await.expect("disable");
    let dashboards = Dashboards {
        store: store.clone(),
        kpis: warehouse::kpi::KpiService::new(dir.clone(), 256 << 20),
        sql_limits: Limits { max_rows: 1000, timeout: std::time::Duration::from_secs(30), memory_bytes: 256 << 20 },
        secure_cookies: false,
        clock: Arc::new(now),
        sandbox: None,
        reports: dashboards::report::Archive::new(dir.join("reports")),
    };
    let settings = PgSettings { tls, require_tls, max_rows: 1_500_000, limits: pgfront::SessionLimits::default() };
    let front = PgFront::bind(SocketAddr::from(([127, 0, 0, 1], 0)), dashboards, settings).await.expect("bind");
    let addr = front.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(front.run_until(async move {
        let _ = stopped.await;
    }));
    Env { dir, addr, store, cases: cases.len() as i64, stop: Some(stop), served: Some(served) }
}

both_backends!(psql_lists_describes_queries_and_is_refused_what_would_change_anything, clients_log_in_only_as_they_may);

async fn psql_lists_describes_queries_and_is_refused_what_would_change_anything(store: Store) {
    let env = env(store, "psql", None, false).await;
    if !have("psql") {
        return env.stop().await;
    }
    let (out, err) = text(&env.psql("qc", QC_PASSWORD, "", &["\\dt", "\\d cases", "\\dt+", "\\d+ seizures"]));
    assert!(err.is_empty(), "{err}");
    assert!(out.contains("| 办件：每件登记业务一行"), "\\dt+ shows the tables' descriptions:\n{out}");
    assert!(out.contains("Table \"public.seizures\"") && out.contains(" served_at "), "{out}");
    for table in ["anomalies", "case_counts", "cases", "evaluations", "qc_findings", "seizures"] {
        assert!(out.contains(&format!(" public | {table} ")), "\\dt lists {table}:\n{out}");
    }
    assert!(out.contains("Table \"public.cases\""), "{out}");
    assert!(out.contains(" case_no ") && out.contains("timestamp with time zone") && out.contains("boolean"), "{out}");

    let output = env.psql("qc", QC_PASSWORD, "", &["SELECT COUNT(*) FROM cases", "SELECT SUM(cases) FROM case_counts"]);
    let (out, err) = text(&output);
    assert!(output.status.success(), "{err}");
    let counts: Vec<&str> = out.lines().map(str::trim).filter(|l| l.parse::<i64>().is_ok()).collect();
    assert_eq!(counts, [env.cases.to_string(), env.cases.to_string()], "{out}");

    let marker = env.dir.join("copied.csv");
    let refused = [
        ("CREATE TABLE x (a int)", "25006"),
        ("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'", "25006"),
        ("INSERT INTO cases (case_no) VALUES ('x')", "25006"),
        ("DELETE FROM cases", "25006"),
        (&format!("COPY cases TO '{}'", marker.display()), "0A000"),
        ("SET datafusion.execution.target_partitions = 64", "42501"),
        ("SET statement_timeout = 0", "42501"),
        ("SELECT * FROM '/etc/passwd'", "42P01"),
    ];
    for (sql, state) in &refused {
        let output = env.psql("qc", QC_PASSWORD, "", &[sql]);
        let (_, err) = text(&output);
        assert!(!output.status.success(), "{sql} was not refused");
        assert!(err.contains(&format!("ERROR:  {state}:")), "{sql}: {err}");
    }
    assert!(!marker.exists(), "COPY wrote a file");
    let (out, _) = text(&env.psql("qc", QC_PASSWORD, "", &["SELECT COUNT(*) FROM cases"]));
    assert!(out.contains(&env.cases.to_string()), "nothing changed: {out}");

    // statement_timeout may tighten the time limit; a query past it stops with 57014.
    let output = env.psql(
        "qc",
        QC_PASSWORD,
        "",
        &["SET statement_timeout = '1s'", "SELECT COUNT(*) FROM generate_series(1, 100000000000)"],
    );
    assert!(
        text(&output).1.contains("ERROR:  57014: canceling statement due to statement timeout"),
        "{}",
        text(&output).1
    );
    // The front end's row limit (1,500,000 here) cuts a longer result, saying so.
    let output = Command::new("psql")
        .arg(env.conninfo("qc", ""))
        .args(["-X", "-At", "-c", "SELECT value FROM generate_series(1, 1600000)"])
        .env("PGPASSWORD", QC_PASSWORD)
        .output()
        .expect("psql");
    let (out, err) = text(&output);
    assert_eq!(out.lines().count(), 1_500_000);
    assert!(err.contains("WARNING:  the result was cut at 1500000 rows"), "{err}");

    // Every statement is audited with the account, the SQL, rows and milliseconds.
    let audit = env.store.recent_audit(500).await.expect("audit");
    let sql_entries: Vec<_> = audit.iter().filter(|e| e.action == "warehouse.sql" && e.subject == "pgwire").collect();
    for (sql, state) in &refused {
        let entry = sql_entries
            .iter()
            .find(|e| e.detail.contains(&sql.replace('"', "\\\"")))
            .unwrap_or_else(|| panic!("{sql} is in the audit log"));
        assert_eq!(entry.actor, "qc");
        assert!(
            entry.detail.contains(&format!("\"error\":\"{state}:")) && entry.detail.contains("\"millis\":"),
            "{}",
            entry.detail
        );
    }
    let count = sql_entries
        .iter()
        .find(|e| e.detail.contains("\"sql\":\"SELECT COUNT(*) FROM cases\""))
        .expect("the count is in the audit log");
    assert!(count.detail.contains("\"rows\":1") && count.detail.contains("\"error\":null"), "{}", count.detail);
    assert!(audit.iter().any(|e| e.action == "warehouse.pg_login" && e.actor == "qc"));
    assert_eq!(env.store.verify_audit_chain().await.expect("chain").map(|_| ()), Ok(()));
    env.stop().await;
}

async fn clients_log_in_only_as_they_may(store: Store) {
    let env = env(store, "logins", None, false).await;
    if !have("psql") {
        return env.stop().await;
    }
    let refused = |user: &str, password: &str, says: &str| {
        let output = env.psql(user, password, "", &["SELECT 1"]);
        let (_, err) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{user}: {err}");
        assert!(err.contains(says), "{user}: {err}");
    };
    refused("qc", "not-the-password", "password authentication failed for user \"qc\"");
    refused("nobody", "whatever-password", "password authentication failed for user \"nobody\"");
    refused("gone", "gone-password-for-pg", "password authentication failed for user \"gone\"");
    refused("staff", "staff-password-for-pg", "may not use the warehouse's SQL front end");
    let output = env.psql("leader", "leader-password-for-pg", "", &["SELECT COUNT(*) FROM case_counts"]);
    assert!(output.status.success(), "{}", text(&output).1);
    let wrong_db = Command::new("psql")
        .arg(format!("host={} port={} dbname=postgres user=qc", env.addr.ip(), env.addr.port()))
        .args(["-X", "-c", "SELECT 1"])
        .env("PGPASSWORD", QC_PASSWORD)
        .output()
        .expect("psql");
    assert!(text(&wrong_db).1.contains("database \"postgres\" does not exist"), "{}", text(&wrong_db).1);
    // The login page's lockout: five wrong passwords in a row lock the account, then even the right one is refused.
    for _ in 0..4 {
        refused("qc", "still-not-the-password", "password authentication failed");
    }
    refused("qc", QC_PASSWORD, "is locked; try again in");
    let audit = env.store.recent_audit(100).await.expect("audit");
    assert!(audit.iter().filter(|e| e.action == "session.login_failed").count() >= 8);
    env.stop().await;
}

both_backends!(psycopg_and_pgjdbc_read_the_warehouse);

/// Runs a client program; panics with its output when it fails.
fn run_client(mut command: Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what} runs: {e}"));
    let (out, err) = text(&output);
    assert!(output.status.success(), "{what} failed:\n{out}\n{err}");
    out
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

async fn psycopg_and_pgjdbc_read_the_warehouse(store: Store) {
    let env = env(store, "clients", None, false).await;
    let psycopg = Command::new("python3").args(["-c", "import psycopg"]).output().is_ok_and(|o| o.status.success());
    assert!(psycopg || !clients_required(), "psycopg is required (WANGBAN_PG_CLIENTS=required) but not installed");
    if psycopg {
        let mut python = Command::new("python3");
        python
            .arg(clients_dir().join("psycopg_check.py"))
            .arg(env.conninfo("qc", &format!("password={QC_PASSWORD} sslmode=disable")))
            .arg(env.cases.to_string());
        let out = tokio::task::spawn_blocking(move || run_client(python, "psycopg_check.py")).await.expect("join");
        assert!(
            out.contains("cursor rows: 1000000") && out.contains("cancelled after") && out.ends_with("ok\n"),
            "{out}"
        );
        let mut python = Command::new("python3");
        python
            .arg(clients_dir().join("catalog_queries.py"))
            .arg(env.conninfo("qc", &format!("password={QC_PASSWORD} sslmode=disable")));
        let out = tokio::task::spawn_blocking(move || run_client(python, "catalog_queries.py")).await.expect("join");
        assert!(out.contains("Npgsql 4 types: 17") && out.ends_with("ok\n"), "{out}");
    } else {
        eprintln!("skipped: psycopg is not installed");
    }
    let jar = Path::new("/usr/share/java/postgresql.jar");
    let java = jar.exists() && have("javac") && have("java");
    assert!(java || !clients_required(), "pgJDBC (libpostgresql-jdbc-java) and a JDK are required");
    if java {
        let classes = env.dir.join("java");
        let mut javac = Command::new("javac");
        javac.arg("-d").arg(&classes).arg("-cp").arg(jar).arg(clients_dir().join("JdbcCheck.java"));
        let mut run = Command::new("java");
        run.arg("-cp")
            .arg(format!("{}:{}", jar.display(), classes.display()))
            .arg("JdbcCheck")
            .arg(format!("jdbc:postgresql://{}/wangban", env.addr))
            .args(["qc", QC_PASSWORD])
            .arg(env.cases.to_string());
        let out = tokio::task::spawn_blocking(move || {
            run_client(javac, "javac JdbcCheck.java");
            run_client(run, "java JdbcCheck")
        })
        .await
        .expect("join");
        assert!(out.contains("tables: [anomalies, case_counts, cases,") && out.ends_with("ok\n"), "{out}");
    }
    env.stop().await;
}

/// TLS from the server's rustls settings: used when the client asks, required with `require_tls`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_offered_and_can_be_required() {
    use rcgen::{CertificateParams, KeyPair};
    if !have("psql") {
        return;
    }
    let db = store::testing::TestDatabase::sqlite().await.expect("db");
    let dir = std::env::temp_dir().join(format!("wangban_test_pgcert_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params").self_signed(&key).expect("cert");
    std::fs::write(dir.join("server.pem"), cert.pem()).expect("write");
    std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("write");
    let files = gateway::tls::TlsFiles {
        cert_file: dir.join("server.pem"),
        key_file: dir.join("server.key"),
        client_ca_file: None,
        require_client_cert: false,
    };
    let config = gateway::tls::server_config(&files).expect("rustls config");
    let env = env(db.store.clone(), "tls", Some(config), true).await;
    let output = env.psql("qc", QC_PASSWORD, "sslmode=require", &["SELECT COUNT(*) FROM cases"]);
    assert!(output.status.success(), "{}", text(&output).1);
    let output = env.psql("qc", QC_PASSWORD, "sslmode=disable", &["SELECT 1"]);
    assert!(text(&output).1.contains("accepts only encrypted connections"), "{}", text(&output).1);
    let audit = env.store.recent_audit(20).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "warehouse.pg_login" && e.detail.contains("\"tls\":true")));
    env.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    db.drop_database().await.expect("drop");
}
