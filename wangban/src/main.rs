//! The `wangban` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's allocator: a sync spent a quarter of its time in
/// glibc's malloc and free (sqlx arguments, JSON values, Arrow buffers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = wangban::cli::Cli::parse();
    wangban::main_with(cli)
}
