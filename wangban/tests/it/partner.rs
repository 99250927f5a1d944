//! `wangban partner`: add prints the secret once; list never does; both backends.

use store::testing::TestDatabase;

use crate::support::{run, stderr, stdout, temp_dir, wangban};

fn partner_lifecycle(database_url: &str, data: &std::path::Path) {
    let output = run(wangban().args(["--database-url", database_url, "--data"]).arg(data).args([
        "partner",
        "add",
        "--kind",
        "court",
        "--id",
        "court-0405",
        "--name",
        "珠晖区人民法院",
    ]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let added: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    let secret = added["secret"].as_str().expect("secret").to_owned();
    assert_eq!(secret.len(), 64);

    let output = run(wangban().args([
        "--database-url",
        database_url,
        "partner",
        "add",
        "--kind",
        "court",
        "--id",
        "court-0405",
        "--name",
        "x",
    ]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("already exists"), "{}", stderr(&output));

    let output = run(wangban().args(["--database-url", database_url, "partner", "list"]));
    assert!(stdout(&output).contains("\"court-0405\""));
    assert!(!stdout(&output).contains(&secret), "list must never show secrets");

    let output = run(wangban().args(["--database-url", database_url, "partner", "rotate", "--id", "court-0405"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = run(wangban().args(["--database-url", database_url, "partner", "disable", "--id", "court-0405"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = run(wangban().args([
        "--database-url",
        database_url,
        "partner",
        "add",
        "--kind",
        "judge",
        "--id",
        "j",
        "--name",
        "x",
    ]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("unknown partner kind"), "{}", stderr(&output));

    // A sandbox court partner: registered with the others, its register in the sandbox database.
    let sandbox = |kind: &str| {
        run(wangban().args(["--database-url", database_url, "--data"]).arg(data).args([
            "partner",
            "add",
            "--kind",
            kind,
            "--id",
            "court-sandbox",
            "--name",
            "沙箱法院",
            "--sandbox",
        ]))
    };
    let output = sandbox("bank");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--sandbox is for partners that push orders"), "{}", stderr(&output));
    let output = sandbox("court");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let added: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(added["sandbox"], serde_json::Value::Bool(true));
    assert!(data.join("sandbox.db").exists(), "the sandbox register's default database");
    let output = run(wangban().args(["--database-url", database_url, "partner", "list"]));
    let listed: Vec<serde_json::Value> =
        stdout(&output).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    let flags: Vec<(&str, bool)> = listed
        .iter()
        .map(|p| (p["id"].as_str().unwrap_or_default(), p["sandbox"].as_bool().unwrap_or_default()))
        .collect();
    assert_eq!(flags, [("court-0405", false), ("court-sandbox", true)]);
}

#[test]
fn partner_lifecycle_on_the_default_sqlite_file() {
    let dir = temp_dir("partner");
    let url = format!("sqlite://{}", dir.join("wangban.db").display());
    partner_lifecycle(&url, &dir);
}

#[tokio::test]
async fn partner_lifecycle_on_postgres() {
    let Some(db) = TestDatabase::postgres("partner_lifecycle_on_postgres").await.expect("postgres") else { return };
    let url = db.url.clone();
    let dir = temp_dir("partner_pg");
    tokio::task::spawn_blocking(move || partner_lifecycle(&url, &dir)).await.expect("join");
    db.drop_database().await.expect("drop");
}

#[test]
fn demo_refuses_a_folder_it_did_not_make() {
    let dir = temp_dir("demo_foreign");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("precious.txt"), "keep me").expect("write");
    let output = run(wangban().args(["demo", "--dir"]).arg(&dir));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not made by `wangban demo`"), "{}", stderr(&output));
    assert!(dir.join("precious.txt").exists());
}

/// `partner check` against the simulator: a conforming partner passes (exit 0,
/// a Chinese report, the JSON report written); one serving broken records fails
/// (exit 1) and the English report names the check and the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_check_passes_a_conforming_simulator_and_names_the_fault_of_a_broken_one() {
    use simulator::caseflow::{FlowParams, generate};
    use simulator::servers::faults::Faults;

    let mut params = FlowParams::new(chrono::NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 3);
    params.yearly_volume = 2000;
    params.anomalies.bad_check_digit = 0.0;
    let flow = generate(&params);
    let today = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    let dir = temp_dir("partner_check");
    let report = dir.join("report.json");

    let good = simulator::servers::start("127.0.0.1:0".parse().expect("addr"), &flow, today, Faults::default(), 3)
        .await
        .expect("servers");
    let url = good.registry_url();
    let output = tokio::task::spawn_blocking({
        let report = report.clone();
        move || {
            run(wangban().args(["partner", "check", "--kind", "registry", "--base-url", &url, "--json"]).arg(&report))
        }
    })
    .await
    .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("全部检查通过"), "{}", stdout(&output));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    assert_eq!(json["passed"], true);
    good.stop().await.expect("stop");

    let broken = simulator::servers::start(
        "127.0.0.1:0".parse().expect("addr"),
        &flow,
        today,
        Faults { malformed_rate: 0.02, ..Faults::default() },
        3,
    )
    .await
    .expect("servers");
    let url = broken.registry_url();
    let output = tokio::task::spawn_blocking(move || {
        run(wangban().args(["partner", "check", "--kind", "registry", "--base-url", &url, "--lang", "en"]))
    })
    .await
    .expect("run");
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stdout(&output).contains("[FAIL] cases decode"), "{}", stdout(&output));
    assert!(stdout(&output).contains("missing field sqlx"), "{}", stdout(&output));
    broken.stop().await.expect("stop");

    let output = run(wangban().args(["partner", "check", "--kind", "bakery", "--base-url", "http://x"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("unknown partner kind"), "{}", stderr(&output));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Onboarding a partner's exchange table from the command line, as
/// docs/adapters.md says: the simulator writes a gtmap-style table, `config
/// check` takes the written section, `partner map` shows the first rows
/// mapped (writing nothing), `partner check --connector` passes, `sync` loads
/// every case, `partner reconcile` finds every day agreeing; the password in
/// the URL never reaches an output.
#[test]
fn an_exchange_table_is_onboarded_by_configuration() {
    let admin = match std::env::var("WANGBAN_TEST_MYSQL_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("WANGBAN_TEST_MYSQL_REQUIRED").is_ok() => panic!("WANGBAN_TEST_MYSQL_URL is unset"),
        Err(_) => return eprintln!("WANGBAN_TEST_MYSQL_URL is unset: skipping the exchange onboarding test"),
    };
    let (server, _) = admin.rsplit_once('/').expect("a database in the URL");
    let database = format!("wangban_test_cli_{}", std::process::id());
    let mysql = |sql: &str| {
        let status = std::process::Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", sql])
            .status()
            .expect("mariadb client");
        assert!(status.success(), "{sql}");
    };
    // The partner's account has a password, which must stay out of every output and log.
    let password = "Sync-Pa55-qzk";
    let user = format!("wangban_sync_{}", std::process::id());
    mysql(&format!(
        "DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}; \
         CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}'; \
         CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{password}'; \
         GRANT ALL ON {database}.* TO '{user}'@'%'; GRANT ALL ON {database}.* TO '{user}'@'localhost'"
    ));
    let host = server.rsplit_once('@').map_or("127.0.0.1:3306", |(_, h)| h);
    let url = format!("mysql://{user}:{password}@{host}/{database}");
    let dir = temp_dir("exchange");
    let config = dir.join("wangban.toml");
    let output = run(wangban()
        .args(["simulate", "--exchange-db", &url, "--exchange-cases", "400", "--write-config"])
        .arg(&config));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let cli = |args: &[&str]| {
        run(wangban()
            .env("WANGBAN_EXCHANGE_URL", &url)
            .env("RUST_LOG", "debug")
            .arg("--config")
            .arg(&config)
            .arg("--data")
            .arg(dir.join("data"))
            .args(args))
    };
    let output = cli(&["config", "check"]);
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout(&output), stderr(&output));

    let output = cli(&["partner", "map", "--connector", "gtmap", "--limit", "5", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["kept"] == true), "{rows:?}");
    assert!(rows[0]["mapped"]["sqlx"].as_str().is_some_and(|s| s.len() == 4), "{}", rows[0]);
    assert!(rows[0]["position"].as_str().is_some_and(|p| p.contains("BDC_YW_SL")), "{}", rows[0]);
    let text = cli(&["partner", "map", "--connector", "gtmap", "--limit", "1"]);
    assert!(stdout(&text).contains("业务号") && stdout(&text).contains("结果：保留"), "{}", stdout(&text));
    assert!(!dir.join("data").join("wangban.db").exists(), "partner map writes nothing");

    let output = cli(&["partner", "check", "--connector", "gtmap"]);
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("代码表覆盖"), "{}", stdout(&output));

    std::thread::sleep(std::time::Duration::from_millis(2500));
    let output = cli(&["sync", "--connector", "gtmap", "--quiet"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first: serde_json::Value = serde_json::from_str(stdout(&output).lines().next().expect("a line")).expect("json");
    assert_eq!(first["quarantined"], 0, "{first}");
    assert_eq!(first["inserted"], 400, "{first}");
    let output = cli(&["partner", "reconcile", "--connector", "gtmap", "--days", "2"]);
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout(&output), stderr(&output));
    // A wrong password: the error says so, without the password tried.
    let wrong = url.replace(password, "Wr0ng-Pa55-qzk");
    let output = run(wangban()
        .env("WANGBAN_EXCHANGE_URL", &wrong)
        .env("RUST_LOG", "debug")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.join("data"))
        .args(["sync", "--connector", "gtmap", "--quiet"]));
    assert_ne!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("BDC_YW_SL"), "the failure names the table: {}", stdout(&output));
    for out in [stdout(&output), stderr(&output)] {
        assert!(!out.contains("Wr0ng-Pa55-qzk"), "the password stays out of outputs and logs: {out}");
    }
    // Every output and debug log of the whole onboarding, too.
    for args in [
        &["partner", "map", "--connector", "gtmap"][..],
        &["partner", "check", "--connector", "gtmap"],
        &["sync", "--connector", "gtmap"],
    ] {
        let output = cli(args);
        for out in [stdout(&output), stderr(&output)] {
            assert!(!out.contains(password), "{args:?}: the password stays out of outputs and logs: {out}");
        }
    }
    mysql(&format!(
        "DROP DATABASE IF EXISTS {database}; DROP USER IF EXISTS '{user}'@'%'; DROP USER IF EXISTS '{user}'@'localhost'"
    ));
}
