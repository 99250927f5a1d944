//! Running the built binary with an isolated data directory.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test.
pub fn wangban() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wangban"));
    // The tests' own settings only: no stray WANGBAN__ variables from the caller.
    for (key, _) in std::env::vars() {
        if key.starts_with("WANGBAN__") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn");
    command
}

/// Runs and captures.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("run wangban")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A fresh empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wangban_cli_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Starts `wangban serve --listen 127.0.0.1:0` with the given global arguments;
/// returns the child and the base URL it printed.
pub fn start_serve(global_args: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = wangban()
        .args(global_args)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("address line");
    let url = line.trim().strip_prefix("wangban listening on ").expect("address").to_owned();
    (child, url)
}

/// Stops a served child with SIGTERM and waits for it; returns its exit code.
pub fn stop_serve(mut child: std::process::Child) -> Option<i32> {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    child.wait().ok().and_then(|s| s.code())
}

/// Registers a court partner with `wangban partner add`; returns its secret.
pub fn add_court_partner(global_args: &[&str], id: &str) -> String {
    let output =
        run(wangban().args(global_args).args(["partner", "add", "--kind", "court", "--id", id, "--name", "法院"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let added: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    added["secret"].as_str().expect("secret").to_owned()
}
