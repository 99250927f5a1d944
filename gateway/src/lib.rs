//! The HTTP gateway: health and readiness today; the court push API and the
//! read APIs arrive with their issues. Wire types live here and are converted
//! into domain types at the edge.
//!
//! `Application::build` is the one way to start the service; tests call it
//! with port 0, or drive [`app`] with `tower::ServiceExt::oneshot` without a socket.
//!
//! # Layout
//!
//! - [`app`]: the router and its shared [`AppState`].
//! - [`health`]: `/healthz` (the process answers) and `/readyz` (the store answers).
//! - [`error`]: [`error::AppError`], the one error type every handler returns.

pub mod error;
pub mod health;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use store::Store;
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The normalized store.
    pub store: Store,
}

/// The router over the given state.
pub fn app(state: AppState) -> Router {
    Router::new().route("/healthz", get(health::healthz)).route("/readyz", get(health::readyz)).with_state(state)
}

/// A bound, not yet running, HTTP service.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Binds `listen` (port 0 picks a free port) and builds the router.
    pub async fn build(listen: SocketAddr, state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        Ok(Self { listener, router: app(state) })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await
    }
}
