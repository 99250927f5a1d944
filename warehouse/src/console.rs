//! The analyst's SQL console: read-only SQL over the current snapshot.
//! DDL, DML and statements (`SET`, `CREATE`, `COPY` …) are refused before
//! planning; each query runs under a memory pool and a time limit, and its
//! answer is cut at a row limit (and says so). `EXPLAIN` and
//! `EXPLAIN ANALYZE` are allowed.

use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::execution::context::{SQLOptions, SessionContext};
use futures_util::StreamExt as _;

use crate::WarehouseError;

/// Limits of one console query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rows returned at most.
    pub max_rows: usize,
    /// Wall time at most.
    pub timeout: Duration,
    /// Memory pool in bytes (set on the session).
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_rows: 10_000, timeout: Duration::from_secs(30), memory_bytes: 512 * 1024 * 1024 }
    }
}

/// A console answer.
#[derive(Debug, Clone)]
pub struct ConsoleResult {
    /// The rows, at most `max_rows`.
    pub batches: Vec<RecordBatch>,
    /// Rows returned.
    pub rows: usize,
    /// Whether rows were left out at the limit.
    pub truncated: bool,
    /// How long it took.
    pub elapsed: Duration,
}

/// The options that make SQL read-only.
pub fn read_only() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

/// Runs `sql` read-only under `limits` on `ctx` (a session over a snapshot,
/// made with [`crate::session::session_with_limit`]).
pub async fn query(ctx: &SessionContext, sql: &str, limits: Limits) -> Result<ConsoleResult, WarehouseError> {
    let started = Instant::now();
    // On a cluster, its job ends at the same limit (and beyond the default deadline when longer).
    ctx.state_ref()
        .write()
        .config_mut()
        .set_extension(std::sync::Arc::new(crate::session::QueryDeadline(limits.timeout)));
    let work = async {
        let frame = ctx.sql_with_options(sql, read_only()).await.map_err(WarehouseError::refused_or_query)?;
        let mut stream = frame.execute_stream().await?;
        let mut batches = Vec::new();
        let mut rows = 0;
        let mut truncated = false;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let room = limits.max_rows - rows;
            if batch.num_rows() > room {
                batches.push(batch.slice(0, room));
                rows += room;
                truncated = true;
                break;
            }
            rows += batch.num_rows();
            batches.push(batch);
            if rows == limits.max_rows {
                truncated = stream.next().await.is_some();
                break;
            }
        }
        Ok::<_, WarehouseError>((batches, rows, truncated))
    };
    let (batches, rows, truncated) = tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| WarehouseError::Limit(format!("the query ran past its time limit of {:?}", limits.timeout)))?
        .map_err(|e| match e {
            WarehouseError::Query(_) if e.is_limit() => WarehouseError::Limit(exhausted(limits.memory_bytes >> 20, &e)),
            other => other,
        })?;
    Ok(ConsoleResult { batches, rows, truncated, elapsed: started.elapsed() })
}

/// What every analysts' surface (the console, the API, `wangban sql`, the
/// PostgreSQL front end) says when a query outgrows the shared pool of
/// `memory_mb`: the pool, what to narrow, and the engine's own words last.
pub fn exhausted(memory_mb: usize, detail: &dyn std::fmt::Display) -> String {
    format!(
        "resources exhausted: the query needs more memory than the {memory_mb} MiB all analysts' queries share; \
         narrow it (a month, a district) or count from case_counts ({detail})"
    )
}

/// Output formats of query answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// A JSON array of objects.
    Json,
    /// CSV with a header line.
    Csv,
    /// Arrow IPC stream.
    Arrow,
}

/// Renders batches in `format`.
pub fn render(batches: &[RecordBatch], format: Format) -> Result<Vec<u8>, WarehouseError> {
    match format {
        Format::Table => Ok(datafusion::arrow::util::pretty::pretty_format_batches(batches)?.to_string().into_bytes()),
        Format::Json => {
            let rows = crate::kpi::batches_to_rows(batches);
            serde_json::to_vec(&rows).map_err(|e| WarehouseError::Corrupt(e.to_string()))
        }
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut writer = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
                for batch in batches {
                    writer.write(batch)?;
                }
            }
            Ok(out)
        }
        Format::Arrow => {
            let mut out = Vec::new();
            if let Some(first) = batches.first() {
                let mut writer = datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut out, &first.schema())?;
                for batch in batches {
                    writer.write(batch)?;
                }
                writer.finish()?;
            }
            Ok(out)
        }
    }
}
