//! The warehouse on an Apache Ballista cluster: the scheduler and executor
//! processes (`wangban cluster scheduler`, `wangban cluster executor`), and
//! what every distributed query of a client does besides running (see
//! `docs/ballista.md`):
//!
//! - it **pins its snapshot** for as long as it runs (a [`ReaderPin`] named
//!   `query-HOST-PID-N` in the warehouse's `pins/`), so that refreshes during
//!   a long query never delete the files its executors read;
//! - it **cancels its job** on the scheduler when its answer is no longer
//!   read (a time limit passed, the client went away, the future was dropped),
//!   so that no job runs on for nobody;
//! - it **fails past its deadline** ([`crate::session::QueryDeadline`], ten
//!   minutes unless the session sets one; the console sets its time limit),
//!   its job cancelled, so that no reader waits forever on a job the cluster
//!   never finishes.
//!
//! All three come from [`GuardedPlanner`], which wraps the Ballista query
//! planner of every `df://` and `standalone` session
//! ([`crate::session::engine_session`]).
//!
//! Lost executors are noticed within [`LOST_EXECUTOR_NOTICED`]: executors
//! send a heartbeat every [`HEARTBEAT`], and the scheduler drops one it has
//! not heard from for [`EXECUTOR_TIMEOUT`], checking every [`EXPIRY_CHECK`];
//! its running tasks are then scheduled again on the executors left.

use std::future::Future as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::serde::protobuf::CancelJobParams;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::{QueryPlanner, TaskContext};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion_proto::protobuf::LogicalPlanNode;
use futures_util::Stream;

use crate::WarehouseError;
use crate::session::QueryDeadline;
use crate::snapshot::ReaderPin;

/// How often an executor tells the scheduler it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(3);
/// How long the scheduler waits for a heartbeat before it takes an executor for lost.
pub const EXECUTOR_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the scheduler looks for executors past [`EXECUTOR_TIMEOUT`].
pub const EXPIRY_CHECK: Duration = Duration::from_secs(4);
/// The longest a lost executor goes unnoticed: its last heartbeat, the
/// timeout, and one check.
pub const LOST_EXECUTOR_NOTICED: Duration = Duration::from_secs(14);

pub use crate::snapshot::{QUERY_PIN_PREFIX, host_name};

/// Where a session's tables are: set on the session by
/// [`crate::session::register_manifest`], read by [`GuardedPlanner`] to pin
/// the snapshot of each distributed query.
#[derive(Debug, Clone)]
pub struct SnapshotOnDisk {
    /// The warehouse directory.
    pub root: PathBuf,
    /// The snapshot's id.
    pub id: String,
}

/// The scheduler's settings (`wangban cluster scheduler`).
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to listen on (gRPC from clients and executors).
    pub bind: SocketAddr,
    /// The host name or address others reach it at.
    pub external_host: String,
}

/// Runs a Ballista scheduler until the process ends: pull scheduling
/// (executors ask for tasks, so only the scheduler's port must be reachable
/// from them), lost executors noticed within [`LOST_EXECUTOR_NOTICED`].
/// `listening` is told the bound address (port 0 picks one).
pub async fn run_scheduler(
    options: SchedulerOptions,
    listening: impl FnOnce(SocketAddr),
) -> Result<(), WarehouseError> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    use datafusion_proto::protobuf::PhysicalPlanNode;

    let listener = tokio::net::TcpListener::bind(options.bind).await?;
    let bound = listener.local_addr()?;
    let config = SchedulerConfig {
        bind_host: bound.ip().to_string(),
        bind_port: bound.port(),
        external_host: options.external_host,
        scheduling_policy: ballista_core::config::TaskSchedulingPolicy::PullStaged,
        executor_timeout_seconds: EXECUTOR_TIMEOUT.as_secs(),
        expire_dead_executor_interval_seconds: EXPIRY_CHECK.as_secs(),
        // A job submitted while no executor is alive fails after this long, not 180 s.
        no_executors_grace_period_seconds: EXECUTOR_TIMEOUT.as_secs(),
        ..SchedulerConfig::default()
    };
    config.validate().map_err(ballista)?;
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(ballista)?;
    let scheduler =
        ballista_scheduler::scheduler_process::create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
            .await
            .map_err(ballista)?;
    listening(bound);
    ballista_scheduler::scheduler_process::start_grpc_service_with_listener(listener, scheduler).await.map_err(ballista)
}

