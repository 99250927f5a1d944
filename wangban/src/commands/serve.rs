//! `wangban serve`: open the store, bind, print the address, run the
//! connectors and daily jobs on their schedules, serve until Ctrl-C or SIGTERM.

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
    let sandbox = settings.open_sandbox_store().await?;
    // The sandbox register's orders refer to their partner there too.
    for partner in store.list_partners().await?.into_iter().filter(|p| p.sandbox) {
        sandbox.mirror_sandbox_partner(&partner).await?;
    }
    let listen = args.listen.unwrap_or(settings.server.listen);
    let mut dashboards = dashboards_of(settings, &store);
    dashboards.sandbox = Some(sandbox.clone());
    let mut state = AppState::new(store.clone()).with_sandbox(sandbox.clone());
    let warehouse_dir = settings.warehouse_dir();
    state.extra_metrics.push(std::sync::Arc::new(move |now| warehouse::snapshot::metrics_text(&warehouse_dir, now)));
    let mut app = Application::build(listen, state)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?
        .with_routes(dashboards::router(dashboards.clone()));
    if let Some(tls) = &settings.server.tls {
        app = app.with_tls(gateway::tls::server_config(&tls.files()).context("[server.tls]")?);
    }
    let scheme = app.scheme();
    let addr = app.local_addr()?;
    let lapse_schedule =
        connectors::schedule::Schedule::parse(&settings.jobs.seizure_lapse).context("jobs.seizure_lapse")?;
    let reconcile_schedule =
        connectors::schedule::Schedule::parse(&settings.jobs.reconciliation).context("jobs.reconciliation")?;
    let connectors = connectors::runner::build(&settings.connectors.specs(false)).context("[connectors] schedule")?;
    let calendar = settings.calendar()?;
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let lapse = {
        let store = store.clone();
        tokio::spawn(scheduled_loop(lapse_schedule, jobs_stopped.clone(), move || seizure_lapse(store.clone())))
    };
    let reconciliation = {
        let store = store.clone();
        tokio::spawn(scheduled_loop(reconcile_schedule, jobs_stopped.clone(), move || {
            let (store, calendar) = (store.clone(), calendar.clone());
            async move {
                if let Err(error) = super::sync::reconcile(&store, &calendar, chrono::Utc::now()).await {
                    tracing::error!(message = "reconciliation failed; it runs again at the next scheduled time", %error);
                }
            }
        }))
    };
    let warm = tokio::spawn(warm_loop(dashboards, settings.alerts.clone(), jobs_stopped.clone()));
    let scheduled = connectors.len();
    let scheduler =
        tokio::spawn(connectors::runner::run_scheduled(connectors, store.clone(), chrono::Utc::now, jobs_stopped));
    println!("wangban listening on {scheme}://{addr}");
    tracing::info!(message = "serving", %addr, connectors = scheduled, database = %store::redact_url(&settings.database_url()));
    app.run_until(shutdown_signal()).await.context("server failed")?;
    let _ = stop_jobs.send(true);
    // A connector run in progress finishes its current page first (pages are transactions).
    let _ = tokio::join!(lapse, reconciliation, scheduler, warm);
    store.close().await;
    sandbox.close().await;
    tracing::info!(message = "stopped");
    Ok(ExitCode::SUCCESS)
}

/// The dashboards over the configured warehouse and store.
pub(crate) fn dashboards_of(settings: &Settings, store: &store::Store) -> dashboards::Dashboards {
    dashboards::Dashboards {
        store: store.clone(),
        kpis: warehouse::kpi::KpiService::new(settings.warehouse_dir(), settings.warehouse.sql_memory_mb * 1024 * 1024),
        sql_limits: settings.sql_limits(),
        secure_cookies: settings.server.secure_cookies || settings.server.tls.is_some(),
        clock: std::sync::Arc::new(chrono::Utc::now),
        sandbox: None,
    }
}

/// Every 30 seconds: when a warehouse snapshot appeared since (a refresh by
/// `wangban warehouse refresh` or a timer), computes the dashboards' KPIs on it,
/// so no visitor waits for the first scan, and evaluates the alert rules on it;
/// and retries alert webhook deliveries that have not gone through.
async fn warm_loop(
    dashboards: dashboards::Dashboards,
    alerts: crate::settings::AlertSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut warmed: Option<String> = None;
    loop {
        let started = std::time::Instant::now();
        match dashboards.warm().await {
            Ok((id, results)) if warmed.as_ref() != Some(&id) => {
                tracing::info!(message = "dashboards warmed for a new snapshot", snapshot = %id, results,
                               ms = started.elapsed().as_millis() as u64);
                match dashboards.kpis.snapshot().await {
                    Ok(snapshot) => {
                        let now = chrono::Utc::now();
                        if let Err(error) =
                            super::alerts::evaluate_and_notify(&dashboards.store, Some(&snapshot), &alerts, now).await
                        {
                            tracing::error!(message = "alert evaluation failed", error = %format!("{error:#}"));
                        }
                    }
                    Err(error) => tracing::warn!(message = "alerts not evaluated", %error),
                }
                warmed = Some(id);
            }
            Ok(_) => {
                if let Err(error) = super::alerts::deliver_pending(&dashboards.store, &alerts, chrono::Utc::now()).await
                {
                    tracing::debug!(message = "alert delivery retry failed", error = %format!("{error:#}"));
                }
            }
            Err(error) => tracing::debug!(message = "dashboards not warmed", %error),
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Sleeps until each scheduled time and runs `job`, until `stop` turns true.
async fn scheduled_loop<F, Fut>(
    schedule: connectors::schedule::Schedule,
    mut stop: tokio::sync::watch::Receiver<bool>,
    job: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        let now = chrono::Utc::now();
        let Some(next) = schedule.next_after(now) else { return };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        job().await;
    }
}

/// The daily seizure job: lapses expired seizures, promotes queues, and logs
/// what expires within 30 days.
async fn seizure_lapse(store: store::Store) {
    let now = chrono::Utc::now();
    let today = domain::time::local_date(now);
    match store.lapse_expired_seizures(domain::seizure::SeizureRules::default(), today, now).await {
        Ok(report) => tracing::info!(
            message = "seizure lapse job",
            units = report.units,
            lapsed = report.lapsed.len(),
            promoted = report.promoted.len()
        ),
        Err(error) => {
            tracing::error!(message = "seizure lapse job failed; it runs again at the next scheduled time", %error)
        }
    }
    match store.seizures_expiring_within(today, 30).await {
        Ok(expiring) => tracing::info!(message = "seizures expiring within 30 days", count = expiring.len()),
        Err(error) => tracing::error!(message = "listing expiring seizures failed", %error),
    }
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
