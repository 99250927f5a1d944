//! `wangban serve --listen 127.0.0.1:0` prints the bound address, answers, and stops on SIGTERM.

use crate::support::{start_serve, stop_serve, temp_dir, wangban};

#[tokio::test]
async fn serve_prints_its_address_answers_and_stops_on_sigterm() {
    let dir = temp_dir("serve");
    let data = dir.to_str().expect("utf-8 path").to_owned();
    let (child, url) = tokio::task::spawn_blocking(move || start_serve(&["--data", &data])).await.expect("join");
    assert!(!url.ends_with(":0"), "{url}");

    let ready: serde_json::Value =
        reqwest::get(format!("{url}/readyz")).await.expect("readyz").json().await.expect("json");
    assert_eq!(ready["database"], "sqlite");
    assert!(dir.join("wangban.db").exists(), "the SQLite file is created under --data");

    // The KPI API: definitions always; figures once a snapshot exists.
    let list: serde_json::Value =
        reqwest::get(format!("{url}/api/kpi")).await.expect("kpi").json().await.expect("json");
    assert!(list["definitions"].as_array().is_some_and(|d| d.iter().any(|k| k["name"] == "online-rate")), "{list}");
    let kpi_url = format!("{url}/api/kpi/online-rate?from=2025-01-01&to=2025-01-31&by=business_type");
    let none = reqwest::get(&kpi_url).await.expect("kpi");
    assert_eq!(none.status(), 503, "no snapshot yet");
    let metrics = reqwest::get(format!("{url}/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("wangban_warehouse_snapshot 0"), "{metrics}");
    let refreshed =
        crate::support::run(wangban().args(["--data", dir.to_str().expect("path"), "warehouse", "refresh"]));
    assert_eq!(refreshed.status.code(), Some(0), "{}", crate::support::stderr(&refreshed));
    let answer = reqwest::get(&kpi_url).await.expect("kpi");
    assert_eq!(answer.status(), 200);
    let metrics = reqwest::get(format!("{url}/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("wangban_warehouse_snapshot 1"), "{metrics}");
    assert!(
        metrics.contains("wangban_warehouse_case_rows 0") && metrics.contains("wangban_warehouse_refresh_seconds "),
        "{metrics}"
    );
    let answer: serde_json::Value = answer.json().await.expect("json");
    assert_eq!((answer["definition"]["version"].as_u64(), answer["target"].as_f64()), (Some(1), Some(0.9)));
    let bad =
        reqwest::get(format!("{url}/api/kpi/online-rate?from=2025-01-01&to=2025-01-31&by=colour")).await.expect("kpi");
    assert_eq!(bad.status(), 400);
    let unknown = reqwest::get(format!("{url}/api/kpi/nope?from=2025-01-01&to=2025-01-31")).await.expect("kpi");
    assert_eq!(unknown.status(), 404);

    let exit = tokio::task::spawn_blocking(move || stop_serve(child)).await.expect("join");
    assert_eq!(exit, Some(0), "graceful shutdown exits 0");
}

#[test]
fn serve_refuses_a_bad_config_with_the_key() {
    let dir = temp_dir("serve_config");
    let config = dir.join("wangban.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\nlistne = 1\n").expect("write");
    let output = wangban().arg("--config").arg(&config).arg("serve").output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("listne"));
}

/// `[server.tls]` in the settings: `serve` speaks HTTPS and says so in its address line.
#[tokio::test]
async fn serve_speaks_https_with_server_tls() {
    let dir = crate::support::temp_dir("serve_tls");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    std::fs::write(dir.join("server.pem"), cert.cert.pem()).expect("write");
    std::fs::write(dir.join("server.key"), cert.signing_key.serialize_pem()).expect("write");
    let config = dir.join("tls.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n\n[server.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            dir.join("data").display().to_string(),
            dir.join("server.pem").display().to_string(),
            dir.join("server.key").display().to_string()
        ),
    )
    .expect("write");
    let (child, url) = crate::support::start_serve(&["--config", &config.display().to_string()]);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("pem"))
        .build()
        .expect("client");
    let ready = client.get(format!("{url}/readyz")).send().await.expect("https readyz");
    assert_eq!(ready.status().as_u16(), 200);
    assert_eq!(crate::support::stop_serve(child), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
