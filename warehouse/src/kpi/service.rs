//! The one way a KPI figure is read: the pages, `/api/kpi`, `wangban kpi`
//! and reports all ask [`KpiService`], so one snapshot and one period give
//! one number everywhere.
//!
//! The rule for `as_of`: an answer is as of its snapshot's time (when its
//! data was exported), unless an earlier time is asked for; a later one is
//! refused, since the data does not reach it. The pages never ask, so a page,
//! the API and the CLI agree for the same snapshot and period.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use chrono::NaiveDate;

use super::{Dim, Kpi, KpiQuery, KpiResult};
use crate::WarehouseError;
use crate::cache::{OpenSnapshot, SnapshotCache};
use datafusion::execution::context::SessionContext;
use datafusion::execution::memory_pool::MemoryPool;

/// KPIs over the warehouse's current snapshot, computed once per snapshot
/// and query. Cheap to clone: clones share the open snapshot and its results.
#[derive(Debug, Clone)]
pub struct KpiService {
    root: PathBuf,
    memory_bytes: usize,
    cache: Arc<SnapshotCache>,
    /// Where queries run: `local`, or a Ballista scheduler's `df://host:port`
    /// ([`crate::session::engine_session`]).
    engine: String,
    /// The pool every analyst query shares (`session::console_pool`).
    console_pool: Arc<dyn MemoryPool>,
}

/// A KPI answer and the snapshot it was computed on.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The snapshot's id.
    pub snapshot_id: String,
    /// The figures.
    pub result: Arc<KpiResult>,
}

impl Answer {
    /// The JSON of the API and the CLI: the result's, with the snapshot id.
    pub fn to_json(&self) -> Value {
        let mut value = self.result.to_json();
        if let Some(object) = value.as_object_mut() {
            object.insert("snapshot_id".into(), Value::from(self.snapshot_id.clone()));
        }
        value
    }
}

impl KpiService {
    /// The service over the warehouse at `root`, each snapshot's session with
    /// a memory pool of `memory_bytes`.
    pub fn new(root: impl Into<PathBuf>, memory_bytes: usize) -> KpiService {
        let console_pool = crate::session::console_pool(memory_bytes);
        KpiService { root: root.into(), memory_bytes, cache: Arc::default(), engine: "local".into(), console_pool }
    }

    /// The same service with every query (KPIs, pages, reports, analysts')
    /// run on `engine`: `local`, or a Ballista scheduler's `df://host:port`.
    pub fn with_engine(mut self, engine: impl Into<String>) -> KpiService {
        self.engine = engine.into();
        self
    }

    /// Where queries run (`local` or `df://host:port`).
    pub fn engine(&self) -> &str {
        &self.engine
    }

    fn is_local(&self) -> bool {
        matches!(self.engine.as_str(), "" | "local")
    }

    /// The warehouse directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The memory pool of a session, bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// A session over the current snapshot for an analyst's query (the SQL
    /// console and API): its memory from the one pool all analyst queries
    /// share, nothing spilled (`session::console_session`); never the pages'
    /// session, so a runaway query cannot take the pages' memory.
    pub async fn console_session(&self) -> Result<SessionContext, WarehouseError> {
        Ok(self.console_session_of_snapshot().await?.0)
    }

    /// [`KpiService::console_session`] and the id of the snapshot its tables are.
    /// On a cluster the executors' pools bound the query instead.
    pub async fn console_session_of_snapshot(&self) -> Result<(SessionContext, String), WarehouseError> {
        let ctx = if self.is_local() {
            crate::session::console_session(self.console_pool.clone())?
        } else {
            crate::session::engine_session(&self.engine, Some(self.memory_bytes)).await?
        };
        let manifest = crate::session::register_snapshot(&ctx, &self.root).await?;
        Ok((ctx, manifest.snapshot_id))
    }

    /// Bytes analysts' queries hold in their shared pool now.
    pub fn console_reserved(&self) -> usize {
        self.console_pool.reserved()
    }

    /// The current snapshot, opened once and shared.
    pub async fn snapshot(&self) -> Result<Arc<OpenSnapshot>, WarehouseError> {
        self.cache.current(&self.root, self.memory_bytes, &self.engine).await
    }

