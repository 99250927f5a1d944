//! The DataFusion session: one place that sets partitions, batch size,
//! Parquet pruning and the memory limit for every query the warehouse runs,
//! and registers a snapshot's tables.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::context::SessionContext;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig};

use crate::WarehouseError;
use crate::snapshot::{Manifest, Warehouse};

/// Builds a session for warehouse queries: Parquet predicate and page-index
/// pruning on, information schema on (for the analyst console), `target_partitions`
/// set from the machine's cores unless given, memory capped at `memory_limit` bytes when given.
pub fn new_session(target_partitions: Option<usize>) -> SessionContext {
    session_with_limit(target_partitions, None).unwrap_or_else(|_| SessionContext::new())
}

/// The session settings every engine shares: information schema, Parquet
/// row-group and page-index pruning, `target_partitions`. Filters are not pushed
/// into the Parquet decoder (`pushdown_filters` off): the KPI filters keep most
/// rows, and late materialisation made the 10-million-case benchmark queries
/// 10–30% slower (`bench/warehouse.sh`). A filter the planner cannot
/// estimate is taken to keep every row (`default_filter_selectivity` 100, not
/// DataFusion's 20%): KPI filters keep most cases, and at 20% the planner
/// built the satisfaction join's hash table on the 9 million in-scope cases
/// instead of the 3 million evaluations (910 MiB against 410 MiB at 10
/// million cases). These three settings give way to
/// `DATAFUSION_EXECUTION_PARQUET_ENABLE_PAGE_INDEX`,
/// `DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS` and
/// `DATAFUSION_OPTIMIZER_DEFAULT_FILTER_SELECTIVITY` when those are set, so
/// the benchmark can try them without a rebuild.
fn base_config(target_partitions: Option<usize>) -> SessionConfig {
    // DataFusion's own `DATAFUSION_*` variables (batch size, partitions, …) tune
    // the engine without a rebuild; the settings below are the warehouse's own.
    let mut config = SessionConfig::from_env()
        .unwrap_or_else(|_| SessionConfig::new())
        .with_information_schema(true)
        .with_parquet_pruning(true);
    if let Some(partitions) = target_partitions {
        config = config.with_target_partitions(partitions.max(1));
    }
    let set = |name: &str| std::env::var_os(name).is_some();
    if !set("DATAFUSION_EXECUTION_PARQUET_ENABLE_PAGE_INDEX") {
        config.options_mut().execution.parquet.enable_page_index = true;
    }
    if !set("DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS") {
        config.options_mut().execution.parquet.pushdown_filters = false;
    }
    if !set("DATAFUSION_OPTIMIZER_DEFAULT_FILTER_SELECTIVITY") {
        config.options_mut().optimizer.default_filter_selectivity = 100;
    }
    config
}

/// Where queries run: `local` (this process, the default), `standalone` (an
/// in-process Ballista scheduler and executor, for tests), or a Ballista
/// scheduler's `df://host:port`. The last two need a build with the
/// `ballista` feature; the same SQL and KPI definitions run on each.
pub async fn engine_session(engine: &str, memory_limit: Option<usize>) -> Result<SessionContext, WarehouseError> {
    match engine {
        "" | "local" => session_with_limit(None, memory_limit),
        "standalone" => ballista_session(None).await,
        url if url.starts_with("df://") => ballista_session(Some(url)).await,
        other => Err(WarehouseError::BadRequest(format!(
            "engine {other:?}: expected local, standalone or a Ballista scheduler's df://host:port"
        ))),
    }
}

