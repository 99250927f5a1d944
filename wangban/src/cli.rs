//! Command-line definitions. Raw arguments only: they are validated into
//! settings and domain types by the commands (parse, don't validate).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// wangban (网办): data-integration gateway and reporting warehouse for online
/// real-estate registration.
///
/// Connectors pull cases from partner systems into a normalized store; the
/// gateway takes court seizure orders; the warehouse computes the online-rate
/// KPI toward the 90% target; the dashboards show it.
#[derive(Debug, Parser)]
#[command(name = "wangban", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Configuration file (TOML). Settings can also come from WANGBAN__SECTION__KEY
    /// environment variables, which override the file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory: the SQLite database and the warehouse live here [default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Database URL, overriding the configuration: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Extra working-day calendar years (TOML, the shape of domain/src/calendar_cn.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub calendar: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: the court API, health endpoints, the connectors on their
    /// schedules, the daily jobs, the KPI and SQL APIs and the dashboards.
    Serve(ServeArgs),
    /// Everything at once on this machine: the simulated partners on loopback, a fresh
    /// SQLite store in a demo folder, every connector run once, the warehouse refreshed,
    /// demo accounts, then the service with the dashboards until Ctrl-C.
    Demo(DemoArgs),
    /// Partner simulators: `simulate --listen ADDR` serves the partner systems over a generated
    /// case flow; `simulate court-push` loads the court API; `simulate generate` times the generator.
    Simulate(SimulateArgs),
    /// Pull once from the configured partner connectors, showing progress, and print
    /// what each did as JSON lines; then reconcile partner records with the cases.
    Sync(SyncArgs),
    /// Records kept back by the connectors: list them, replay one once fixed.
    Quarantine(QuarantineArgs),
    /// The Parquet warehouse: `warehouse refresh` exports the store (incrementally).
    Warehouse(WarehouseArgs),
    /// KPI results from the current warehouse snapshot; `kpi list` lists the definitions.
    Kpi(KpiArgs),
    /// Reports for leadership from the current warehouse snapshot: `report monthly`
    /// writes the month's Excel workbook (月报).
    Report(ReportArgs),
    /// Read-only SQL on the current warehouse snapshot (tables cases, qc_findings,
    /// evaluations, seizures, anomalies); EXPLAIN and EXPLAIN ANALYZE allowed.
    Sql(SqlArgs),
    /// This host's part of a Ballista cluster: `cluster scheduler` or `cluster executor`
    /// (a build with `--features ballista`; docs/ballista.md).
    Cluster(ClusterArgs),
    /// Check an identifier and print its parts as JSON; exit 0 if valid
    /// (warnings included in the JSON), 1 if invalid.
    Validate(ValidateArgs),
    /// Working-day arithmetic on the official calendar.
    Calendar(CalendarArgs),
    /// Register and manage partners (courts, banks, …) and their signing secrets.
    Partner(PartnerArgs),
    /// The seizure register: run the daily lapse job now, list seizures expiring soon.
    Seizures(SeizuresArgs),
    /// Dashboard accounts: add, list, disable, enable, reset a password.
    User(UserArgs),
    /// The configuration: check it (what is wrong and where), show what is in force.
    Config(ConfigArgs),
    /// The audit log: verify its hash chain, list the latest entries.
    Audit(AuditArgs),
    /// Alerts (online rate below its trajectory, seizures expiring, connectors lagging):
    /// list them, or evaluate the rules now and notify the webhook.
    Alerts(AlertsArgs),
    /// SQLite: write a consistent copy of the live store while the service runs.
    /// PostgreSQL: use pg_dump (see the README).
    Backup(BackupArgs),
    /// SQLite: put a backup in place of the store (stop the service first). The backup
    /// is checked first; the store it replaces is kept beside it.
    Restore(RestoreArgs),
}