    /// Snapshot `id`: the current one, or an older one still kept (pinned by
    /// a report); one no longer kept is [`WarehouseError::NoSnapshot`].
    pub async fn at(&self, id: &str) -> Result<Arc<OpenSnapshot>, WarehouseError> {
        self.cache.at(&self.root, id, self.memory_bytes, &self.engine).await
    }

    /// `kpi` for `request` on the current snapshot, as of the module's rule.
    pub async fn kpi(&self, kpi: Kpi, request: &KpiRequest) -> Result<Answer, WarehouseError> {
        let snapshot = self.snapshot().await?;
        let result = snapshot.kpi(kpi, request).await?;
        Ok(Answer { snapshot_id: snapshot.manifest.snapshot_id.clone(), result })
    }

    /// The online rate's gap analysis of `month` on the current snapshot
    /// ([`super::gap`]), with the snapshot's id and time.
    pub async fn online_rate_gap(&self, month: NaiveDate) -> Result<GapAnswer, WarehouseError> {
        let snapshot = self.snapshot().await?;
        let analysis = super::gap::online_rate_gap(&snapshot, month).await?;
        Ok(GapAnswer { snapshot_id: snapshot.manifest.snapshot_id.clone(), as_of: snapshot.as_of(), analysis })
    }
}

/// A gap analysis and the snapshot it was computed on.
#[derive(Debug, Clone)]
pub struct GapAnswer {
    /// The snapshot's id.
    pub snapshot_id: String,
    /// The snapshot's time.
    pub as_of: DateTime<Utc>,
    /// The analysis.
    pub analysis: super::gap::GapAnalysis,
}

impl GapAnswer {
    /// The JSON of `GET /api/kpi/online-rate/gap`.
    pub fn to_json(&self) -> Value {
        let mut value = self.analysis.to_json();
        if let Some(object) = value.as_object_mut() {
            object.insert("snapshot_id".into(), Value::from(self.snapshot_id.clone()));
            object.insert("as_of".into(), Value::from(self.as_of.to_rfc3339()));
        }
        value
    }
}

/// What a reader asks of a KPI: the period, the breakdown, the filters, and
/// optionally an `as_of` earlier than the snapshot's time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KpiRequest {
    /// First day (China time), inclusive.
    pub from: NaiveDate,
    /// Last day (China time), inclusive.
    pub to: NaiveDate,
    /// Dimensions to break down by.
    pub by: Vec<Dim>,
    /// Only cases whose dimension has this value.
    pub filters: Vec<(Dim, String)>,
    /// `None`: the snapshot's time (see the module documentation).
    pub as_of: Option<DateTime<Utc>>,
}

impl KpiRequest {
    /// The days `from..=to` broken down `by`, unfiltered, as of the snapshot.
    pub fn new(from: NaiveDate, to: NaiveDate, by: &[Dim]) -> KpiRequest {
        KpiRequest { from, to, by: by.to_vec(), filters: Vec::new(), as_of: None }
    }

    /// The same request with these filters.
    pub fn filtered(self, filters: Vec<(Dim, String)>) -> KpiRequest {
        KpiRequest { filters, ..self }
    }

    /// The query on a snapshot made at `snapshot_time`.
    pub fn on(&self, snapshot_time: DateTime<Utc>) -> Result<KpiQuery, WarehouseError> {
        Ok(KpiQuery {
            from: self.from,
            to: self.to,
            by: self.by.clone(),
            as_of: as_of(snapshot_time, self.as_of)?,
            filters: self.filters.clone(),
        })
    }
}

/// The `as_of` of an answer on a snapshot made at `snapshot_time` when
/// `asked` is asked for: the snapshot's time, or an earlier time asked for.
pub fn as_of(snapshot_time: DateTime<Utc>, asked: Option<DateTime<Utc>>) -> Result<DateTime<Utc>, WarehouseError> {
    match asked {
        None => Ok(snapshot_time),
        Some(t) if t <= snapshot_time => Ok(t),
        Some(t) => Err(WarehouseError::BadRequest(format!(
            "as_of {} is after the snapshot's time {}: the data does not reach it (omit as_of, or refresh the warehouse)",
            t.to_rfc3339(),
            snapshot_time.to_rfc3339()
        ))),
    }
}
