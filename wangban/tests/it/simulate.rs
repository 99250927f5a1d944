//! `wangban simulate court-push` against a running `wangban serve`, then
//! `wangban seizures` over what it pushed.

use crate::support::{add_court_partner, run, start_serve, stderr, stdout, stop_serve, temp_dir, wangban};

#[test]
fn court_push_loads_a_running_service_and_seizures_lists_the_register() {
    let dir = temp_dir("simulate");
    let data = dir.to_str().expect("utf-8 path").to_owned();
    let secret = add_court_partner(&["--data", &data], "court-sim");
    let (server, target) = start_serve(&["--data", &data]);

    let push = |extra: &[&str]| {
        run(wangban()
            .args(["simulate", "court-push", "--target", &target, "--partner", "court-sim", "--secret", &secret])
            .args(extra))
    };
    let output = push(&["--count", "120", "--concurrency", "4", "--units", "30", "--seed", "9"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = stdout(&output);
    assert!(summary.contains("120 orders in 120 requests"), "{summary}");
    assert!(summary.contains("p99"), "{summary}");

    let output = push(&["--count", "100", "--batch", "50", "--concurrency", "1", "--units", "30", "--seed", "10"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("100 orders in 2 requests"), "{}", stdout(&output));

    stop_serve(server);

    let output = run(wangban().args(["--data", &data, "seizures", "expiring", "--days", "1200"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let active = stdout(&output).lines().count();
    assert!((1..=30).contains(&active), "one active seizure per unit at most, found {active}");
    let output = run(wangban().args(["--data", &data, "seizures", "lapse"]));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(report["units"], 0, "nothing has expired yet");

    let output = run(wangban().args(["simulate", "--listen", "127.0.0.1:0", "--error-rate", "2"]));
    assert_eq!(output.status.code(), Some(1), "rates are checked");
}

#[test]
fn generate_prints_what_it_made_and_refuses_backwards_dates() {
    let output =
        run(wangban().args(["simulate", "generate", "--from", "2025-01-01", "--to", "2025-03-31", "--volume", "4000"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    let cases = report["cases"].as_u64().expect("cases");
    assert!((900..1100).contains(&cases), "about a quarter of 4000: {cases}");
    let output = run(wangban().args(["simulate", "generate", "--from", "2025-03-01", "--to", "2025-01-01"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("before"), "{}", stderr(&output));
}

#[tokio::test]
async fn simulate_listen_serves_the_registry_feed() {
    let config = temp_dir("simulate_config").join("wangban.toml");
    let mut child = wangban()
        .args(["simulate", "--listen", "127.0.0.1:0", "--from", "2025-01-01", "--to", "2025-01-31", "--volume", "3000"])
        .arg("--write-config")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let child_stdout = child.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::new(child_stdout);
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut reader, &mut line).expect("read");
            let last = line.starts_with("court_platform ") || line.is_empty();
            lines.push(line);
            if last {
                return (lines, reader);
            }
        }
    })
    .await
    .expect("join");
    let (lines, _stdout_kept_open) = lines;
    assert!(lines.iter().any(|l| l.starts_with("housing ")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("bank:")), "{lines:?}");
    let base = lines[0].trim().strip_prefix("registry ").expect("registry URL line").to_owned();
    let page: serde_json::Value =
        reqwest::get(format!("{base}/cases?limit=5")).await.expect("get").json().await.expect("json");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(5));
    assert_eq!(page["has_more"], true);
    // The written config names every connector and is accepted by wangban.
    let written = std::fs::read_to_string(&config).expect("config written");
    for name in
        ["[connectors.registry]", "[connectors.housing]", "[connectors.provident_fund]", "[connectors.court_platform]"]
    {
        assert!(written.contains(name), "{name} in {written}");
    }
    let check = run(wangban().arg("--config").arg(&config).args(["calendar", "check", "2025-01-02"]));
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));

    // `sync` pulls every partner through the written config into a fresh data directory.
    let data = temp_dir("simulate_sync");
    let sync_all = || run(wangban().arg("--config").arg(&config).arg("--data").arg(&data).arg("sync"));
    let sync = sync_all();
    assert_eq!(sync.status.code(), Some(0), "{}", stderr(&sync));
    let reports: Vec<serde_json::Value> =
        stdout(&sync).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let by_name = |name: &str| reports.iter().find(|r| r["connector"] == name).cloned().unwrap_or_default();
    assert!(by_name("registry")["inserted"].as_u64() > Some(100), "{reports:?}");
    for name in ["registry-qc", "registry-evaluations", "housing", "provident_fund"] {
        assert!(by_name(name)["inserted"].as_u64() > Some(0), "{name}: {reports:?}");
    }
    assert_eq!(by_name("court_platform")["error"], serde_json::Value::Null, "{reports:?}");
    assert!(reports.iter().any(|r| r["reconciliation"].is_array()), "{reports:?}");
    let again = sync_all();
    for report in stdout(&again).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")) {
        if report.get("connector").is_some() {
            assert_eq!(report["rows"], 0, "the second run resumes from the cursor: {report}");
        }
    }
    let listed = run(wangban().arg("--config").arg(&config).arg("--data").arg(&data).args(["quarantine", "list"]));
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let replay =
        run(wangban().arg("--config").arg(&config).arg("--data").arg(&data).args(["quarantine", "replay", "999999"]));
    assert_eq!(replay.status.code(), Some(1), "an unknown entry is an error");
    assert!(stderr(&replay).contains("no quarantine entry 999999"), "{}", stderr(&replay));

    // The warehouse over what was pulled: refresh, a KPI, analyst SQL (read-only).
    let cli = |args: &[&str]| run(wangban().arg("--config").arg(&config).arg("--data").arg(&data).args(args));
    let refreshed = cli(&["warehouse", "refresh"]);
    assert_eq!(refreshed.status.code(), Some(0), "{}", stderr(&refreshed));
    let report: serde_json::Value = serde_json::from_str(stdout(&refreshed).trim()).expect("json");
    assert!(report["cases"].as_u64() > Some(100), "{report}");
    // Every month the cases synced are the cases the online rate counts or leaves out.
    assert_eq!(report["reconciliation"]["differing"], serde_json::json!([]), "{report}");
    assert_eq!(report["reconciliation"]["delivered"], report["cases"], "{report}");
    let reconciled = cli(&["warehouse", "reconcile"]);
    assert_eq!(reconciled.status.code(), Some(0), "{}", stderr(&reconciled));
    let months: Vec<serde_json::Value> =
        stdout(&reconciled).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert!(
        months.len() >= 2 && months.iter().all(|m| m["difference"] == 0 || m.get("months").is_some()),
        "{months:?}"
    );
    let kpi = cli(&[
        "kpi",
        "online-rate",
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-31",
        "--by",
        "channel",
        "--format",
        "json",
    ]);
    assert_eq!(kpi.status.code(), Some(0), "{}", stderr(&kpi));
    let kpi: serde_json::Value = serde_json::from_str(&stdout(&kpi)).expect("json");
    assert_eq!(kpi["definition"]["id"], "kpi.online_rate");
    assert_eq!(kpi["target"], 0.9);
    let bad = cli(&["kpi", "online-rate", "--from", "2025-01-01", "--to", "2025-01-31", "--by", "colour"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("cannot be broken down"), "{}", stderr(&bad));
    let count = cli(&["sql", "SELECT COUNT(*) AS n FROM cases", "--format", "json"]);
    assert_eq!(count.status.code(), Some(0), "{}", stderr(&count));
    let rows: serde_json::Value = serde_json::from_str(stdout(&count).trim()).expect("json");
    assert_eq!(rows[0]["n"], report["cases"]);
    let drop = cli(&["sql", "DROP TABLE cases"]);
    assert_eq!(drop.status.code(), Some(1));
    assert!(stderr(&drop).contains("read-only"), "{}", stderr(&drop));

    // One figure everywhere: for the same snapshot and period the CLI, the KPI
    // API and the overview page give the same online rate, as of the snapshot.
    let period = ["--from", "2025-01-01", "--to", "2025-01-31"];
    let by_month = cli(&[&["kpi", "online-rate", "--by", "month", "--format", "json"][..], &period[..]].concat());
    assert_eq!(by_month.status.code(), Some(0), "{}", stderr(&by_month));
    let from_cli: serde_json::Value = serde_json::from_str(&stdout(&by_month)).expect("json");
    let added = cli(&["user", "add", "--name", "leader", "--role", "leadership", "--password", "leader-password-1"]);
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    let (data_arg, config_arg) = (data.to_str().expect("path").to_owned(), config.to_str().expect("path").to_owned());
    let (server, url) =
        tokio::task::spawn_blocking(move || start_serve(&["--config", &config_arg, "--data", &data_arg]))
            .await
            .expect("join");
    let from_api: serde_json::Value =
        reqwest::get(format!("{url}/api/kpi/online-rate?from=2025-01-01&to=2025-01-31&by=month"))
            .await
            .expect("kpi")
            .json()
            .await
            .expect("json");
    assert_eq!(from_api, from_cli, "the API and the CLI give the same answer");
    assert_eq!(from_cli["snapshot_id"], report["snapshot"], "the answer names the snapshot it was computed on");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let login = client
        .post(format!("{url}/login"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("username=leader&password=leader-password-1")
        .send()
        .await
        .expect("login");
    let cookie = login
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let page = |path: &str| {
        let request = client.get(format!("{url}{path}")).header(reqwest::header::COOKIE, cookie.clone());
        async move { request.send().await.expect("page").text().await.expect("text") }
    };
    let overview = page("/?from=2025-01-01&to=2025-01-31").await;
    let total = cli(&[&["kpi", "online-rate", "--format", "json"][..], &period[..]].concat());
    let total: serde_json::Value = serde_json::from_str(&stdout(&total)).expect("json");
    let rate = total["rows"][0]["rate"].as_f64().expect("a rate");
    let tile = format!("<div class=\"tile-title\">网办率</div><div class=\"tile-value\">{:.1}%</div>", rate * 100.0);
    assert!(overview.contains(&tile), "the overview shows {tile}");
    let csv = page("/?from=2025-01-01&to=2025-01-31&download=monthly").await;
    let month = &from_cli["rows"][0];
    let line = format!("{},{},{},", month["month"].as_str().expect("month"), month["numerator"], month["denominator"]);
    assert!(csv.contains(&line), "the overview's monthly table holds {line}:\n{csv}");
    // The monthly report says the same: its headline is the CLI's figure, and
    // its gap analysis the API's.
    let out = data.join("report-2025-01.xlsx");
    let made = cli(&["report", "monthly", "--month", "2025-01", "--out", out.to_str().expect("path")]);
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    let made: serde_json::Value = serde_json::from_str(stdout(&made).trim()).expect("one JSON line");
    assert_eq!(made["snapshot_id"], report["snapshot"]);
    assert_eq!(
        (&made["numerator"], &made["denominator"]),
        (&total["rows"][0]["numerator"], &total["rows"][0]["denominator"])
    );
    assert!(std::fs::metadata(&out).is_ok_and(|m| m.len() > 10_000), "the workbook is written");
    let gap: serde_json::Value = reqwest::get(format!("{url}/api/kpi/online-rate/gap?month=2025-01"))
        .await
        .expect("gap")
        .json()
        .await
        .expect("json");
    assert_eq!(made["needed_for_target"], gap["needed"]);
    let later = cli(&["report", "monthly", "--month", "2031-01"]);
    assert_eq!(later.status.code(), Some(2), "a month past the snapshot is a usage error");
    assert!(stderr(&later).contains("after the snapshot"), "{}", stderr(&later));
    let _ = tokio::task::spawn_blocking(move || stop_serve(server)).await;
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
    assert_eq!(status.code(), Some(0));
}
