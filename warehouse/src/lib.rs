//! The warehouse: Parquet snapshots of the store and DataFusion KPIs over them.
//!
//! Today this crate holds the DataFusion session the KPI views will run in;
//! the export, the snapshot manifest and the KPI definitions arrive with the
//! warehouse issue. Knows nothing of HTTP.
//!
//! # Layout
//!
//! - [`session`]: the DataFusion session configuration shared by refreshes, KPIs and the analyst console.

pub mod session;