/// `cluster` arguments.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Which process.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The processes of a Ballista cluster; flags override `[cluster]`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Run the scheduler: clients (`warehouse.engine = "df://HOST:PORT"`) and executors
    /// connect to it. Pull scheduling; a lost executor is noticed within 14 s.
    Scheduler {
        /// Address to listen on (`cluster.scheduler_listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run an executor: it registers with the scheduler, asks it for tasks and reads the
    /// warehouse directory at the path the clients registered.
    Executor {
        /// The scheduler, host:port (`cluster.scheduler`).
        #[arg(long)]
        scheduler: Option<String>,
        /// Address to listen on (`cluster.executor_bind_host`).
        #[arg(long)]
        bind_host: Option<String>,
        /// Host name or address others fetch results from (`cluster.executor_external_host`).
        #[arg(long)]
        external_host: Option<String>,
        /// Arrow Flight port (`cluster.executor_flight_port`).
        #[arg(long)]
        flight_port: Option<u16>,
        /// gRPC port (`cluster.executor_grpc_port`).
        #[arg(long)]
        grpc_port: Option<u16>,
        /// Where shuffle files go (`cluster.executor_work_dir`).
        #[arg(long)]
        work_dir: Option<std::path::PathBuf>,
        /// Memory pool of all its tasks, MiB (`cluster.executor_memory_mb`).
        #[arg(long)]
        memory_mb: Option<u64>,
        /// Tasks at once, 0 for one per core (`cluster.executor_concurrent_tasks`).
        #[arg(long)]
        concurrent_tasks: Option<usize>,
    },
    /// Print the state of a job on the scheduler: queued, running, failed (cancelled jobs
    /// too), successful, or unknown.
    Job {
        /// The job's id (a client logs it when it cancels a job).
        id: String,
        /// The scheduler, host:port (`cluster.scheduler`).
        #[arg(long)]
        scheduler: Option<String>,
    },
}

/// `config` arguments.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// Configuration commands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the settings in force (--config FILE, WANGBAN__ variables, flags): every key
    /// known, every value valid, every file named readable. Exit 0 when usable, 1 when not
    /// (2 when the file cannot even be read as settings).
    Check {
        /// Also open the database (without migrating it) and compare its schema with this build.
        #[arg(long)]
        connect: bool,
    },
    /// Print the settings in force as TOML, with secrets masked.
    Show,
}

/// `audit` arguments.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// Audit-log commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every entry's hash from the first; exit 0 if the chain holds, 1 at the
    /// first entry that was edited, deleted or reordered.
    Verify,
    /// The latest entries, newest first, as JSON lines.
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

/// `alerts` arguments.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AlertsCommand,
}

/// Alert commands.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// The firing alerts as JSON lines.
    List {
        /// Resolved ones too.
        #[arg(long)]
        all: bool,
    },
    /// Evaluate every rule now (on the current warehouse snapshot), record the result,
    /// send changes to the webhook; print a JSON summary. Exit 0 when nothing fires, 1 otherwise.
    Check,
}

/// `backup` arguments.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write; it must not exist.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
}

/// `restore` arguments.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file to restore.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Replace an existing store (it is renamed, not deleted).
    #[arg(long)]
    pub force: bool,
}

/// `user` arguments.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UserCommand,
}

