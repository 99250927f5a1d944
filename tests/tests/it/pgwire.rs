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
    gauge: pgfront::Gauge,
    kpis: warehouse::kpi::KpiService,
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
    env_with(store, name, tls, require_tls, pgfront::SessionLimits::default()).await
}

/// The one year of cases [`env`] loads, as records.
fn year_of_cases() -> Vec<store::cases::CaseRecord> {
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 5);
    params.yearly_volume = 2000;
    let flow = generate(&params);
    use connectors::registry::parse_case;
    use simulator::servers::registry::case_json;
    flow.cases.iter().map(|c| parse_case(&case_json(c, c.source_updated_at)).expect("a case decodes").0).collect()
}

/// [`env`] with the front end's time limits after login.
async fn env_with(
    store: Store,
    name: &str,
    tls: Option<Arc<rustls::ServerConfig>>,
    require_tls: bool,
    limits: pgfront::SessionLimits,
) -> Env {
    let cases = year_of_cases();
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
    let sources = pgfront::Sources {
        store: store.clone(),
        kpis: warehouse::kpi::KpiService::new(dir.clone(), 256 << 20),
        sql_limits: Limits { max_rows: 1000, timeout: std::time::Duration::from_secs(30), memory_bytes: 256 << 20 },
        clock: Arc::new(now),
    };
    let kpis = sources.kpis.clone();
    let settings = PgSettings { tls, require_tls, max_rows: 1_500_000, limits, secret: b"test-key".to_vec() };
    let front = PgFront::bind(SocketAddr::from(([127, 0, 0, 1], 0)), sources, settings).await.expect("bind");
    let addr = front.local_addr().expect("addr");
    let gauge = front.gauge();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(front.run_until(async move {
        let _ = stopped.await;
    }));
    Env { dir, addr, store, cases: cases.len() as i64, gauge, kpis, stop: Some(stop), served: Some(served) }
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
    // A staff account keeps no SCRAM verifier, so its right password cannot be told from a wrong one.
    refused("staff", "staff-password-for-pg", "password authentication failed for user \"staff\"");
    let staff = env.store.account_by_name("staff").await.expect("staff").expect("account");
    assert!(staff.scram_verifier.is_none(), "only roles that may log in keep a verifier");
    let qc = env.store.account_by_name("qc").await.expect("qc").expect("account");
    assert!(qc.scram_verifier.is_some());
    // A made-up name shows the same salt on every handshake, as a real one does.
    let (nobody, again, real) =
        (first_salt(env.addr, "nobody").await, first_salt(env.addr, "nobody").await, first_salt(env.addr, "qc").await);
    assert_eq!(nobody, again, "an unknown name's salt does not change between handshakes");
    assert_eq!(real, first_salt(env.addr, "qc").await);
    assert!(qc.scram_verifier.as_deref().is_some_and(|v| v.contains(&format!(":{real}$"))), "{real}");
    assert_ne!(nobody, real);
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

/// The salt the server's first SCRAM message shows `user` (the exchange is then abandoned).
async fn first_salt(addr: SocketAddr, user: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut startup = Vec::new();
    startup.extend_from_slice(&196_608i32.to_be_bytes());
    for (name, value) in [("user", user), ("database", "wangban")] {
        startup.extend_from_slice(name.as_bytes());
        startup.push(0);
        startup.extend_from_slice(value.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    let mut packet = ((startup.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&startup);
    stream.write_all(&packet).await.expect("startup");
    let mut read_message = async || {
        let tag = stream.read_u8().await.expect("tag");
        let len = stream.read_i32().await.expect("len");
        let mut body = vec![0u8; len as usize - 4];
        stream.read_exact(&mut body).await.expect("body");
        (tag, body)
    };
    let (tag, body) = read_message().await;
    assert_eq!((tag, &body[..4]), (b'R', &10i32.to_be_bytes()[..]), "AuthenticationSASL");
    let client_first = b"n,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
    let mut sasl = b"SCRAM-SHA-256\0".to_vec();
    sasl.extend_from_slice(&(client_first.len() as i32).to_be_bytes());
    sasl.extend_from_slice(client_first);
    let mut message = vec![b'p'];
    message.extend_from_slice(&((sasl.len() + 4) as i32).to_be_bytes());
    message.extend_from_slice(&sasl);
    let mut stream_again = stream;
    stream_again.write_all(&message).await.expect("SASLInitialResponse");
    let tag = stream_again.read_u8().await.expect("tag");
    let len = stream_again.read_i32().await.expect("len");
    let mut body = vec![0u8; len as usize - 4];
    stream_again.read_exact(&mut body).await.expect("body");
    assert_eq!((tag, &body[..4]), (b'R', &11i32.to_be_bytes()[..]), "AuthenticationSASLContinue");
    let server_first = String::from_utf8_lossy(&body[4..]).into_owned();
    server_first
        .split(',')
        .find_map(|part| part.strip_prefix("s="))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no salt in {server_first}"))
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
        let sqlalchemy = Command::new("python3")
            .args(["-c", "import sqlalchemy, pandas"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(sqlalchemy || !clients_required(), "SQLAlchemy and pandas are required (WANGBAN_PG_CLIENTS=required)");
        if sqlalchemy {
            let mut python = Command::new("python3");
            python
                .arg(clients_dir().join("sqlalchemy_check.py"))
                .arg(format!("postgresql+psycopg://qc:{QC_PASSWORD}@{}/wangban?sslmode=disable", env.addr))
                .arg(env.cases.to_string());
            let out =
                tokio::task::spawn_blocking(move || run_client(python, "sqlalchemy_check.py")).await.expect("join");
            assert!(out.contains("tables: [") && out.ends_with("ok\n"), "{out}");
        } else {
            eprintln!("skipped: SQLAlchemy or pandas is not installed");
        }
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

both_backends!(
    silent_sockets_do_not_lock_analysts_out,
    prepared_statements_follow_the_snapshot,
    idle_cursors_are_closed_and_give_their_memory_back,
    failures_are_errors_never_empty_answers,
    a_statement_that_cannot_be_audited_is_not_answered
);

/// Reads from `socket` until the server closes it; how long that took, or
/// `None` when it is still open after `limit`.
async fn closed_within(socket: &mut tokio::net::TcpStream, limit: std::time::Duration) -> Option<std::time::Duration> {
    use tokio::io::AsyncReadExt as _;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

/// Sockets that connect from another loopback address (as another host would) and then say nothing
/// more than `first` (which may be empty).
async fn silent_sockets(addr: SocketAddr, count: usize, first: &[u8]) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt as _;
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::from(([127, 0, 0, 2], 0))).expect("bind 127.0.0.2");
        let mut stream = socket.connect(addr).await.expect("connect");
        if !first.is_empty() {
            // A refused socket may be closed before this arrives.
            let _ = stream.write_all(first).await;
        }
        sockets.push(stream);
    }
    sockets
}

async fn silent_sockets_do_not_lock_analysts_out(store: Store) {
    use tokio::io::AsyncWriteExt as _;
    let env = env(store, "silent", None, false).await;
    if !have("psql") {
        return env.stop().await;
    }
    let opened = std::time::Instant::now();
    // 250 sockets from one other host: half send nothing, half an SSLRequest (answered N) and then nothing.
    let ssl_request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let mut silent = silent_sockets(env.addr, 125, &[]).await;
    silent.extend(silent_sockets(env.addr, 125, &ssl_request).await);
    // A startup packet that claims 2 GiB is refused before anything is read or allocated.
    let mut huge = tokio::net::TcpStream::connect(env.addr).await.expect("connect");
    huge.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.expect("write");
    let refused = closed_within(&mut huge, std::time::Duration::from_secs(2)).await;
    assert!(refused.is_some(), "the 2 GiB startup packet is refused at once");
    assert!(env.gauge.waiting() <= pgfront::MAX_PRELOGIN_PER_ADDRESS, "{:?}", env.gauge);

    // An analyst logs in at once all the same.
    let started = std::time::Instant::now();
    let output = env.psql("qc", QC_PASSWORD, "", &["SELECT COUNT(*) FROM cases"]);
    let (out, err) = text(&output);
    assert!(output.status.success(), "{err}");
    assert!(out.contains(&env.cases.to_string()), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "psql took {:?}", started.elapsed());

    // A BI server opening a pool of 50 connections at once from one address gets all of them.
    let url = format!("postgres://qc:{QC_PASSWORD}@{}/wangban?sslmode=disable", env.addr);
    let mut pool = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let url = url.clone();
        pool.spawn(async move { <sqlx::PgConnection as sqlx::Connection>::connect(&url).await });
    }
    let mut opened_pool = Vec::new();
    while let Some(joined) = pool.join_next().await {
        opened_pool.push(joined.expect("join").expect("every pooled connection logs in"));
    }
    assert_eq!(opened_pool.len(), 50);
    drop(opened_pool);

    // Every silent socket is closed within the pre-login deadline.
    let deadline = pgfront::PRELOGIN_LIMIT + std::time::Duration::from_secs(3);
    for (i, socket) in silent.iter_mut().enumerate() {
        let left = deadline.saturating_sub(opened.elapsed());
        assert!(closed_within(socket, left).await.is_some(), "silent socket {i} is still open after {deadline:?}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!((env.gauge.open(), env.gauge.waiting()), (0, 0), "every slot is given back");
    env.stop().await;
}

/// The store's first 100 × `round` cases again under new numbers, then a refresh at `round` hours after [`now`].
async fn more_cases_and_refresh(env: &Env, round: i64) -> i64 {
    let mut cases = year_of_cases();
    cases.truncate(100 * round as usize);
    for case in &mut cases {
        case.case_no = format!("{}-R{round}", case.case_no);
        case.external_id = format!("{}-R{round}", case.external_id);
    }
    let mut tx = env.store.begin().await.expect("begin");
    tx.upsert_cases(&cases, now()).await.expect("cases");
    tx.commit().await.expect("commit");
    let options = RefreshOptions {
        now: now() + chrono::TimeDelta::hours(round),
        key: b"test-key".to_vec(),
        calendar: domain::Calendar::builtin(),
        catalogue: domain::Catalogue::builtin(),
        full: true,
    };
    refresh(&env.store, &env.dir, &options).await.expect("refresh");
    cases.len() as i64
}

async fn prepared_statements_follow_the_snapshot(store: Store) {
    use sqlx::Connection as _;
    let env = env(store, "prepared", None, false).await;
    let url = format!("postgres://qc:{QC_PASSWORD}@{}/wangban?sslmode=disable", env.addr);
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("sqlx logs in");
    // A named, cached statement, as pooled clients keep them (sqlx always does; pgJDBC and psycopg after 5 runs).
    let count = "SELECT COUNT(*) FROM cases WHERE case_no <> $1";
    for _ in 0..6 {
        let n: i64 = sqlx::query_scalar(count).bind("none").fetch_one(&mut conn).await.expect("count");
        assert_eq!(n, env.cases);
    }
    // A cursor opened now reads the first snapshot to its end, whatever refreshes happen meanwhile.
    let mut cursor = sqlx::PgConnection::connect(&url).await.expect("sqlx logs in");
    sqlx::raw_sql("BEGIN; DECLARE old CURSOR FOR SELECT case_no FROM cases")
        .execute(&mut cursor)
        .await
        .expect("declare");
    let first: Vec<sqlx::postgres::PgRow> =
        sqlx::raw_sql("FETCH 10 FROM old").fetch_all(&mut cursor).await.expect("fetch");
    assert_eq!(first.len(), 10);
    let mut added = 0;
    for round in 1..=2 {
        added += more_cases_and_refresh(&env, round).await;
    }
    let n: i64 = sqlx::query_scalar(count).bind("none").fetch_one(&mut conn).await.expect("count after refreshes");
    assert_eq!(n, env.cases + added, "the prepared statement answers from the current snapshot");
    let rest: Vec<sqlx::postgres::PgRow> =
        sqlx::raw_sql("FETCH ALL FROM old").fetch_all(&mut cursor).await.expect("the pinned snapshot is still there");
    assert_eq!(first.len() + rest.len(), env.cases as usize, "the cursor read its own snapshot whole");
    sqlx::raw_sql("CLOSE old; COMMIT").execute(&mut cursor).await.expect("close");
    let pins = std::fs::read_dir(env.dir.join("pins")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(pins, 0, "a closed cursor leaves no pin");

    // A table whose snapshot is gone fails; it never reads as empty.
    let ctx = warehouse::session::console_session(warehouse::session::console_pool(64 << 20)).expect("session");
    let manifest = warehouse::session::register_snapshot(&ctx, &env.dir).await.expect("snapshot");
    std::fs::remove_dir_all(env.dir.join("snapshots").join(&manifest.snapshot_id)).expect("remove");
    let error = ctx.sql("SELECT COUNT(*) FROM cases").await.expect("plan").collect().await.expect_err("no files");
    assert!(error.to_string().contains("the snapshot's files are missing"), "{error}");
    conn.close().await.expect("close");
    env.stop().await;
}

async fn idle_cursors_are_closed_and_give_their_memory_back(store: Store) {
    use sqlx::Connection as _;
    let limits = pgfront::SessionLimits {
        idle_in_transaction: std::time::Duration::from_secs(2),
        ..pgfront::SessionLimits::default()
    };
    let env = env_with(store, "idle", None, false, limits).await;
    let url = format!("postgres://qc:{QC_PASSWORD}@{}/wangban?sslmode=disable", env.addr);
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("sqlx logs in");
    sqlx::raw_sql("BEGIN; DECLARE c CURSOR FOR SELECT case_no, district FROM cases ORDER BY case_no DESC")
        .execute(&mut conn)
        .await
        .expect("declare");
    let rows: Vec<sqlx::postgres::PgRow> = sqlx::raw_sql("FETCH 5 FROM c").fetch_all(&mut conn).await.expect("fetch");
    assert_eq!(rows.len(), 5);
    assert!(env.kpis.console_reserved() > 0, "the open cursor's sort holds memory of the analysts' pool");
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(env.kpis.console_reserved(), 0, "the idle cursor was closed and its memory given back");
    let after = sqlx::raw_sql("FETCH 5 FROM c").fetch_all(&mut conn).await;
    let error = after.expect_err("the connection was ended");
    assert!(
        error.to_string().contains("idle-in-transaction timeout") || error.to_string().contains("closed"),
        "{error}"
    );
    assert_eq!(env.gauge.open(), 0);
    env.stop().await;
}

async fn failures_are_errors_never_empty_answers(store: Store) {
    let env = env(store, "failures", None, false).await;
    if !have("psql") {
        return env.stop().await;
    }
    // Each mentions the catalog and reads a warehouse table: a failure is an error with its SQLSTATE.
    for (sql, state) in [
        ("SELECT no_such_column FROM cases WHERE district <> ' pg_'", "42703"),
        ("SELECT c.nope FROM information_schema.tables t JOIN cases c ON true", "42703"),
        ("SELECT * FROM cases_that_are_not_there", "42P01"),
    ] {
        let output = env.psql("qc", QC_PASSWORD, "", &[sql]);
        let (out, err) = text(&output);
        assert!(!output.status.success(), "{sql} answered: {out}");
        assert!(err.contains(&format!("ERROR:  {state}:")), "{sql}: {err}");
    }
    // SQLAlchemy's first question, and the other multi-word SHOWs.
    let output = env.psql("qc", QC_PASSWORD, "", &["SHOW TRANSACTION ISOLATION LEVEL", "SHOW TIME ZONE"]);
    let (out, err) = text(&output);
    assert!(output.status.success(), "{err}");
    assert!(out.contains("transaction_isolation") && out.contains("read committed") && out.contains("UTC"), "{out}");
    // A statement that will never be run again is freed.
    let output = env.psql("qc", QC_PASSWORD, "", &["DEALLOCATE nothing_prepared"]);
    assert!(text(&output).1.contains("ERROR:  26000:"), "{}", text(&output).1);
    env.stop().await;
}

async fn a_statement_that_cannot_be_audited_is_not_answered(store: Store) {
    let env = env(store, "unaudited", None, false).await;
    if !have("psql") {
        return env.stop().await;
    }
    // The audit log refuses entries that name a marker, as a full disk would refuse them all.
    if let Some(pool) = env.store.sqlite_pool() {
        sqlx::raw_sql(
            "CREATE TRIGGER refuse_marked BEFORE INSERT ON audit_log WHEN NEW.detail LIKE '%UNAUDITABLE%' \
             BEGIN SELECT RAISE(ABORT, 'the audit log is full'); END",
        )
        .execute(pool)
        .await
        .expect("trigger");
    }
    if let Some(pool) = env.store.postgres_pool() {
        sqlx::raw_sql(
            "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.detail LIKE '%UNAUDITABLE%' THEN RAISE EXCEPTION 'the audit log is full'; END IF; \
               RETURN NEW; END $$; \
             CREATE TRIGGER refuse_marked BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_marked()",
        )
        .execute(pool)
        .await
        .expect("trigger");
    }
    let output = env.psql("qc", QC_PASSWORD, "", &["SELECT 'UNAUDITABLE' AS marker, case_no FROM cases LIMIT 5"]);
    let (out, err) = text(&output);
    assert!(!output.status.success(), "answered without an audit entry: {out}");
    assert!(err.contains("could not be audited, so it is not answered"), "{err}");
    assert!(!out.contains("UNAUDITABLE"), "no row left before the audit: {out}");
    // Through a cursor too.
    let output = env.psql(
        "qc",
        QC_PASSWORD,
        "",
        &["BEGIN", "DECLARE c CURSOR FOR SELECT 'UNAUDITABLE' AS marker FROM cases", "FETCH 5 FROM c"],
    );
    let (out, err) = text(&output);
    assert!(!output.status.success() && err.contains("could not be audited"), "{out}\n{err}");
    assert!(!out.contains("UNAUDITABLE"), "{out}");
    // Other statements are answered and audited as ever.
    let output = env.psql("qc", QC_PASSWORD, "", &["SELECT COUNT(*) FROM cases"]);
    assert!(output.status.success(), "{}", text(&output).1);
    env.stop().await;
}
