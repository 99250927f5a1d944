//! The `wangban` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's allocator: a sync spent a quarter of its time in
/// glibc's malloc and free (sqlx arguments, JSON values, Arrow buffers). Built
/// without transparent huge pages (`no_thp` in Cargo.toml): with them the
/// dashboards' queries over 10 million cases left `serve` 500 MiB larger.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = wangban::cli::Cli::parse();
    wangban::main_with(cli)
}
