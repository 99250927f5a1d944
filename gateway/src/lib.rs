//! The HTTP gateway: the court push API, health and readiness. Wire types live
//! here and are converted into domain types at the edge.
//!
//! `Application::build` is the one way to start the service; tests call it
//! with port 0, or drive [`app`] with `tower::ServiceExt::oneshot` without a socket.
//!
//! # Layout
//!
//! - [`app`]: the router and its shared [`AppState`].
//! - [`court`]: `/api/court/v1`: signed court orders in, receipts out; sandbox
//!   partners' orders go to the [`Sandbox`] register, and `/api/court/v1/sandbox/report`
//!   tells them what was wrong with their last requests.
//! - [`contracts`]: `/contracts/…`: every partner contract's schema, served from `contracts/`.
//! - [`health`]: `/healthz` (the process answers) and `/readyz` (the store answers).
//! - [`metrics`]: `/metrics` for Prometheus: requests, latency, connectors, seizures.
//! - [`error`]: [`error::AppError`], the one error type every handler returns.
//! - [`listen`]: the accept loop: connections counted per address and in total (with room
//!   kept for court partners), deadlines for the TLS handshake, a request's header and its body.
//! - [`tls`]: TLS in the server (rustls), partners' client certificates.

pub mod contracts;
pub mod court;
pub mod error;
pub mod health;
pub mod listen;
pub mod metrics;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use chrono::Utc;
use domain::seizure::SeizureRules;
use store::Store;
use tokio::net::TcpListener;

pub use domain::Clock;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The normalized store.
    pub store: Store,
    /// The time source.
    pub clock: Clock,
    /// Per-partner request rates.
    pub rate_limiter: Arc<court::rate::RateLimiter>,
    /// Seizure rules in force.
    pub seizure_rules: SeizureRules,
    /// The group-commit writer every court order goes through.
    pub court_writer: court::writer::CourtWriter,
    /// Request counts and latencies of every route.
    pub http_metrics: metrics::HttpMetrics,
    /// More `/metrics` text from other parts of the service (the warehouse), given the time.
    pub extra_metrics: Vec<MetricsSource>,
    /// The sandbox register sandbox partners' orders go to, if configured
    /// (see [`AppState::with_sandbox`]); without one, sandbox partners are refused.
    pub sandbox: Option<Sandbox>,
}

/// The sandbox register: its own store (its own database) and order writer.
/// Sandbox partners' orders get every check and a real receipt, and change
/// only this store: never the real register, its KPIs or its audit log.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// The sandbox's store.
    pub store: Store,
    /// The group-commit writer over it.
    pub writer: court::writer::CourtWriter,
}

/// A producer of Prometheus text appended to `/metrics`.
pub type MetricsSource = Arc<dyn Fn(chrono::DateTime<chrono::Utc>) -> String + Send + Sync>;

impl AppState {
    /// State over a store with the system clock and default rules.
    pub fn new(store: Store) -> Self {
        Self::with_clock(store, system_clock())
    }

    /// State over a store with the given clock. Starts the court-order writer
    /// task, so it must be called inside a Tokio runtime.
    pub fn with_clock(store: Store, clock: Clock) -> Self {
        let seizure_rules = SeizureRules::default();
        let court_writer = court::writer::CourtWriter::spawn(store.clone(), seizure_rules, clock.clone());
        Self {
            store,
            clock,
            rate_limiter: Arc::default(),
            seizure_rules,
            court_writer,
            http_metrics: metrics::HttpMetrics::default(),
            extra_metrics: Vec::new(),
            sandbox: None,
        }
    }

    /// Sends sandbox partners' orders to `store`, a database of its own
    /// (starts its writer, so call it inside a Tokio runtime).
    #[must_use]
    pub fn with_sandbox(mut self, store: Store) -> Self {
        let writer = court::writer::CourtWriter::spawn(store.clone(), self.seizure_rules, self.clock.clone());
        self.sandbox = Some(Sandbox { store, writer });
        self
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("store", &self.store).field("seizure_rules", &self.seizure_rules).finish()
    }
}

/// The router over the given state.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/court/v1/orders", post(court::post_orders).layer(DefaultBodyLimit::max(court::MAX_BODY_BYTES)))
        .route("/api/court/v1/orders/{order_no}", get(court::get_order))
        .route("/api/court/v1/sandbox/report", get(court::get_sandbox_report))
        .route("/api/court/v1/court-api.xsd", get(court::get_xsd))
        .route("/api/court/v1/openapi.json", get(court::get_openapi))
        .route("/contracts/", get(contracts::index))
        .route("/contracts/{*path}", get(contracts::file))
        .with_state(state)
}

/// A bound, not yet running, HTTP service.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    http_metrics: metrics::HttpMetrics,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    limits: listen::HttpLimits,
}

impl Application {
    /// Binds `listen` (port 0 picks a free port) and builds the router.
    pub async fn build(listen: SocketAddr, state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let http_metrics = state.http_metrics.clone();
        Ok(Self { listener, router: app(state), http_metrics, tls: None, limits: listen::HttpLimits::default() })
    }

    /// Serves under `limits` instead of [`listen::HttpLimits::default`].
    #[must_use]
    pub fn with_limits(mut self, limits: listen::HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves HTTPS with `config` (see [`tls::server_config`]) instead of plain HTTP.
    #[must_use]
    pub fn with_tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// `https` when serving TLS, `http` otherwise.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Adds routes served next to the gateway's (the KPI API, later the dashboards).
    #[must_use]
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.router = self.router.merge(routes);
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    /// Handlers can read the peer address (`ConnectInfo<SocketAddr>`).
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Timed here, over the merged router, so every route is counted.
        let metrics = self.http_metrics;
        let router = self
            .router
            .layer(axum::middleware::from_fn(move |request, next| metrics::track(metrics.clone(), request, next)));
        listen::serve(self.listener, router, self.tls, listen::Connections::new(self.limits), shutdown).await
    }
}
