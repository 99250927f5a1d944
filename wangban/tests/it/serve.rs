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
