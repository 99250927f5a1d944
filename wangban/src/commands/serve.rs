//! `wangban serve`: open the store, bind, print the address, run the
//! connectors and daily jobs on their schedules, serve until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use crate::app::App;
use crate::cli::ServeArgs;
use crate::settings::Settings;

pub(crate) async fn run(args: ServeArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let app = App::build(settings, args.listen).await?;
    println!("wangban listening on {}", app.url());
    if let Some(addr) = app.pg_addr() {
        println!("PostgreSQL clients: psql \"host={} port={} dbname=wangban user=<account>\"", addr.ip(), addr.port());
    }
    tracing::info!(message = "starting", database = %store::redact_url(&settings.database_url()));
    app.run_until(shutdown_signal()).await?;
    tracing::info!(message = "stopped");
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
