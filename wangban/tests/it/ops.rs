//! Operations commands: `config check|show`, `audit verify|list`, `backup` and `restore`.

use store::testing::TestDatabase;

use crate::support::{add_court_partner, run, stderr, stdout, temp_dir, wangban};

#[test]
fn config_check_accepts_a_good_file_and_points_at_a_bad_one() {
    let dir = temp_dir("config_check");
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        format!(
            "data_dir = {:?}\n\n[connectors.registry]\nbase_url = \"http://127.0.0.1:9/registry/v1\"\nschedule = \"*/5 * * * *\"\n\n\
             [[connectors.banks]]\nid = \"icbc\"\nbase_url = \"http://127.0.0.1:9/banks/icbc\"\ntoken = \"s3cret-token\"\nschedule = \"0 */10 * * * *\"\n",
            dir.join("data").display().to_string()
        ),
    )
    .expect("write");
    let output = run(wangban().arg("--config").arg(&good).args(["config", "check"]));
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("registry enabled"), "{}", stdout(&output));
    assert!(!stdout(&output).contains("s3cret-token"));

    let output = run(wangban().arg("--config").arg(&good).args(["config", "show"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let shown: toml::Table = stdout(&output).parse().expect("show prints TOML");
    assert_eq!(shown["connectors"]["banks"][0]["token"].as_str(), Some("***"));
    assert_eq!(shown["server"]["listen"].as_str(), Some("127.0.0.1:8080"));

    // A partner over https with a private CA file that is missing, and a server
    // certificate that is missing: check names both files before a sync or serve fails.
    let tls = dir.join("tls.toml");
    std::fs::write(
        &tls,
        "[server.tls]\ncert_file = \"/nonexistent/server.pem\"\nkey_file = \"/nonexistent/server.key\"\n\n\
         [connectors]\nca_file = \"/nonexistent/gov-ca.pem\"\n\n\
         [connectors.housing]\nbase_url = \"https://zjj.example/exports\"\nschedule = \"0 0 * * * *\"\n",
    )
    .expect("write");
    let output = run(wangban().arg("--config").arg(&tls).args(["config", "check"]));
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stdout(&output).contains("gov-ca.pem"), "{}", stdout(&output));
    assert!(stdout(&output).contains("server.pem"), "{}", stdout(&output));

    // An unknown key: the message names it and its line.
    let typo = dir.join("typo.toml");
    std::fs::write(&typo, "data_dir = \"x\"\n\n[databse]\nurl = \"sqlite://x.db\"\n").expect("write");
    let output = run(wangban().arg("--config").arg(&typo).args(["config", "check"]));
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("databse") && err.contains("line 3"), "{err}");

    // A bad cron in a job.
    let cron = dir.join("cron.toml");
    std::fs::write(&cron, "[jobs]\nseizure_lapse = \"at midnight\"\n").expect("write");
    let output = run(wangban().arg("--config").arg(&cron).args(["config", "check"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("jobs.seizure_lapse"), "{}", stderr(&output));

    // A build without the `ballista` feature refuses the cluster commands and a
    // df:// engine with the command that builds one (exit 2), never a panic.
    let data = dir.join("no-ballista");
    for args in [
        vec!["cluster", "scheduler", "--listen", "127.0.0.1:0"],
        vec!["cluster", "executor", "--scheduler", "127.0.0.1:9"],
        vec!["kpi", "online-rate", "--from", "2025-01-01", "--to", "2025-01-31", "--engine", "df://127.0.0.1:9"],
    ] {
        let output = run(wangban().arg("--data").arg(&data).args(&args));
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("--features ballista"), "{args:?}: {}", stderr(&output));
    }

    // A file the settings name but that is missing: found by check, before serve needs it.
    let missing = dir.join("missing.toml");
    std::fs::write(&missing, "[domain]\ncalendar_file = \"/nonexistent/calendar-2027.toml\"\n").expect("write");
    let output = run(wangban().arg("--config").arg(&missing).args(["config", "check"]));
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stdout(&output).contains("error   calendar"), "{}", stdout(&output));
    assert!(stdout(&output).contains("calendar-2027.toml"), "{}", stdout(&output));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn config_check_connects_without_migrating() {
    let dir = temp_dir("config_connect");
    let url = format!("sqlite://{}", dir.join("fresh.db").display());
    let output =
        run(wangban().args(["--database-url", &url, "--data"]).arg(&dir).args(["config", "check", "--connect"]));
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("0 of"), "{}", stdout(&output));
    let store = store::Store::connect_unmigrated(&url, &store::ConnectOptions::default()).await.expect("open");
    assert_eq!(store.schema_status().await.expect("status").applied, 0, "check must not migrate");
    store.close().await;

    let db = TestDatabase::sqlite().await.expect("sqlite");
    let output =
        run(wangban().args(["--database-url", &db.url, "--data"]).arg(&dir).args(["config", "check", "--connect"]));
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("schema up to date"), "{}", stdout(&output));
    db.drop_database().await.expect("drop");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn audit_verify_detects_tampering(db: TestDatabase) {
    add_court_partner(&["--database-url", &db.url], "court-0401");
    add_court_partner(&["--database-url", &db.url], "court-0402");
    let output = run(wangban().args(["--database-url", &db.url, "audit", "verify"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let verdict: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(verdict["chain"], "intact");
    assert!(verdict["entries"].as_u64().expect("entries") >= 2);
    assert_eq!(verdict["head_hash"].as_str().map(str::len), Some(64));

    let output = run(wangban().args(["--database-url", &db.url, "audit", "list", "--limit", "1"]));
    assert_eq!(stdout(&output).lines().count(), 1);
    assert!(stdout(&output).contains("court-0402"), "{}", stdout(&output));

    // Someone with database access goes around the append-only triggers.
    if let Some(pool) = db.store.sqlite_pool() {
        sqlx::query("DROP TRIGGER audit_log_no_update").execute(pool).await.expect("drop trigger");
        sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE id = (SELECT MIN(id) FROM audit_log)")
            .execute(pool)
            .await
            .expect("tamper");
    } else if let Some(pool) = db.store.postgres_pool() {
        sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
            .execute(pool)
            .await
            .expect("disable trigger");
        sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE id = (SELECT MIN(id) FROM audit_log)")
            .execute(pool)
            .await
            .expect("tamper");
    }
    let output = run(wangban().args(["--database-url", &db.url, "audit", "verify"]));
    assert_eq!(output.status.code(), Some(1));
    let verdict: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(verdict["chain"], "broken");
    assert!(stderr(&output).contains("audit chain breaks"), "{}", stderr(&output));
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn audit_verify_detects_tampering_on_sqlite() {
    audit_verify_detects_tampering(TestDatabase::sqlite().await.expect("sqlite")).await;
}

#[tokio::test]
async fn audit_verify_detects_tampering_on_postgres() {
    let Some(db) = TestDatabase::postgres("audit_verify").await.expect("postgres") else { return };
    audit_verify_detects_tampering(db).await;
}

fn partner_ids(url: &str) -> Vec<String> {
    let output = run(wangban().args(["--database-url", url, "partner", "list"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn sqlite_backup_and_restore_round_trip() {
    let dir = temp_dir("backup");
    let url = format!("sqlite://{}", dir.join("data/wangban.db").display());
    let global = ["--database-url", url.as_str()];
    add_court_partner(&global, "court-0401");

    let backup = dir.join("backup.db");
    let output = run(wangban().args(global).arg("backup").arg("--to").arg(&backup));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert!(report["bytes"].as_u64().expect("bytes") > 0);
    let output = run(wangban().args(global).arg("backup").arg("--to").arg(&backup));
    assert_eq!(output.status.code(), Some(1), "a backup never overwrites");
    assert!(stderr(&output).contains("exists"), "{}", stderr(&output));

    add_court_partner(&global, "court-0402");
    assert_eq!(partner_ids(&url), ["court-0401", "court-0402"]);

    // Refused without --force; a damaged backup is refused and the store is untouched.
    let output = run(wangban().args(global).arg("restore").arg("--from").arg(&backup));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--force"), "{}", stderr(&output));
    let garbage = dir.join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 8192]).expect("write");
    let output = run(wangban().args(global).args(["restore", "--force", "--from"]).arg(&garbage));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot be restored"), "{}", stderr(&output));
    assert_eq!(partner_ids(&url), ["court-0401", "court-0402"]);

    let output = run(wangban().args(global).args(["restore", "--force", "--from"]).arg(&backup));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    let previous = report["previous_store"].as_str().expect("kept").to_owned();
    assert!(std::path::Path::new(&previous).is_file());
    assert_eq!(partner_ids(&url), ["court-0401"]);
    let output = run(wangban().args(global).args(["audit", "verify"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn backup_of_postgres_points_at_pg_dump() {
    let output =
        run(wangban().args(["--database-url", "postgres://postgres@127.0.0.1:1/none", "backup", "--to", "x.db"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("pg_dump"), "{}", stderr(&output));
}

/// A webhook receiver on loopback: answers each POST with the next status of
/// `statuses` (then 200) and keeps the bodies it got.
struct Webhook {
    url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Webhook {
    fn start(statuses: Vec<u16>) -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook?key=robot-secret", listener.local_addr().expect("addr"));
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let status = statuses.next().unwrap_or(200);
                if status == 200 {
                    kept.lock().expect("lock").push(serde_json::from_slice(&body).expect("JSON body"));
                }
                let _ = write!(stream, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        Self { url, bodies }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().expect("lock").clone()
    }
}

/// `alerts check` evaluates, records and posts each change once: a refused
/// delivery is retried, a firing alert is not sent twice, a resolution is sent.
#[tokio::test]
async fn alerts_reach_the_webhook_once_per_change() {
    let db = TestDatabase::sqlite().await.expect("sqlite");
    let hook = Webhook::start(vec![503]);
    let now = chrono::Utc::now();
    let set_watermark = |hours: i64| {
        let store = db.store.clone();
        async move {
            let mut tx = store.begin().await.expect("begin");
            let mut state = tx.connector_state("provident_fund").await.expect("state");
            state.source_watermark = Some(now - chrono::TimeDelta::hours(hours));
            tx.save_connector_state(&state, now).await.expect("save");
            tx.commit().await.expect("commit");
        }
    };
    // Thirty days behind: well past the threshold in office hours whatever today is.
    set_watermark(30 * 24).await;
    let check = || {
        run(wangban()
            .args([
                "--database-url",
                &db.url,
                "--data",
                &std::env::temp_dir().join("wangban_cli_alerts_nowh").display().to_string(),
            ])
            .env("WANGBAN__ALERTS__WEBHOOK_URL", &hook.url)
            .args(["alerts", "check"]))
    };

    // The webhook refuses: the alert is recorded and fires (exit 1), nothing delivered yet.
    let output = check();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(summary["fired"], 1);
    assert_eq!(summary["firing"][0]["kind"], "connector_lag");
    assert!(hook.bodies().is_empty());
    assert!(!stderr(&output).contains("robot-secret"), "the robot key stays out of logs: {}", stderr(&output));

    // Next evaluation: still firing, and the change that did not go through goes now, once.
    let output = check();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["source"], "wangban");
    assert_eq!(bodies[0]["alerts"][0]["subject"], "provident_fund");
    assert_eq!(bodies[0]["alerts"][0]["state"], "firing");
    assert!(bodies[0]["alerts"][0]["summary"].as_str().expect("summary").contains("滞后"));
    let output = check();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(hook.bodies().len(), 1, "an alert still firing is not sent again");

    // Caught up: resolved, sent once, exit 0.
    set_watermark(1).await;
    let output = check();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["alerts"][0]["state"], "resolved");
    let listed = run(wangban().args(["--database-url", &db.url, "alerts", "list", "--all"]));
    assert!(stdout(&listed).contains("\"state\":\"resolved\""), "{}", stdout(&listed));
    db.drop_database().await.expect("drop");
}
