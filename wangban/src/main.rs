//! The `wangban` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use wangban::cli::{Command, WarehouseCommand};

/// mimalloc rather than glibc's allocator: a sync spent a quarter of its time in
/// glibc's malloc and free (sqlx arguments, JSON values, Arrow buffers). Built
/// without transparent huge pages (`no_thp` in Cargo.toml): with them the
/// dashboards' queries over 10 million cases left `serve` 500 MiB larger.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option `purge_delay` (its `mi_option_t` value in `mimalloc.h`,
/// the same in versions 2 and 3; `libmimalloc-sys` names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Has mimalloc give freed memory back to the system at once instead of after
/// its delay (1 s, ten times that for its arenas), in the warehouse's batch
/// commands. They sort and write months of millions of rows within a fixed
/// memory pool; with the delay, what each month freed was still resident
/// while the next one allocated, and `warehouse compact` grew to 2.9 GiB
/// resident over 100 million cases (0.9 GiB with this). A full refresh of a
/// year took 3.7–4.0 s with it and 3.4–5.1 s without (noise). Called before
/// any other thread starts.
#[allow(unsafe_code)]
fn purge_freed_memory_at_once() {
    // SAFETY: `mi_option_set` only stores the option's value; it is called
    // from `main` before the runtime or any other thread exists, as mimalloc
    // asks ("not thread safe").
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

fn main() -> ExitCode {
    let cli = wangban::cli::Cli::parse();
    if let Command::Warehouse(args) = &cli.command
        && matches!(args.command, WarehouseCommand::Refresh { .. } | WarehouseCommand::Compact)
    {
        purge_freed_memory_at_once();
    }
    wangban::main_with(cli)
}
