//! `wangban serve --listen 127.0.0.1:0` prints the bound address, answers, and stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::support::{temp_dir, wangban};

#[tokio::test]
async fn serve_prints_its_address_answers_and_stops_on_sigterm() {
    let dir = temp_dir("serve");
    let mut child = wangban()
        .arg("--data")
        .arg(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        line
    })
    .await
    .expect("join");
    let url = line.trim().strip_prefix("wangban listening on ").expect("address line").to_owned();
    assert!(!url.ends_with(":0"), "{url}");

    let ready: serde_json::Value =
        reqwest::get(format!("{url}/readyz")).await.expect("readyz").json().await.expect("json");
    assert_eq!(ready["database"], "sqlite");
    assert!(dir.join("wangban.db").exists(), "the SQLite file is created under --data");

    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0");
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