/// An executor's settings (`wangban cluster executor`).
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's host.
    pub scheduler_host: String,
    /// The scheduler's port.
    pub scheduler_port: u16,
    /// Address to listen on.
    pub bind_host: String,
    /// The host name or address other executors and clients fetch results from.
    pub external_host: String,
    /// Arrow Flight port: shuffle partitions and results are fetched here.
    pub flight_port: u16,
    /// gRPC port of the executor's own service.
    pub grpc_port: u16,
    /// Where shuffle files are written (removed by the scheduler's clean-up after each job).
    pub work_dir: PathBuf,
    /// The memory pool of all its tasks together, bytes (spilling beyond it).
    pub memory_bytes: u64,
    /// Tasks run at once; 0: one per core.
    pub concurrent_tasks: usize,
}

/// Runs a Ballista executor until the process ends or the scheduler stops
/// it: pull scheduling, a heartbeat every [`HEARTBEAT`], the memory pool and
/// work directory of `options`.
pub async fn run_executor(options: ExecutorOptions) -> Result<(), WarehouseError> {
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};

    std::fs::create_dir_all(&options.work_dir)?;
    let work_dir = options.work_dir.to_str().ok_or_else(|| {
        WarehouseError::BadRequest(format!("work directory {} is not UTF-8", options.work_dir.display()))
    })?;
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host,
        external_host: Some(options.external_host),
        port: options.flight_port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler_host,
        scheduler_port: options.scheduler_port,
        // Keep trying a scheduler that is not up yet (or restarting) for this long.
        scheduler_connect_timeout_seconds: 60,
        vcores: options.concurrent_tasks,
        task_scheduling_policy: ballista_core::config::TaskSchedulingPolicy::PullStaged,
        work_dir: Some(work_dir.to_owned()),
        executor_heartbeat_interval_seconds: HEARTBEAT.as_secs(),
        memory_pool_size: Some(options.memory_bytes),
        print_thread_info: false,
        // Shuffle files of jobs the scheduler never cleaned (it was restarted): gone after a day.
        job_data_ttl_seconds: 24 * 3600,
        job_data_clean_up_interval_seconds: 3600,
        override_execution_engine: Some(Arc::new(WithoutOperatorMetrics::new())),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config)).await.map_err(ballista)
}

/// Ballista's execution engine, with the tasks' operator metrics left out of
/// their status reports. Ballista 55's scheduler refuses a task's status when
/// its metrics do not line up with its stage's, as happens to a stage with a
/// `UNION ALL` of unlike branches (the online rate of whole months from the
/// rollup beside the current month from `cases`, when that month has no
/// files yet: "task metrics array size 9 does not equal with the stage
/// metrics array size 8"). The task's completion is then lost and its job
/// runs forever. Without metrics the report is taken; what is lost is the
/// per-operator figures of a distributed `EXPLAIN ANALYZE`.
struct WithoutOperatorMetrics {
    inner: ballista_executor::execution_engine::DefaultExecutionEngine,
}

impl std::fmt::Debug for WithoutOperatorMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WithoutOperatorMetrics")
    }
}

impl WithoutOperatorMetrics {
    /// Ballista's engine without its pool of Flight clients (the pool's type
    /// is private to the crate): each shuffle fetch connects anew.
    fn new() -> WithoutOperatorMetrics {
        WithoutOperatorMetrics { inner: ballista_executor::execution_engine::DefaultExecutionEngine::new() }
    }
}

impl ballista_executor::execution_engine::ExecutionEngine for WithoutOperatorMetrics {
    fn create_query_stage_exec(
        &self,
        job_id: ballista_core::JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &datafusion::prelude::SessionConfig,
    ) -> Result<Arc<dyn ballista_executor::execution_engine::QueryStageExecutor>> {
        let stage = self.inner.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(StageWithoutMetrics(stage)))
    }
}

#[derive(Debug)]
struct StageWithoutMetrics(Arc<dyn ballista_executor::execution_engine::QueryStageExecutor>);

impl std::fmt::Display for StageWithoutMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait]
impl ballista_executor::execution_engine::QueryStageExecutor for StageWithoutMetrics {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> Result<Vec<ballista_core::serde::protobuf::ShuffleWritePartition>> {
        self.0.execute_query_stage(task_id, context).await
    }

