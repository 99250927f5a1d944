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
