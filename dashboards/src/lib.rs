//! Dashboards and the read APIs over the warehouse: server-rendered pages in
//! Simplified Chinese (English with `?lang=en`), accounts, roles and sessions,
//! the KPI API and the analyst SQL API. Reads the store only through the
//! `store` crate's API (accounts, sessions, connector health, quarantine, audit).
//!
//! # Layout
//!
//! - [`auth`]: roles, the page access table, argon2 passwords, session tokens and cookies.
//! - [`pages`]: one file per page (`auth::Page` names them and their paths): `/`, `/types`,
//!   `/qc`, `/qc/cases`, `/seizures`, `/connectors`, `/sql`, `/audit`, `/sandbox`, `/my/cases`,
//!   `/cases`, and `/login`, `/logout`; their filters, layout, errors (`DashError`) and figures.
//! - [`i18n`]: the two languages and the names shown for codes.
//! - [`table`]: tables and their CSV and xlsx downloads.
//! - [`svg`]: line and bar charts drawn on the server.
//! - [`api`]: `GET /api/kpi`, `GET /api/kpi/{name}`, `GET /api/kpi/online-rate/gap` and `POST /api/sql`.
//! - [`params`]: dates, months and times in query strings, and what is wrong with them.
//! - [`report`]: the monthly leadership report (xlsx and print page) and the kept reports.
//!
//! Every response gets a strict Content-Security-Policy (no script, no inline
//! style, nothing from elsewhere) and is not cached.

pub mod api;
pub mod auth;
pub mod i18n;
pub mod pages;
pub mod params;
pub mod report;
pub mod svg;
pub mod table;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use store::Store;
use warehouse::console::Limits;

pub use domain::Clock;

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// What the dashboards need.
#[derive(Clone)]
pub struct Dashboards {
    /// The store: accounts, sessions, connector health, quarantine, audit.
    pub store: Store,
    /// Every KPI figure: the current warehouse snapshot's shared session and
    /// its cached results (the warehouse directory and memory pool with it).
    pub kpis: warehouse::kpi::KpiService,
    /// Limits of analyst queries.
    pub sql_limits: Limits,
    /// Mark cookies `Secure` (the service is reached over TLS).
    pub secure_cookies: bool,
    /// The time source.
    pub clock: Clock,
    /// The sandbox register's store (its own database), for the `/sandbox`
    /// page; `None` when the service runs without one.
    pub sandbox: Option<Store>,
    /// The kept monthly reports (`DATA_DIR/reports`), for the `/reports` pages.
    pub reports: report::Archive,
}

impl std::fmt::Debug for Dashboards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboards").field("warehouse_dir", &self.kpis.root()).finish_non_exhaustive()
    }
}

/// The client's address as the audit log records it (`unknown` without a socket, as in router tests).
#[derive(Debug, Clone)]
pub struct Client(pub String);

async fn client_and_headers(mut request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |ConnectInfo(addr)| addr.ip().to_string());
    request.extensions_mut().insert(Client(client));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../static/app.css"),
    )
        .into_response()
}

/// The tab icon: browsers ask for `/favicon.ico` when a page names none, and a 404
/// there is a console error on every page.
async fn favicon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")],
        include_str!("../static/favicon.svg"),
    )
        .into_response()
}

/// Every dashboard route and the APIs.
pub fn router(dashboards: Dashboards) -> axum::Router {
    use auth::Page;
    let kpi = dashboards.kpis.clone();
    axum::Router::new()
        .route(Page::Overview.path(), get(pages::overview))
        .route(Page::Types.path(), get(pages::types))
        .route(Page::Qc.path(), get(pages::qc))
        .route(Page::QcCases.path(), get(pages::qc_cases))
        .route(Page::Seizures.path(), get(pages::seizures))
        .route(Page::Connectors.path(), get(pages::connectors))
        .route("/connectors/replay", post(pages::quarantine_replay))
        .route(Page::Sql.path(), get(pages::sql_form).post(pages::sql_run))
        .route(Page::Audit.path(), get(pages::audit))
        .route(Page::Sandbox.path(), get(pages::sandbox))
        .route(Page::MyCases.path(), get(pages::my_cases))
        .route(Page::Cases.path(), get(pages::cases))
        .route(Page::Reports.path(), get(pages::reports))
        .route("/reports/{month}", get(pages::report_print))
        .route("/reports/{month}/xlsx", get(pages::report_file))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", get(pages::logout).post(pages::logout))
        .route("/api/sql", post(api::sql))
        .route("/static/app.css", get(stylesheet))
        .route("/static/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .with_state(dashboards)
        .merge(api::router(kpi))
        .layer(middleware::from_fn(client_and_headers))
}
