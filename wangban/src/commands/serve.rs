//! `wangban serve`: open the store, bind, print the address, serve until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use gateway::{AppState, Application};

use crate::cli::ServeArgs;
use crate::settings::Settings;

pub(crate) async fn run(args: ServeArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    // Check the domain files now, so a bad calendar stops the start rather than a request.
    settings.calendar()?;
    settings.catalogue()?;
    let store = settings.open_store().await?;
    let listen = args.listen.unwrap_or(settings.server.listen);
    let app = Application::build(listen, AppState::new(store.clone()))
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = app.local_addr()?;
    println!("wangban listening on http://{addr}");
    tracing::info!(message = "serving", %addr, database = %store::redact_url(&settings.database_url()));
    tracing::warn!(
        message = "court API, dashboards and connector scheduler are not available yet; serving health endpoints only"
    );
    app.run_until(shutdown_signal()).await.context("server failed")?;
    store.close().await;
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
