//! Partner servers on loopback, serving a generated [`Flow`](crate::caseflow::Flow)
//! through the partner contracts of `docs/partners.md`: the registry's
//! business system, the housing authority, the banks, the provident fund and
//! the courts' control platform. Each server can inject
//! faults ([`faults::Faults`]) for connector tests.
//!
//! [`start`] binds one listener (port 0 allowed) and serves every built
//! partner under its own path prefix.

pub mod court_platform;
pub mod faults;
pub mod housing;
pub mod lenders;
pub mod registry;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::caseflow::Flow;

/// Running partner servers.
#[derive(Debug)]
pub struct PartnerServers {
    /// Where they listen.
    pub addr: SocketAddr,
    court: Arc<court_platform::Platform>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl PartnerServers {
    /// Base URL of the registry's business system.
    pub fn registry_url(&self) -> String {
        format!("http://{}/registry/v1", self.addr)
    }

    /// Base URL of the housing authority.
    pub fn housing_url(&self) -> String {
        format!("http://{}/housing/v1", self.addr)
    }

    /// Base URL of a bank (its feed is under `/bank/v1/…`).
    pub fn bank_url(&self, code: &str) -> String {
        format!("http://{}/banks/{code}", self.addr)
    }

    /// Base URL of the courts' control platform.
    pub fn court_url(&self) -> String {
        format!("http://{}/court/v1", self.addr)
    }

    /// Feedback the control platform has received.
    pub fn court_feedback(&self) -> Vec<court_platform::Feedback> {
        self.court.feedback()
    }

    /// Base URL of the provident fund.
    pub fn gjj_url(&self) -> String {
        format!("http://{}/gjj/v1", self.addr)
    }

    /// Stops serving and waits for in-flight requests.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }
}

/// The router of every partner server over `flow`, with `faults` injected.
/// `published_until` is the simulated "today": housing files are published for the days before it.
pub fn router(
    flow: &Flow,
    published_until: chrono::NaiveDate,
    faults: faults::Faults,
    seed: u64,
    court: Arc<court_platform::Platform>,
) -> Router {
    let faults = Arc::new(faults::FaultState::new(faults, seed));
    Router::new()
        .nest("/court/v1", court_platform::router(court))
        .nest("/registry/v1", registry::router(flow))
        .nest("/housing/v1", housing::router(flow, published_until, seed))
        .nest("/gjj/v1", lenders::gjj_router(flow))
        .merge(lenders::banks_router(flow))
        .layer(axum::middleware::from_fn_with_state(faults, faults::inject))
}

/// Binds `listen` and serves the partner servers until [`PartnerServers::stop`].
pub async fn start(
    listen: SocketAddr,
    flow: &Flow,
    published_until: chrono::NaiveDate,
    faults: faults::Faults,
    seed: u64,
) -> std::io::Result<PartnerServers> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let court = court_platform::platform(flow);
    let app = router(flow, published_until, faults, seed, court.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(PartnerServers { addr, court, stop: Some(stop), task: Some(task) })
}

/// Helpers for the servers' tests: a small flow, servers on port 0.
#[cfg(test)]
pub(crate) mod testing {
    use chrono::NaiveDate;

    use super::{PartnerServers, faults::Faults, start};
    use crate::caseflow::{Flow, FlowParams, generate};

    /// A flow from 2024-01-01 to `to` at `volume` cases a year.
    pub(crate) fn flow(to: NaiveDate, seed: u64, volume: u32, tweak: impl FnOnce(&mut FlowParams)) -> Flow {
        let mut params = FlowParams::new(to, seed);
        params.yearly_volume = volume;
        tweak(&mut params);
        generate(&params)
    }

    /// The servers over `flow` on a free port, "today" being the day after `to`.
    pub(crate) async fn serve(flow: &Flow, today: NaiveDate, faults: Faults) -> PartnerServers {
        start("127.0.0.1:0".parse().expect("addr"), flow, today, faults, 1).await.expect("start partner servers")
    }
}