    fn collect_plan_metrics(&self) -> Vec<datafusion::physical_plan::metrics::MetricsSet> {
        Vec::new()
    }

    fn collect_runtime_stats_reports(&self) -> Vec<ballista_core::serde::protobuf::RuntimeStatsReport> {
        self.0.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(&self) -> Result<Vec<ballista_core::serde::protobuf::WindowStateReport>> {
        self.0.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<ballista_core::serde::protobuf::TaskColumnStats> {
        self.0.collect_column_stats()
    }
}

fn ballista(e: ballista_core::error::BallistaError) -> WarehouseError {
    WarehouseError::Query(DataFusionError::External(Box::new(e)))
}

/// Wraps Ballista's query planner: each distributed query becomes a
/// [`GuardedExec`], which pins the session's snapshot while it runs and
/// cancels its job when its answer is dropped unread.
#[derive(Debug)]
pub struct GuardedPlanner {
    inner: Arc<dyn QueryPlanner + Send + Sync>,
    scheduler_url: String,
}

impl GuardedPlanner {
    /// Wraps `inner` (Ballista's planner for the scheduler at `scheduler_url`, `http://host:port`).
    pub fn new(inner: Arc<dyn QueryPlanner + Send + Sync>, scheduler_url: String) -> GuardedPlanner {
        GuardedPlanner { inner, scheduler_url }
    }
}

#[async_trait]
impl QueryPlanner for GuardedPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.create_physical_plan(logical_plan, session).await?;
        if !plan.is::<DistributedQueryExec<LogicalPlanNode>>() {
            // information_schema and empty relations run here, on the client.
            return Ok(plan);
        }
        let snapshot = session.config().get_extension::<SnapshotOnDisk>().map(|s| s.as_ref().clone());
        let deadline =
            session.config().get_extension::<QueryDeadline>().map_or(crate::session::CLUSTER_DEADLINE, |d| d.0);
        Ok(Arc::new(GuardedExec { inner: plan, scheduler_url: self.scheduler_url.clone(), snapshot, deadline }))
    }
}

/// A distributed query with its snapshot pinned, a deadline, and its job
/// cancelled when dropped unread (or past its deadline).
#[derive(Debug)]
pub struct GuardedExec {
    inner: Arc<dyn ExecutionPlan>,
    scheduler_url: String,
    snapshot: Option<SnapshotOnDisk>,
    deadline: Duration,
}

impl GuardedExec {
    /// The scheduler's job id, once it has accepted the query.
    pub fn job_id(&self) -> Option<String> {
        job_id(&self.inner)
    }
}

fn job_id(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    plan.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()?.job_id().map(|id| id.to_string())
}

