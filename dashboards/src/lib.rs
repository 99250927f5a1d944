//! Dashboards and the read APIs over the warehouse. Renders warehouse
//! results; never talks to sqlx.
//!
//! Built so far: the KPI API. The server-rendered pages in Simplified
//! Chinese (leadership, QC and operations), accounts and roles arrive with
//! the dashboards issue.
//!
//! # Layout
//!
//! - [`api`]: `GET /api/kpi` and `GET /api/kpi/{name}` over the current snapshot.

pub mod api;