#[cfg(feature = "ballista")]
async fn ballista_session(scheduler: Option<&str>) -> Result<SessionContext, WarehouseError> {
    use ballista::prelude::SessionContextExt as _;
    use datafusion::execution::session_state::SessionStateBuilder;
    let config = ballista_config(false);
    let state = SessionStateBuilder::new().with_config(config).with_default_features().build();
    let url = match scheduler {
        Some(url) => url.to_owned(),
        // Standalone: a scheduler and an executor in this process, whose
        // address is then known (to cancel jobs with), as a cluster's is.
        None => {
            let address = ballista_scheduler::standalone::new_standalone_scheduler_from_state(&state)
                .await
                .map_err(|e| WarehouseError::Query(datafusion::error::DataFusionError::External(Box::new(e))))?;
            let url = format!("http://localhost:{}", address.port());
            // It answers once its server task runs (within 10 s).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let client = loop {
                use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
                match SchedulerGrpcClient::connect(url.clone()).await {
                    Ok(client) => break client,
                    Err(e) if std::time::Instant::now() > deadline => {
                        return Err(WarehouseError::Query(datafusion::error::DataFusionError::External(Box::new(e))));
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            };
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            ballista_executor::new_standalone_executor_from_state(client, cores, &state)
                .await
                .map_err(|e| WarehouseError::Query(datafusion::error::DataFusionError::External(Box::new(e))))?;
            format!("df://localhost:{}", address.port())
        }
    };
    let ctx = SessionContext::remote_with_state(&url, state).await?;
    // Every distributed query pins its snapshot and cancels its job when dropped (`crate::cluster`).
    let state = ctx.state();
    let scheduler_url = scheduler_http_url(&url);
    let guarded = crate::cluster::GuardedPlanner::new(state.query_planner().clone(), scheduler_url);
    let ctx = SessionContext::new_with_state(
        SessionStateBuilder::new_from_existing(state).with_query_planner(Arc::new(guarded)).build(),
    );
    // Its plans go to the scheduler, whose codec knows Parquet tables and not the local wrapper.
    ctx.state_ref().write().config_mut().set_extension(Arc::new(crate::present::Distributed));
    Ok(ctx)
}

/// The settings of every Ballista session: the local engine's, the client
/// polling its job, and Ballista's adaptive planner as `adaptive` says (off in
/// every session of ours; on only to reproduce what it does, in a test).
#[cfg(feature = "ballista")]
pub fn ballista_config(adaptive: bool) -> SessionConfig {
    use ballista::prelude::SessionConfigExt as _;
    // The local engine's settings, Parquet filter pushdown off included: the
    // satisfaction KPI no longer joins, and the analysts' join of evaluations
    // with cases runs with it off too (the Ballista test asks both).
    // The client polls the job's status (pull): it learns the job's id as soon
    // as the scheduler accepts it, and so can cancel it (`crate::cluster`);
    // pushed status names the job only at its first change of state.
    // Ballista 55's adaptive planner is off: with it, the durations' window
    // query came back as sorted runs one after another, not in the order its
    // SQL asks (reproduced by the ignored test
    // `ballista_adaptive_planner_returns_window_rows_out_of_order`; docs/ballista.md).
    base_config(None)
        .upgrade_for_ballista()
        .set_bool(ballista_core::config::BALLISTA_CLIENT_PULL, true)
        .set_bool(ballista_core::config::BALLISTA_ADAPTIVE_PLANNER_ENABLED, adaptive)
}

/// The scheduler's gRPC address of an engine `df://host[:port][/…]`, as
/// Ballista reads it (port 50050 when none is given): `http://host:port`.
#[cfg(feature = "ballista")]
fn scheduler_http_url(engine: &str) -> String {
    let rest = engine.strip_prefix("df://").unwrap_or(engine);
    let authority = rest.split('/').next().unwrap_or(rest);
    let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.ends_with(':') && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
    }) && !authority.ends_with(']');
    if has_port { format!("http://{authority}") } else { format!("http://{authority}:50050") }
}

#[cfg(not(feature = "ballista"))]
async fn ballista_session(_scheduler: Option<&str>) -> Result<SessionContext, WarehouseError> {
    Err(WarehouseError::BadRequest(
        "this build has no Ballista engine: build with `cargo build --release -p wangban --features ballista`".into(),
    ))
}

/// The longest a query of a session may run on a Ballista cluster: then it
/// fails, naming the limit, and its job is cancelled (`crate::cluster`), so
/// that no reader waits forever on a job the cluster never finishes. Set on a
/// session's config as an extension; [`CLUSTER_DEADLINE`] when not set. The
/// analysts' console sets its own time limit here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryDeadline(pub std::time::Duration);

/// The deadline of a distributed query whose session sets none (the pages,
/// the KPI API, reports): ten minutes.
pub const CLUSTER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// [`new_session`] with a memory pool of `memory_limit` bytes (queries that need more fail).
pub fn session_with_limit(
    target_partitions: Option<usize>,
    memory_limit: Option<usize>,
) -> Result<SessionContext, WarehouseError> {
    let config = base_config(target_partitions);
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = memory_limit {
        runtime = runtime.with_memory_limit(limit, 1.0);
    }
    let runtime = Arc::new(runtime.build()?);
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// The memory every analyst query of a process shares: one pool of `bytes`,
/// so that however many analysts run queries at once, their operators
/// together hold at most that much (each query that needs more fails with
/// "resources exhausted"; the pool names its largest consumers).
pub fn console_pool(bytes: usize) -> Arc<dyn MemoryPool> {
    let top = std::num::NonZeroUsize::new(3).unwrap_or(std::num::NonZeroUsize::MIN);
    Arc::new(TrackConsumersPool::new(GreedyMemoryPool::new(bytes), top))
}

/// A session for an analyst's query: memory from the shared `pool`
/// ([`console_pool`]), and nothing spilled to disk, so that a query that
/// outgrows the pool stops at once with "resources exhausted" rather than
/// spilling until its time limit (an analyst's question that needs more is
/// asked another way, or of the rollup).
pub fn console_session(pool: Arc<dyn MemoryPool>) -> Result<SessionContext, WarehouseError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(pool)
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
        .build()?;
    Ok(SessionContext::new_with_config_rt(base_config(None), Arc::new(runtime)))
}