/// Account management.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. Without --password a random one is generated and printed once.
    Add {
        /// Login name.
        #[arg(long)]
        name: String,
        /// Role: leadership, qc, staff, operator or admin.
        #[arg(long)]
        role: String,
        /// Section (staff) or window (operator) the account belongs to.
        #[arg(long)]
        section: Option<String>,
        /// Password (at least 10 characters); prefer letting one be generated.
        #[arg(long, env = "WANGBAN_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// List accounts as JSON lines (never password hashes).
    List,
    /// Stop an account from logging in and end its sessions.
    Disable {
        /// Login name.
        #[arg(long)]
        name: String,
    },
    /// Let a disabled account log in again.
    Enable {
        /// Login name.
        #[arg(long)]
        name: String,
    },
    /// Set a new password (generated and printed once without --password), lift a lockout, end sessions.
    Reset {
        /// Login name.
        #[arg(long)]
        name: String,
        /// The new password.
        #[arg(long, env = "WANGBAN_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

/// `demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The demo folder: store, warehouse and a config for other commands. Emptied first
    /// if an earlier demo made it; any other non-empty folder is refused.
    #[arg(long, default_value = "wangban-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Where the service listens (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Where PostgreSQL clients (psql, DBeaver, Python) reach the warehouse
    /// [default: [analytics] pg_listen, or 127.0.0.1:5433].
    #[arg(long, value_name = "ADDR")]
    pub pg_listen: Option<SocketAddr>,
    /// Seed of the simulated case flow.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First submission day of the flow (yyyy-mm-dd); it runs to today.
    #[arg(long, default_value = "2024-01-01")]
    pub from: String,
    /// Cases per year.
    #[arg(long, default_value_t = 100_000)]
    pub volume: u32,
    /// Deliver the registry's cases through an exchange table (前置库) in this
    /// PostgreSQL or MariaDB database (`postgres://…`, `mysql://…`) instead of
    /// its HTTP feed: the simulator writes them there, and a configured
    /// partner (`[partners.registry]`) reads them.
    #[arg(long, value_name = "URL")]
    pub exchange_db: Option<String>,
}

/// `simulate` arguments.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimulateArgs {
    /// Which simulator; without one, the partner servers.
    #[command(subcommand)]
    pub command: Option<SimulateCommand>,
    /// Serve the partner systems here (port 0 picks a free port); each base URL is printed.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The case flow served.
    #[command(flatten)]
    pub flow: FlowArgs,
    /// Fault: milliseconds added to every answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fault: share of requests answered 503 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fault: share of answers whose body is cut short (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub truncate_rate: f64,
    /// Fault: share of records served malformed (missing field, bad GBK, broken XML; 0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Fault: share of registry records followed later by an older snapshot (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub out_of_order_rate: f64,
    /// Write a wangban config whose connectors point at the servers (with
    /// `--exchange-db`: a `[partners.gtmap]` section reading the exchange table).
    #[arg(long, value_name = "FILE")]
    pub write_config: Option<std::path::PathBuf>,
    /// Instead of serving: write the registry's cases into a gtmap-style
    /// exchange table (前置库, `BDC_YW_SL`) in this PostgreSQL or MariaDB
    /// database (`postgres://…`, `mysql://…`), with its faults: a transaction
    /// holding earlier timestamps open, hundreds of rows with one timestamp,
    /// logical deletes, rows re-written.
    #[arg(long, value_name = "URL")]
    pub exchange_db: Option<String>,
    /// Cases written with `--exchange-db` (each written twice: two versions).
    #[arg(long, default_value_t = 1000)]
    pub exchange_cases: usize,
}

/// Simulators.
#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Push signed court orders to a running gateway and report throughput and latency.
    CourtPush(CourtPushArgs),
    /// Generate the case flow in memory and print what was generated and how long it took (a benchmark).
    Generate(FlowArgs),
}

/// The case flow to generate.
#[derive(Debug, Args)]
pub struct FlowArgs {
    /// Seed of the case flow (and of the faults).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First submission day of the flow (yyyy-mm-dd).
    #[arg(long, default_value = "2024-01-01")]
    pub from: String,
    /// Last submission day of the flow (yyyy-mm-dd) [default: today].
    #[arg(long)]
    pub to: Option<String>,
    /// Cases per year.
    #[arg(long, default_value_t = 150_000)]
    pub volume: u32,
}

