//! One DataFusion session per warehouse snapshot, shared by every request, and
//! KPI results kept for as long as their snapshot is current.
//!
//! A snapshot never changes once published (a refresh publishes a new one),
//! so a result computed on it stays true until `CURRENT` moves; each lookup
//! reads the `CURRENT` pointer (one small file) and starts afresh when it
//! moved. Results are computed "as of" the snapshot's creation time rather
//! than the request's clock: the data is as of then, and the answer is then
//! the same for every request on the snapshot.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;

use crate::WarehouseError;
use crate::kpi::{self, Kpi, KpiRequest, KpiResult};
use crate::session::{engine_session, register_snapshot};
use crate::snapshot::Manifest;

/// Results kept per snapshot before the oldest are dropped (all at once: a
/// dashboard's working set is a few dozen queries).
const MAX_RESULTS: usize = 4096;

/// Largest query answer [`OpenSnapshot::query`] keeps (case lists stop at 500).
pub const MAX_CACHED_ROWS: usize = 1000;

/// The shared state: the current snapshot's session, once opened.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    current: tokio::sync::Mutex<Option<Arc<OpenSnapshot>>>,
}

/// A snapshot with its registered session and the KPI results computed on it.
pub struct OpenSnapshot {
    /// Its manifest.
    pub manifest: Manifest,
    /// A session with its tables registered; clone it to run SQL.
    pub ctx: SessionContext,
    as_of: DateTime<Utc>,
    results: Mutex<HashMap<(Kpi, kpi::KpiQuery), Arc<KpiResult>>>,
    tables: Mutex<HashMap<String, Arc<Vec<RecordBatch>>>>,
}

impl std::fmt::Debug for OpenSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSnapshot").field("snapshot_id", &self.manifest.snapshot_id).finish_non_exhaustive()
    }
}

impl SnapshotCache {
    /// The current snapshot under `root`, opened on `engine`
    /// ([`engine_session`]) with a memory pool of `memory_bytes` the first
    /// time it is asked for.
    pub async fn current(
        &self,
        root: &Path,
        memory_bytes: usize,
        engine: &str,
    ) -> Result<Arc<OpenSnapshot>, WarehouseError> {
        let pointer = crate::snapshot::current_id(root)?;
        let mut current = self.current.lock().await;
        if let (Some(open), Some(id)) = (current.as_ref(), pointer.as_ref())
            && &open.manifest.snapshot_id == id
        {
            return Ok(open.clone());
        }
        let ctx = engine_session(engine, Some(memory_bytes)).await?;
        let manifest = register_snapshot(&ctx, root).await?;
        let open = Arc::new(OpenSnapshot::with(manifest, ctx)?);
        *current = Some(open.clone());
        Ok(open)
    }

    /// Snapshot `id` under `root`: the current one's shared session when it
    /// is current, else a session of its own (a kept report's snapshot).
    pub async fn at(
        &self,
        root: &Path,
        id: &str,
        memory_bytes: usize,
        engine: &str,
    ) -> Result<Arc<OpenSnapshot>, WarehouseError> {
        let current = self.current(root, memory_bytes, engine).await?;
        if current.manifest.snapshot_id == id {
            return Ok(current);
        }
        let warehouse = crate::snapshot::Warehouse::open(root)?;
        let manifest = warehouse.manifest(id)?;
        let ctx = engine_session(engine, Some(memory_bytes)).await?;
        let manifest = crate::session::register_manifest(&ctx, &warehouse, manifest).await?;
        Ok(Arc::new(OpenSnapshot::with(manifest, ctx)?))
    }
}

impl OpenSnapshot {
    fn with(manifest: Manifest, ctx: SessionContext) -> Result<OpenSnapshot, WarehouseError> {
        let as_of = manifest.created()?;
        Ok(OpenSnapshot { manifest, ctx, as_of, results: Mutex::default(), tables: Mutex::default() })
    }

    /// When the snapshot was made: the "as of" of every result on it.
    pub fn as_of(&self) -> DateTime<Utc> {
        self.as_of
    }

    /// A KPI on this snapshot, computed once per distinct query; as of the
    /// snapshot's time unless the request asks for an earlier one
    /// ([`kpi::as_of`]).
    pub async fn kpi(&self, kpi: Kpi, request: &KpiRequest) -> Result<Arc<KpiResult>, WarehouseError> {
        let query = request.on(self.as_of)?;
        let key = (kpi, query);
        if let Some(hit) = self.results.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(hit.clone());
        }
        // Two requests missing at once both compute; the second insert wins. Rare, and harmless.
        let result = Arc::new(kpi::run(&self.ctx, kpi, &key.1).await?);
        let mut results = self.results.lock().map_err(|_| poisoned())?;
        if results.len() >= MAX_RESULTS {
            results.clear();
        }
        results.insert(key, result.clone());
        Ok(result)
    }

    /// The rows of a query on this snapshot, kept when small (at most
    /// [`MAX_CACHED_ROWS`] rows): the same drill-down opened again is answered
    /// from memory. The SQL is the key, so it must be built deterministically.
    pub async fn query(&self, sql: &str) -> Result<Arc<Vec<RecordBatch>>, WarehouseError> {
        if let Some(hit) = self.tables.lock().map_err(|_| poisoned())?.get(sql) {
            return Ok(hit.clone());
        }
        let batches = Arc::new(self.ctx.sql(sql).await?.collect().await?);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows <= MAX_CACHED_ROWS {
            let mut tables = self.tables.lock().map_err(|_| poisoned())?;
            if tables.len() >= MAX_RESULTS {
                tables.clear();
            }
            tables.insert(sql.to_owned(), batches.clone());
        }
        Ok(batches)
    }

    /// The month-by-month reconciliation of `delivered` with the online rate
    /// on this snapshot, through the cached KPI results.
    pub async fn reconcile_cases(
        &self,
        delivered: &crate::reconcile::Delivered,
    ) -> Result<Vec<crate::reconcile::MonthCheck>, WarehouseError> {
        let months = self.query(crate::reconcile::SNAPSHOT_MONTHS_SQL).await?;
        crate::reconcile::reconcile_months(delivered, &months, |query| async move {
            Ok(self.kpi(Kpi::OnlineRate, &query).await?.counted_and_excluded())
        })
        .await
    }

    /// How many results are kept.
    pub fn cached_results(&self) -> usize {
        self.results.lock().map(|r| r.len()).unwrap_or(0)
    }
}

fn poisoned() -> WarehouseError {
    WarehouseError::Corrupt("the KPI cache lock was poisoned by a panic".into())
}