/// An empty `cases` table with its columns and the `month` partition (an empty store's).
pub(crate) fn empty_cases() -> Result<Arc<datafusion::datasource::MemTable>, WarehouseError> {
    let mut fields: Vec<Field> = crate::export::cases_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("month", DataType::Utf8, false));
    Ok(Arc::new(datafusion::datasource::MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]])?))
}

/// The read options of a table written per month (`DIR/month=YYYY-MM/…`): `month` a partition column.
pub(crate) fn by_month() -> ParquetReadOptions<'static> {
    ParquetReadOptions::default().table_partition_cols(vec![("month".to_owned(), DataType::Utf8)])
}

/// The rollup table's name in a session (see `export::ROLLUP_SQL`).
pub const ROLLUP_TABLE: &str = "case_counts";

/// Registers the current snapshot's tables on `ctx`: `cases`, `qc_findings`
/// and `evaluations` partitioned by the case's `month`, `seizures`,
/// `anomalies`, and the rollups `case_counts`, `open_due`, `duration_counts`,
/// `evaluation_counts` and `qc_counts`, partitioned by `month`, when the
/// snapshot has them for every month. A snapshot of an older layout is
/// refused with the command that writes the current one.
pub async fn register_snapshot(ctx: &SessionContext, root: &Path) -> Result<Manifest, WarehouseError> {
    let warehouse = Warehouse::open(root)?;
    let manifest = warehouse.current()?.ok_or_else(|| {
        WarehouseError::NoSnapshot(format!("{} has no snapshot yet: run `wangban warehouse refresh`", root.display()))
    })?;
    register_manifest(ctx, &warehouse, manifest).await
}

/// [`register_snapshot`] without the rollup rewrite ([`crate::rollup`]):
/// every aggregate over `cases` reads `cases` (to hold the rewrite to the
/// answers it replaces).
pub async fn register_snapshot_without_rollup_rewrite(
    ctx: &SessionContext,
    root: &Path,
) -> Result<Manifest, WarehouseError> {
    let warehouse = Warehouse::open(root)?;
    let manifest = warehouse.current()?.ok_or_else(|| {
        WarehouseError::NoSnapshot(format!("{} has no snapshot yet: run `wangban warehouse refresh`", root.display()))
    })?;
    register_tables(ctx, &warehouse, manifest, false).await
}

/// Registers the tables of the snapshot `manifest` describes (as
/// [`register_snapshot`] does the current one's), with the rollup rewrite
/// when the snapshot has its rollups.
pub async fn register_manifest(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    manifest: Manifest,
) -> Result<Manifest, WarehouseError> {
    register_tables(ctx, warehouse, manifest, true).await
}

async fn register_tables(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    manifest: Manifest,
    rollup_rewrite: bool,
) -> Result<Manifest, WarehouseError> {
    let dir = warehouse.snapshot_dir(&manifest.snapshot_id);
    // Where the tables are, for a distributed query to pin (`crate::cluster`).
    #[cfg(feature = "ballista")]
    ctx.state_ref().write().config_mut().set_extension(Arc::new(crate::cluster::SnapshotOnDisk {
        root: warehouse.root().to_owned(),
        id: manifest.snapshot_id.clone(),
    }));
    if manifest.layout < crate::snapshot::LAYOUT {
        return Err(WarehouseError::NoSnapshot(format!(
            "snapshot {} was written in an older layout (evaluations and QC findings without their case's \
             dimensions): run `wangban warehouse refresh` to write the current one",
            manifest.snapshot_id
        )));
    }
    let cases = dir.join("cases");
    if manifest.cases.is_empty() {
        // An empty store: an empty table with the right columns.
        ctx.register_table("cases", empty_cases()?)?;
    } else {
        register_with_plain_case_no(ctx, "cases", &cases, by_month()).await?;
        must_be_present(ctx, "cases", &cases).await?;
    }
    // The rollups the analysts' aggregates may be answered from (`crate::rollup`).
    let mut answering = Vec::new();
    if manifest.has_rollups() {
        let rollups = dir.join("rollups").join("case_counts");
        ctx.register_parquet(ROLLUP_TABLE, rollups.to_string_lossy().as_ref(), by_month()).await?;
        must_be_present(ctx, ROLLUP_TABLE, &rollups).await?;
        answering.push(crate::rollup::ROLLUPS[0]);
    }
    if manifest.has_layout() {
        for table in ["open_due", "duration_counts", "evaluation_counts", "qc_counts"] {
            let path = dir.join("rollups").join(table);
            ctx.register_parquet(table, path.to_string_lossy().as_ref(), by_month()).await?;
            must_be_present(ctx, table, &path).await?;
        }
        // A child rollup leaves out the rows whose case is unknown: it answers
        // for its table only when there are none.
        for spec in &crate::rollup::ROLLUPS[1..] {
            let unmatched = manifest.month_entry(spec.table, crate::snapshot::UNMATCHED).map_or(0, |e| e.rows);
            if unmatched == 0 {
                answering.push(*spec);
            }
        }
    }
    if rollup_rewrite && !answering.is_empty() {
        let mut rollups = Vec::with_capacity(answering.len());
        for spec in answering {
            rollups.push((spec, ctx.table_provider(spec.rollup).await?));
        }
        ctx.add_analyzer_rule(Arc::new(crate::rollup::RollupRewrite::new(rollups)));
    }
    // Each row with its case's dimensions, per case month (`unmatched`: rows whose case is unknown).
    for table in ["qc_findings", "evaluations"] {
        register_with_plain_case_no(ctx, table, &dir.join(table), by_month()).await?;
        must_be_present(ctx, table, &dir.join(table)).await?;
    }
    for table in ["seizures", "anomalies"] {
        let path = dir.join(table);
        ctx.register_parquet(table, path.to_string_lossy().as_ref(), ParquetReadOptions::default()).await?;
        must_be_present(ctx, table, &path).await?;
    }
    Ok(manifest)
}

