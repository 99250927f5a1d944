//! Partner servers on loopback, serving a generated [`Flow`](crate::caseflow::Flow)
//! through the partner contracts of `docs/partners.md`. So far: the registry's
//! business system (cases, QC findings, evaluations). Each server can inject
//! faults ([`faults::Faults`]) for connector tests.
//!
//! [`start`] binds one listener (port 0 allowed) and serves every built
//! partner under its own path prefix.

pub mod faults;
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
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl PartnerServers {
    /// Base URL of the registry's business system.
    pub fn registry_url(&self) -> String {
        format!("http://{}/registry/v1", self.addr)
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
pub fn router(flow: &Flow, faults: faults::Faults, seed: u64) -> Router {
    let faults = Arc::new(faults::FaultState::new(faults, seed));
    Router::new()
        .nest("/registry/v1", registry::router(flow))
        .layer(axum::middleware::from_fn_with_state(faults, faults::inject))
}

/// Binds `listen` and serves the partner servers until [`PartnerServers::stop`].
pub async fn start(
    listen: SocketAddr,
    flow: &Flow,
    faults: faults::Faults,
    seed: u64,
) -> std::io::Result<PartnerServers> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = router(flow, faults, seed);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(PartnerServers { addr, stop: Some(stop), task: Some(task) })
}
