//! The answer of commands that later issues will build: a clear message and exit code 2.

use std::process::ExitCode;

use crate::EXIT_USAGE;
use crate::cli::PendingArgs;

/// Says the command is not available yet and which piece of work brings it.
pub(crate) fn run(command: &str, _args: &PendingArgs) -> ExitCode {
    say(command)
}

/// The message and exit code, for commands with partial support.
pub(crate) fn say(command: &str) -> ExitCode {
    let arrives_with = match command {
        "demo" => "the one-command demo (simulator, service and dashboards together)",
        "simulate" => "the simulator (partner servers and case flow; `simulate court-push` works today)",
        _ => "a later release",
    };
    eprintln!("wangban {command}: not available yet; it arrives with {arrives_with}.");
    ExitCode::from(EXIT_USAGE)
}