impl DisplayAs for GuardedExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "GuardedExec: snapshot pinned, job cancelled when dropped unread")?;
        if matches!(t, DisplayFormatType::Default | DisplayFormatType::Verbose) {
            writeln!(f)?;
            self.inner.fmt_as(t, f)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for GuardedExec {
    fn name(&self) -> &str {
        "GuardedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.inner]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let [inner] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("GuardedExec has exactly one child".into()))?;
        Ok(Arc::new(GuardedExec {
            inner,
            scheduler_url: self.scheduler_url.clone(),
            snapshot: self.snapshot.clone(),
            deadline: self.deadline,
        }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let pin = match &self.snapshot {
            Some(snapshot) => Some(pin_for_query(snapshot).map_err(|e| {
                DataFusionError::Execution(format!(
                    "could not pin snapshot {} under {} for a distributed query: {e}",
                    snapshot.id,
                    snapshot.root.display()
                ))
            })?),
            None => None,
        };
        let stream = self.inner.execute(partition, context)?;
        Ok(Box::pin(GuardedStream {
            schema: stream.schema(),
            stream,
            plan: self.inner.clone(),
            scheduler_url: self.scheduler_url.clone(),
            finished: false,
            deadline: self.deadline,
            expiry: Box::pin(tokio::time::sleep(self.deadline)),
            expired: false,
            _pin: pin,
        }))
    }
}

/// Pins `snapshot` for one query, under a name unique to this host, process and query.
fn pin_for_query(snapshot: &SnapshotOnDisk) -> std::io::Result<ReaderPin> {
    static QUERIES: AtomicU64 = AtomicU64::new(0);
    let n = QUERIES.fetch_add(1, Ordering::Relaxed);
    let name = format!("{QUERY_PIN_PREFIX}{}-{}-{n}", host_name(), std::process::id());
    ReaderPin::hold(&snapshot.root, &name, &snapshot.id)
}

struct GuardedStream {
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    plan: Arc<dyn ExecutionPlan>,
    scheduler_url: String,
    finished: bool,
    deadline: Duration,
    expiry: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
    _pin: Option<ReaderPin>,
}

impl Stream for GuardedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        let polled = self.stream.as_mut().poll_next(cx);
        match &polled {
            // The end, or an error (which ends the job on the scheduler's side too).
            Poll::Ready(None | Some(Err(_))) => self.finished = true,
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Pending => {
                if self.expiry.as_mut().poll(cx).is_ready() {
                    // Not finished: dropping this stream cancels the job.
                    self.expired = true;
                    return Poll::Ready(Some(Err(DataFusionError::Execution(format!(
                        "the cluster did not finish the query within {} s; its job is cancelled",
                        self.deadline.as_secs()
                    )))));
                }
            }
        }
        polled
    }
}

impl RecordBatchStream for GuardedStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Some(job) = job_id(&self.plan) else {
            // Not accepted yet: the submission itself is dropped with this stream.
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(job, "a distributed query was dropped outside a runtime: its job is not cancelled");
            return;
        };
        let url = self.scheduler_url.clone();
        let task = runtime.spawn(async move {
            match cancel_job(&url, &job).await {
                Ok(()) => tracing::info!(job, "cancelled the Ballista job of a query dropped before its end"),
                Err(e) => tracing::warn!(job, error = %e, "could not cancel the Ballista job of a dropped query"),
            }
        });
        if let Ok(mut pending) = CANCELLING.lock() {
            pending.retain(|t| !t.is_finished());
            pending.push(task);
        }
    }
}

/// Cancellations under way: a command that ends right after a query timed
/// out waits for them ([`settle`]), or its job would run on.
static CANCELLING: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>> = std::sync::Mutex::new(Vec::new());

/// Waits (at most `limit`) for the cancellations of dropped queries to reach
/// the scheduler: a command-line process calls it before it exits.
pub async fn settle(limit: Duration) {
    let pending = CANCELLING.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
    let deadline = tokio::time::Instant::now() + limit;
    for task in pending {
        let _ = tokio::time::timeout_at(deadline, task).await;
    }
}

/// Asks the scheduler at `scheduler_url` (`http://host:port`) to cancel job `job`.
pub async fn cancel_job(scheduler_url: &str, job: &str) -> Result<(), WarehouseError> {
    let mut client =
        tokio::time::timeout(Duration::from_secs(10), SchedulerGrpcClient::connect(scheduler_url.to_owned()))
            .await
            .map_err(|_| WarehouseError::Limit(format!("the scheduler at {scheduler_url} did not answer within 10 s")))?
            .map_err(|e| WarehouseError::Query(DataFusionError::External(Box::new(e))))?;
    client
        .cancel_job(CancelJobParams { job_id: job.to_owned() })
        .await
        .map_err(|e| WarehouseError::Query(DataFusionError::External(Box::new(e))))?;
    Ok(())
}

/// The state of job `job` on the scheduler at `scheduler_url`: `queued`,
/// `running`, `failed`, `successful`, or `unknown` when the scheduler does not know it.
pub async fn job_state(scheduler_url: &str, job: &str) -> Result<&'static str, WarehouseError> {
    use ballista_core::serde::protobuf::GetJobStatusParams;
    use ballista_core::serde::protobuf::job_status::Status;
    let mut client = SchedulerGrpcClient::connect(scheduler_url.to_owned())
        .await
        .map_err(|e| WarehouseError::Query(DataFusionError::External(Box::new(e))))?;
    let status = client
        .get_job_status(GetJobStatusParams { job_id: job.to_owned() })
        .await
        .map_err(|e| WarehouseError::Query(DataFusionError::External(Box::new(e))))?
        .into_inner()
        .status
        .and_then(|s| s.status);
    Ok(match status {
        None => "unknown",
        Some(Status::Queued(_)) => "queued",
        Some(Status::Running(_)) => "running",
        Some(Status::Failed(_)) => "failed",
        Some(Status::Successful(_)) => "successful",
    })
}