/// `simulate court-push` options.
#[derive(Debug, Args)]
pub struct CourtPushArgs {
    /// Base URL of the gateway, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub target: String,
    /// Court partner id (see `wangban partner add --kind court`).
    #[arg(long)]
    pub partner: String,
    /// The partner's secret.
    #[arg(long, env = "WANGBAN_PUSH_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Orders per second to aim for; omit to send as fast as --concurrency allows.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Orders to send.
    #[arg(long, default_value_t = 10_000)]
    pub count: u64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Orders per request (1 = single <CourtOrder>, up to 500 per <CourtOrders> batch).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Distinct units the seizures are spread over.
    #[arg(long, default_value_t = 50_000)]
    pub units: u32,
    /// Seed of the order stream (order numbers include it: use a new seed for a new run).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `seizures` subcommands.
#[derive(Debug, Args)]
pub struct SeizuresArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SeizuresCommand,
}

/// Seizure register operations.
#[derive(Debug, Subcommand)]
pub enum SeizuresCommand {
    /// Lapse seizures past their end and promote the queues behind them (the daily job, now).
    Lapse,
    /// List active seizures ending within N days, as JSON lines.
    Expiring {
        /// Days ahead.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is printed
    /// on start [default: 127.0.0.1:8080, or server.listen in the configuration].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// `sync` options.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this connector: `registry` (its three feeds), `registry-qc`, `registry-evaluations`,
    /// `housing`, `provident_fund`, `court_platform` or `bank:ID`.
    #[arg(long)]
    pub connector: Option<String>,
    /// No progress line on standard error.
    #[arg(long)]
    pub quiet: bool,
    /// Stop a connector after this many pages.
    #[arg(long, default_value_t = 100_000)]
    pub max_pages: u64,
}

/// Identifier kinds `validate` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdKind {
    /// Resident identity card number (GB 11643; legacy 15-digit accepted).
    IdCard,
    /// Unified social credit code (GB 32100; checksum failure is a warning).
    CreditCode,
    /// Real-estate unit number (GB/T 37346, 28 characters).
    UnitNo,
    /// Property or registration certificate number.
    CertNo,
    /// Court case number, e.g. (2024)湘0405执123号.
    CaseNo,
}

/// `validate` arguments.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// What kind of identifier.
    pub kind: IdKind,
    /// The identifier.
    pub value: String,
}

/// `calendar` subcommands.
#[derive(Debug, Args)]
pub struct CalendarArgs {
    /// What to compute.
    #[command(subcommand)]
    pub command: CalendarCommand,
}

/// Working-day computations. The acceptance day does not count: N working days
/// after D ends at the end of the N-th working day after D.
#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Print the number of working days in (FROM, TO].
    Workdays {
        /// Start date (yyyy-mm-dd), not counted.
        from: String,
        /// End date (yyyy-mm-dd), counted.
        to: String,
    },
    /// Print the date N working days after DATE (N = 0 prints DATE).
    Add {
        /// Start date (yyyy-mm-dd).
        date: String,
        /// Working days to add.
        n: u32,
    },
    /// Print whether DATE is a working day, as JSON.
    Check {
        /// The date (yyyy-mm-dd).
        date: String,
    },
}

/// `partner` subcommands.
#[derive(Debug, Args)]
pub struct PartnerArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PartnerCommand,
}

