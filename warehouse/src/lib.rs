//! The warehouse: Parquet snapshots of the store and DataFusion KPIs over them.
//! Knows nothing of HTTP.
//!
//! # Layout
//!
//! - [`snapshot`]: snapshot directories, manifests, the atomic `CURRENT` pointer.
//! - [`case_columns`]: the columns of `cases`, listed once (schema and batch builder).
//! - [`case_lists`]: the case and QC-finding lists behind a figure, typed (the dashboards' drill-downs).
//! - [`export`]: `refresh`: the store to Parquet, by month, incrementally, identities masked.
//! - [`layout`]: the files' sort order and writer settings, the streaming month writer.
//! - [`reconcile`]: what partners delivered against what the online rate counts, by month.
//! - [`session`]: the DataFusion session (pruning, memory limit) and the snapshot's tables.
//! - [`present`]: a snapshot table whose scan fails when its files are gone, never reads nothing.
//! - [`kpi`]: the closed `Kpi` enum, its versioned definitions, queries, typed
//!   answers and the `KpiService` every reader asks.
//! - [`console`]: read-only analyst SQL with row, time and memory limits.
//! - [`cache`]: one session per snapshot, KPI answers kept while it is current.
//! - [`rollup`]: the analyzer rule answering aggregates over `cases` from `case_counts` when exact.
//! - [`alerts`]: the alert rules evaluated after each refresh.
//! - [`bench`]: the raw queries `wangban warehouse bench` times beside DuckDB.

pub use datafusion;

pub mod alerts;
pub mod bench;
pub mod cache;
pub mod case_columns;
pub mod case_lists;
#[cfg(feature = "ballista")]
pub mod cluster;
pub mod console;
pub mod export;
pub mod kpi;
pub mod layout;
pub mod present;
pub mod reconcile;
pub mod rollup;
pub mod session;
pub mod snapshot;

/// Why a warehouse operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// There is no snapshot to query.
    #[error("{0}")]
    NoSnapshot(String),
    /// The request is wrong (unknown KPI, dimension or date range).
    #[error("{0}")]
    BadRequest(String),
    /// The SQL tries to change something (DDL, DML, SET …).
    #[error("not allowed in the read-only console: {0}")]
    ReadOnly(String),
    /// A limit stopped the query.
    #[error("{0}")]
    Limit(String),
    /// A snapshot file is damaged.
    #[error("damaged warehouse: {0}")]
    Corrupt(String),
    /// Reading or writing files.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The store.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// DataFusion (planning or running a query).
    #[error("query failed: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Arrow.
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// Parquet.
    #[error("parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
}

impl WarehouseError {
    /// Sorts a planning error into "refused by the read-only rules" or a query error.
    fn refused_or_query(error: datafusion::error::DataFusionError) -> Self {
        let text = error.to_string();
        if text.contains("not supported")
            && (text.contains("DDL") || text.contains("DML") || text.contains("Statement"))
        {
            Self::ReadOnly(text)
        } else {
            Self::Query(error)
        }
    }

    /// Whether memory or time limits stopped the query.
    pub fn is_limit(&self) -> bool {
        match self {
            Self::Limit(_) => true,
            Self::Query(e) => e.to_string().contains("Resources exhausted"),
            _ => false,
        }
    }
}