/// Wraps `table`, read from `dir`, so that a scan after its files are gone
/// fails instead of reading nothing ([`crate::present`]); not in a Ballista session.
async fn must_be_present(ctx: &SessionContext, table: &str, dir: &Path) -> Result<(), WarehouseError> {
    if ctx.state().config().get_extension::<crate::present::Distributed>().is_some() {
        return Ok(());
    }
    let provider = ctx.table_provider(table).await?;
    ctx.deregister_table(table)?;
    ctx.register_table(table, Arc::new(crate::present::Present::new(provider, dir.to_owned())))?;
    Ok(())
}

/// Registers a Parquet table whose `case_no` is read as plain `Utf8` while its
/// other strings keep the session's type (`Utf8View` by default, the faster
/// one to group and compare). `case_no` is the join key of the satisfaction
/// and QC KPIs: a view array that a filter keeps a fifth of still holds all of
/// its page's bytes, so a hash join's build side of views held about five
/// times the case numbers it needed (350 MB for 1.7 million cases at 10
/// million rows); cast at the scan, the kept values are copied compactly.
async fn register_with_plain_case_no(
    ctx: &SessionContext,
    table: &str,
    path: &Path,
    options: ParquetReadOptions<'_>,
) -> Result<(), WarehouseError> {
    let location = path.to_string_lossy();
    let partition_columns: Vec<String> = options.table_partition_cols.iter().map(|(name, _)| name.clone()).collect();
    ctx.register_parquet(table, location.as_ref(), options.clone()).await?;
    let inferred = ctx.table_provider(table).await?.schema();
    let needs_cast = inferred.field_with_name("case_no").is_ok_and(|f| f.data_type() != &DataType::Utf8);
    if !needs_cast {
        return Ok(());
    }
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .filter(|f| !partition_columns.contains(f.name()))
        .map(|f| match f.name().as_str() {
            "case_no" => Field::new("case_no", DataType::Utf8, f.is_nullable()),
            _ => f.as_ref().clone(),
        })
        .collect();
    let schema = Schema::new(fields);
    ctx.deregister_table(table)?;
    ctx.register_parquet(table, location.as_ref(), options.schema(&schema)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int64Array;

    use super::*;

    #[cfg(feature = "ballista")]
    #[test]
    fn a_scheduler_is_reached_at_its_port_or_ballistas_default() {
        assert_eq!(scheduler_http_url("df://sched.internal:50060"), "http://sched.internal:50060");
        assert_eq!(scheduler_http_url("df://sched.internal"), "http://sched.internal:50050");
        assert_eq!(scheduler_http_url("df://10.0.0.1:50050/"), "http://10.0.0.1:50050");
        assert_eq!(scheduler_http_url("df://[::1]:50051"), "http://[::1]:50051");
        assert_eq!(scheduler_http_url("df://[::1]"), "http://[::1]:50050");
    }

    #[tokio::test]
    async fn the_session_runs_sql() {
        let ctx = new_session(Some(2));
        let batches = ctx.sql("SELECT 40 + 2 AS answer").await.expect("plan").collect().await.expect("run");
        let column = batches[0].column(0).as_any().downcast_ref::<Int64Array>().expect("int64");
        assert_eq!(column.value(0), 42);
        assert_eq!(ctx.state().config().target_partitions(), 2);
    }
}