/// Partner management.
#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Register a partner; prints {"id":…,"secret":…} as JSON. The secret is shown only now.
    Add {
        /// Kind: registry, housing, bank, provident_fund or court.
        #[arg(long)]
        kind: String,
        /// ASCII id (letters, digits, '.', '_', '-'; at most 64), e.g. court-0405.
        #[arg(long)]
        id: String,
        /// Display name, e.g. 珠晖区人民法院.
        #[arg(long)]
        name: String,
        /// Secret to use instead of a generated one (at least 32 characters).
        #[arg(long)]
        secret: Option<String>,
        /// A sandbox partner (court only): its orders get every check and real
        /// receipts but go to the sandbox register (database.sandbox_url), never
        /// to the real register, its KPIs or its audit; it reads what was wrong
        /// with its requests at GET /api/court/v1/sandbox/report.
        #[arg(long)]
        sandbox: bool,
    },
    /// List partners as JSON lines (never secrets).
    List,
    /// Issue a new secret; the old ones stay valid for the grace period. Prints the new secret once.
    Rotate {
        /// Partner id.
        #[arg(long)]
        id: String,
        /// Days the old secrets stay valid.
        #[arg(long, default_value_t = 7)]
        grace_days: u32,
    },
    /// Refuse every request from a partner.
    Disable {
        /// Partner id.
        #[arg(long)]
        id: String,
    },
    /// Accept requests from a disabled partner again.
    Enable {
        /// Partner id.
        #[arg(long)]
        id: String,
    },
    /// The onboarding kit: run the conformance suite against a partner's test
    /// endpoint (every record decodes, identifiers valid, paging loses and
    /// repeats nothing, the stream's order, encodings, file checksums and row
    /// counts, Retry-After). Prints a report; exit 0 only when every check passes.
    /// With `--connector NAME`, checks a configured source instead: its
    /// clock's offset, two reads agreeing, the cursor ordering rows and how
    /// many share a value, the right to update the sync flag, code tables
    /// covering the data, and the first rows mapping.
    Check {
        /// Kind: registry, housing, bank, provident_fund or court_platform.
        #[arg(long, required_unless_present = "connector")]
        kind: Option<String>,
        /// The partner's base URL, as a connector is configured
        /// (e.g. http://host/registry/v1, http://host/banks/icbc).
        #[arg(long, required_unless_present = "connector")]
        base_url: Option<String>,
        /// A configured connector (`[partners.NAME]`, `registry`, `bank:ID`) to check.
        #[arg(long, conflicts_with_all = ["kind", "base_url", "token"])]
        connector: Option<String>,
        /// Bearer token (banks).
        #[arg(long)]
        token: Option<String>,
        /// Report language: zh (default) or en.
        #[arg(long, default_value = "zh", value_parser = ["zh", "en"])]
        lang: String,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<std::path::PathBuf>,
    },
    /// Reconcile a configured exchange table day by day: the partner's count
    /// of keys per day against ours; a day that differs is read again whole.
    /// Prints a JSON line per day; exit 1 if a day still differs.
    Reconcile {
        /// The connector (`[partners.NAME]` with a `[table]`).
        #[arg(long)]
        connector: String,
        /// Days back from today (China time), today included.
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// Read a configured connector's first rows and show, side by side and in
    /// Chinese, each source row, the record it maps to and its findings.
    /// Writes nothing (neither the store nor the partner's sync flags).
    Map {
        /// The connector (`[partners.NAME]`, `registry`, `bank:ID`).
        #[arg(long)]
        connector: String,
        /// Rows to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
    },
}

/// `quarantine` arguments.
#[derive(Debug, Args)]
pub struct QuarantineArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: QuarantineCommand,
}

/// `quarantine` subcommands.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined records, newest first, as JSON lines.
    List {
        /// Only from this connector.
        #[arg(long)]
        source: Option<String>,
        /// Include records already replayed.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// List data-quality findings instead: flawed fields of records that
        /// were kept (an ID number failing its check, an unknown non-key
        /// code), with the rule broken and the value masked; then a count
        /// per source, field and rule.
        #[arg(long, conflicts_with = "all")]
        findings: bool,
    },
    /// Validate a quarantined record again and write it if it passes.
    Replay {
        /// The entry's id (from `quarantine list`).
        id: i64,
        /// Use this file's bytes (the fixed record) instead of the kept ones.
        #[arg(long, value_name = "FILE")]
        payload: Option<std::path::PathBuf>,
    },
}

/// `warehouse` arguments.
#[derive(Debug, Args)]
pub struct WarehouseArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: WarehouseCommand,
}

