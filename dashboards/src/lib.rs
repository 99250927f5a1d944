//! Server-rendered dashboards in Simplified Chinese: leadership, QC and
//! operations pages. Not built yet: arrives with the dashboards issue, on top
//! of the warehouse. Renders warehouse results; never talks to sqlx.
//!
//! # Layout
//!
//! Empty until the dashboards issue.
