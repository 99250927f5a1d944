//! The `wangban` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = wangban::cli::Cli::parse();
    wangban::main_with(cli)
}