/// `warehouse` subcommands.
#[derive(Debug, Subcommand)]
pub enum WarehouseCommand {
    /// Export the store to a new Parquet snapshot (only changed months unless --full).
    Refresh {
        /// Rewrite every month.
        #[arg(long)]
        full: bool,
    },
    /// Print the current snapshot's manifest.
    Status,
    /// Month by month: the cases the registry delivered (the store) against
    /// the cases the online rate counts plus those its definition leaves out
    /// (the current snapshot); a JSON line per month, then a summary line.
    /// Exit 0 when every month reconciles, 1 otherwise.
    Reconcile,
    /// Publish the current snapshot again with every month of `cases` as one
    /// file, as a refresh writes it, its rollup counted again (for snapshots
    /// whose month directories were filled by other means, such as the inflated
    /// copies `bench/inflate.py` writes).
    Compact,
    /// Time the online-rate KPI by type × month and the raw benchmark queries
    /// (`warehouse::bench::QUERIES`) in this process on the current snapshot, best of
    /// --repeat runs after one warm-up, without the dashboards' result cache; JSON lines.
    Bench {
        /// Timed runs per query.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Where the queries run (as for `kpi --engine`).
        #[arg(long, default_value = "local")]
        engine: String,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned text.
    Table,
    /// JSON.
    Json,
    /// CSV.
    Csv,
}

/// `kpi` arguments.
#[derive(Debug, Args)]
pub struct KpiArgs {
    /// KPI name (online-rate, end-to-end-rate, on-time-rate, first-time-right, e-certificate-rate,
    /// qc-errors, satisfaction), or `list`.
    pub name: String,
    /// First day (China time), e.g. 2025-01-01.
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day, inclusive.
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Break down by these dimensions, comma-separated (e.g. business_type,month).
    #[arg(long, value_delimiter = ',')]
    pub by: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// The time the figures are for (RFC 3339): by default the snapshot's time; an earlier time
    /// may be given (cases past their limit by then count as late), a later one is refused.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Only cases with this value, e.g. --filter district=430405 (business_type, phase,
    /// channel, district, applicant_kind); repeat for several.
    #[arg(long = "filter", value_name = "DIM=VALUE")]
    pub filters: Vec<String>,
    /// Where the query runs: local (this process), standalone (in-process Ballista) or a
    /// Ballista scheduler's df://host:50050 whose executors see the warehouse directory
    /// at the same path; default: `warehouse.engine`. Ballista needs a build with
    /// `--features ballista`.
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
    /// Print, instead of the answer, the SQL the KPI's plain plan runs over the raw tables
    /// (no rollup), one JSON string per line: what `bench/warehouse.sh` gives DuckDB.
    #[arg(long)]
    pub plain_sql: bool,
}

/// `report` arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Which report.
    #[command(subcommand)]
    pub command: ReportCommand,
}

/// Reports.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The monthly leadership report (月报) as an Excel workbook: headline KPIs against the
    /// previous month, the same month a year earlier and the 90% target; trend and
    /// distribution charts; the gap analysis; QC; seizures; data intake.
    Monthly(MonthlyReportArgs),
    /// The kept reports, one JSON line each, newest month first.
    List,
    /// Make a kept report again from the snapshot it names and compare it with the kept
    /// workbook byte for byte (exit 1 when they differ).
    Verify(VerifyReportArgs),
}

/// `report verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyReportArgs {
    /// The month, YYYY-MM.
    #[arg(long, value_parser = parse_month)]
    pub month: chrono::NaiveDate,
}

/// `report monthly` arguments.
#[derive(Debug, Args)]
pub struct MonthlyReportArgs {
    /// The month, YYYY-MM; by default last month (China time).
    #[arg(long, value_parser = parse_month)]
    pub month: Option<chrono::NaiveDate>,
    /// Write the workbook here only; by default it is kept as
    /// DATA_DIR/reports/wangban-月报-YYYY-MM.xlsx with its snapshot pinned in the warehouse.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// A `YYYY-MM` argument as its first day (as `?month=` is read).
fn parse_month(text: &str) -> Result<chrono::NaiveDate, dashboards::params::ParamError> {
    dashboards::params::month(Some(text))
}

/// `sql` arguments.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query.
    pub query: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Where the query runs (as for `kpi --engine`; default: `warehouse.engine`).
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
}
