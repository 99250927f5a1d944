//! The one composition root. [`App::build`] wires the whole system from its
//! settings: the store and the sandbox register, the court gateway, the
//! dashboards and the KPI API over the warehouse, and one [`Scheduler`] for
//! the connectors, the daily jobs and the dashboards' warm-up. `wangban
//! serve`, `wangban demo` and the end-to-end tests ([`App::spawn`]) all start
//! the system through it, so what the tests run is what production runs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use connectors::schedule::Schedule;
use gateway::{AppState, Application};
use store::Store;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::settings::{AlertSettings, Settings};

/// The whole service, bound and ready to serve.
pub struct App {
    application: Application,
    /// The warehouse's PostgreSQL front end (`[analytics] pg_listen`).
    pg: Option<pgfront::PgFront>,
    store: Store,
    sandbox: Store,
    scheduler: Scheduler,
    url: String,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("url", &self.url).field("jobs", &self.scheduler.names()).finish_non_exhaustive()
    }
}

/// An [`App`] serving in the background (tests): its URL and how to stop it.
#[derive(Debug)]
pub struct Running {
    /// `http://127.0.0.1:PORT` (or `https://…`).
    pub url: String,
    /// The store it writes (shared: the tests read what it did).
    pub store: Store,
    /// The PostgreSQL front end's address, when it was started.
    pub pg_addr: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops serving, lets in-flight requests and job runs finish, closes the stores.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.served).await.context("the service task panicked")?
    }
}

impl App {
    /// Opens the stores (applying migrations), checks the domain files and
    /// schedules, binds `listen` (default `server.listen`), and prepares every
    /// route and job on the system clock; nothing runs until [`App::run_until`].
    pub async fn build(settings: &Settings, listen: Option<SocketAddr>) -> anyhow::Result<App> {
        App::build_with_clock(settings, listen, Arc::new(chrono::Utc::now)).await
    }

    /// [`App::build`] with `clock` as the time of every handler, page and job
    /// (tests fix it, and a scheduled job then waits for that clock's next time).
    pub async fn build_with_clock(
        settings: &Settings,
        listen: Option<SocketAddr>,
        clock: domain::Clock,
    ) -> anyhow::Result<App> {
        // Check the domain files now, so a bad calendar stops the start rather than a request.
        settings.calendar()?;
        settings.catalogue()?;
        let store = settings.open_store().await?;
        let sandbox = settings.open_sandbox_store().await?;
        App::build_on(settings, listen, clock, store, sandbox).await
    }

    /// [`App::build_with_clock`] over stores already open (tests that put a
    /// proxy or a size limit between the service and its database).
    pub async fn build_on(
        settings: &Settings,
        listen: Option<SocketAddr>,
        clock: domain::Clock,
        store: Store,
        sandbox: Store,
    ) -> anyhow::Result<App> {
        let calendar = settings.calendar()?;
        settings.catalogue()?;
        // The sandbox register's orders refer to their partner there too.
        for partner in store.list_partners().await?.into_iter().filter(|p| p.sandbox) {
            sandbox.mirror_sandbox_partner(&partner).await?;
        }
        let listen = listen.unwrap_or(settings.server.listen);
        let dashboards = dashboards::Dashboards {
            store: store.clone(),
            kpis: settings.kpi_service(),
            sql_limits: settings.sql_limits(),
            secure_cookies: settings.server.secure_cookies || settings.server.tls.is_some(),
            clock: clock.clone(),
            sandbox: Some(sandbox.clone()),
            reports: crate::commands::report::archive(settings),
        };
        let mut state = AppState::with_clock(store.clone(), clock.clone()).with_sandbox(sandbox.clone());
        let warehouse_dir = settings.warehouse_dir();
        state.extra_metrics.push(Arc::new(move |now| warehouse::snapshot::metrics_text(&warehouse_dir, now)));
        let mut application = Application::build(listen, state)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?
            .with_limits(settings.server.http_limits())
            .with_routes(dashboards::router(dashboards.clone()));
        if let Some(tls) = &settings.server.tls {
            application = application.with_tls(gateway::tls::server_config(&tls.files()).context("[server.tls]")?);
        }
        let url = format!("{}://{}", application.scheme(), application.local_addr()?);
        let pg = match settings.analytics.pg_listen {
            None => None,
            Some(addr) => {
                let tls = match &settings.server.tls {
                    Some(tls) => Some(gateway::tls::server_config(&tls.files()).context("[server.tls]")?),
                    None => None,
                };
                let pg_settings = pgfront::PgSettings {
                    tls,
                    require_tls: settings.analytics.pg_require_tls,
                    max_rows: settings.analytics.pg_max_rows,
                    limits: settings.analytics.pg_limits(),
                    secret: settings.warehouse_key().context("the warehouse key (an unknown name's SCRAM salt)")?,
                };
                let sources = pgfront::Sources {
                    store: dashboards.store.clone(),
                    kpis: dashboards.kpis.clone(),
                    sql_limits: dashboards.sql_limits,
                    clock: dashboards.clock.clone(),
                };
                Some(pgfront::PgFront::bind(addr, sources, pg_settings).await.context("[analytics]")?)
            }
        };
        let scheduler = Scheduler::for_service(settings, &store, calendar, dashboards, clock)?;
        Ok(App { application, pg, store, sandbox, scheduler, url })
    }

    /// The address it serves, `scheme://host:port`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PostgreSQL front end's address, when `[analytics] pg_listen` is set.
    pub fn pg_addr(&self) -> Option<SocketAddr> {
        self.pg.as_ref().and_then(|pg| pg.local_addr().ok())
    }

    /// Serves and runs the scheduled jobs until `shutdown` completes; then
    /// finishes in-flight requests, lets each job finish its current run (a
    /// connector its current page: pages are transactions), and closes the stores.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let App { application, pg, store, sandbox, scheduler, url } = self;
        let (stop_jobs, jobs_stopped) = watch::channel(false);
        let jobs = scheduler.len();
        let scheduled = tokio::spawn(scheduler.run(jobs_stopped.clone()));
        let pg = pg.map(|pg| {
            let pg_addr = pg.local_addr().map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(message = "serving PostgreSQL clients", addr = %pg_addr);
            let mut stopped = jobs_stopped;
            tokio::spawn(pg.run_until(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }))
        });
        tracing::info!(message = "serving", %url, jobs);
        let served = application.run_until(shutdown).await.context("server failed");
        let _ = stop_jobs.send(true);
        let _ = scheduled.await;
        if let Some(pg) = pg {
            let _ = pg.await;
        }
        store.close().await;
        sandbox.close().await;
        served
    }

    /// Serves in the background until [`Running::stop`] (the end-to-end tests).
    pub fn spawn(self) -> Running {
        let url = self.url.clone();
        let store = self.store.clone();
        let pg_addr = self.pg_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(self.run_until(async move {
            let _ = stopped.await;
        }));
        Running { url, store, pg_addr, stop: Some(stop), served }
    }
}

/// A job's run.
type RunJob = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// One job: a name for the logs, when it runs, what it does.
struct Job {
    name: String,
    schedule: Schedule,
    /// Also run once as soon as the scheduler starts.
    at_start: bool,
    run: RunJob,
}

/// Jobs on cron schedules (UTC): every connector, the daily seizure lapse job
/// and reconciliation, the dashboards' warm-up. One loop shape for all: sleep
/// until the next time, run, repeat; a stop ends the sleep, never a run.
pub struct Scheduler {
    jobs: Vec<Job>,
    clock: domain::Clock,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("jobs", &self.names()).finish_non_exhaustive()
    }
}

impl Scheduler {
    /// The jobs of `serve`.
    fn for_service(
        settings: &Settings,
        store: &Store,
        calendar: domain::Calendar,
        dashboards: dashboards::Dashboards,
        clock: domain::Clock,
    ) -> anyhow::Result<Scheduler> {
        let mut jobs = Vec::new();
        let rules = settings.alerts.rules(&calendar);
        let connectors =
            connectors::runner::build(&settings.connector_specs(false)).context("[connectors] schedule")?;
        let exchange_tables: Vec<connectors::partner::Partner> = connectors
            .iter()
            .filter_map(|s| match &s.connector {
                connectors::runner::Connector::Partner(p) if p.table().is_some() => Some(p.clone()),
                _ => None,
            })
            .collect();
        for scheduled in connectors {
            let connector = Arc::new(scheduled.connector);
            let (store, clock) = (store.clone(), clock.clone());
            let name = connector.name().to_owned();
            jobs.push(Job {
                name: name.clone(),
                schedule: scheduled.schedule,
                at_start: false,
                run: Arc::new(move || {
                    let (connector, store, name, now) = (connector.clone(), store.clone(), name.clone(), clock());
                    Box::pin(async move { run_connector(&connector, &store, &name, now).await })
                }),
            });
        }
        let lapse = Schedule::parse(&settings.jobs.seizure_lapse).context("jobs.seizure_lapse")?;
        let (store_for_lapse, clock_for_lapse) = (store.clone(), clock.clone());
        jobs.push(Job {
            name: "seizure_lapse".into(),
            schedule: lapse,
            at_start: false,
            run: Arc::new(move || Box::pin(seizure_lapse(store_for_lapse.clone(), clock_for_lapse()))),
        });
        let reconcile = Schedule::parse(&settings.jobs.reconciliation).context("jobs.reconciliation")?;
        let (store_for_reconcile, clock_for_reconcile) = (store.clone(), clock.clone());
        jobs.push(Job {
            name: "reconciliation".into(),
            schedule: reconcile,
            at_start: false,
            run: Arc::new(move || {
                let (store, calendar, now) = (store_for_reconcile.clone(), calendar.clone(), clock_for_reconcile());
                let tables = exchange_tables.clone();
                Box::pin(async move {
                    if let Err(error) = crate::commands::sync::reconcile(&store, &calendar, now).await {
                        tracing::error!(message = "reconciliation failed; it runs again at the next scheduled time", %error);
                    }
                    let tables: Vec<&connectors::partner::Partner> = tables.iter().collect();
                    for line in crate::commands::sync::reconcile_partner_days(&tables, &store, now).await {
                        tracing::info!(message = "day reconciliation", result = %line);
                    }
                })
            }),
        });
        let monthly = Schedule::parse(&settings.jobs.monthly_report).context("jobs.monthly_report")?;
        let (dashboards_for_report, alerts_for_report, clock_for_report) =
            (dashboards.clone(), settings.alerts.clone(), clock.clone());
        jobs.push(Job {
            name: "monthly_report".into(),
            schedule: monthly,
            at_start: false,
            run: Arc::new(move || {
                let (dashboards, alerts, now) =
                    (dashboards_for_report.clone(), alerts_for_report.clone(), clock_for_report());
                Box::pin(async move { monthly_report(&dashboards, &alerts, now).await })
            }),
        });
        // At start and every 30 seconds: a snapshot that appeared since is warmed; the alert rules evaluated
        // on it, and every ten minutes.
        let warmed: Arc<Mutex<Warmed>> = Arc::default();
        let (alerts, clock_for_warm) = (settings.alerts.clone(), clock.clone());
        jobs.push(Job {
            name: "dashboards_warm".into(),
            schedule: Schedule::parse("*/30 * * * * *").context("the warm-up schedule")?,
            at_start: true,
            run: Arc::new(move || {
                Box::pin(warm(dashboards.clone(), alerts.clone(), rules.clone(), warmed.clone(), clock_for_warm()))
            }),
        });
        Ok(Scheduler { jobs, clock })
    }

    /// The jobs' names.
    pub fn names(&self) -> Vec<&str> {
        self.jobs.iter().map(|j| j.name.as_str()).collect()
    }

    /// How many jobs.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Runs every job on its schedule until `stop` turns true.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let mut tasks = JoinSet::new();
        for job in self.jobs {
            let mut stop = stop.clone();
            let clock = self.clock.clone();
            tasks.spawn(async move {
                if job.at_start {
                    (job.run)().await;
                }
                loop {
                    let now = clock();
                    let Some(next) = job.schedule.next_after(now) else { return };
                    let wait = (next - now).to_std().unwrap_or_default();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
                    }
                    tracing::debug!(message = "scheduled job", job = %job.name);
                    (job.run)().await;
                    if *stop.borrow() {
                        return;
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// One scheduled connector run, logged.
async fn run_connector(connector: &connectors::runner::Connector, store: &Store, name: &str, now: DateTime<Utc>) {
    // A run in progress finishes its page before stopping: pages are transactions.
    match connector.run(store, connectors::poll::RunOptions::new(now)).await {
        Ok(outcome) => tracing::info!(
            message = "connector run",
            connector = %name,
            pages = outcome.pages,
            rows = outcome.rows(),
            quarantined = outcome.quarantined,
            error = outcome.error.as_deref().unwrap_or("")
        ),
        Err(error) => tracing::error!(message = "connector run failed", connector = %name, %error),
    }
}

/// Makes and keeps last month's report from the current snapshot and
/// announces it on the alert webhook; logged either way.
pub(crate) async fn monthly_report(dashboards: &dashboards::Dashboards, alerts: &AlertSettings, now: DateTime<Utc>) {
    let month = crate::commands::report::last_month(now);
    let started = std::time::Instant::now();
    match dashboards.reports.make(&dashboards.kpis, month, now).await {
        Ok(kept) => {
            tracing::info!(message = "monthly report made", month = %kept.month, snapshot = %kept.snapshot_id,
                           ms = started.elapsed().as_millis() as u64);
            if let Err(error) = crate::commands::alerts::announce_report(&kept, alerts, now).await {
                tracing::error!(message = "the report was kept but not announced", month = %kept.month,
                                error = %format!("{error:#}"));
            }
        }
        Err(error) => tracing::error!(message = "monthly report failed; make it with `wangban report monthly`",
                                      month = %month.format("%Y-%m"), %error),
    }
}

/// The daily seizure job: lapses expired seizures, promotes queues, and logs
/// what expires within 30 days.
async fn seizure_lapse(store: Store, now: DateTime<Utc>) {
    let today = domain::time::local_date(now);
    match court_orders::lapse_expired(&store, domain::seizure::SeizureRules::default(), today, now).await {
        Ok(report) => tracing::info!(
            message = "seizure lapse job",
            units = report.units,
            lapsed = report.lapsed.len(),
            promoted = report.promoted.len()
        ),
        Err(error) => {
            tracing::error!(message = "seizure lapse job failed; it runs again at the next scheduled time", %error)
        }
    }
    match store.seizures_expiring_within(today, 30).await {
        Ok(expiring) => tracing::info!(message = "seizures expiring within 30 days", count = expiring.len()),
        Err(error) => tracing::error!(message = "listing expiring seizures failed", %error),
    }
}

/// What the warm-up job has done: the snapshot it last warmed, and when it
/// last evaluated the alert rules.
#[derive(Debug, Default)]
struct Warmed {
    snapshot: Option<String>,
    evaluated_at: Option<DateTime<Utc>>,
}

/// How often the alert rules are evaluated without a new snapshot (connector
/// lag and expiring seizures are read from the store, which moves on).
const ALERT_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// When a warehouse snapshot appeared since the last run (a refresh by
/// `wangban warehouse refresh` or a timer): computes the dashboards' KPIs on
/// it, so no visitor waits for the first scan. The alert rules are evaluated
/// then, and otherwise every [`ALERT_EVERY`]; between evaluations, alert
/// webhook deliveries that have not gone through are retried.
async fn warm(
    dashboards: dashboards::Dashboards,
    alerts: AlertSettings,
    rules: warehouse::alerts::AlertRules,
    warmed: Arc<Mutex<Warmed>>,
    now: DateTime<Utc>,
) {
    let started = std::time::Instant::now();
    let (last, evaluated_at) = warmed.lock().map(|w| (w.snapshot.clone(), w.evaluated_at)).unwrap_or_default();
    let fresh = match dashboards.warm().await {
        Ok((id, results)) if last.as_ref() != Some(&id) => {
            tracing::info!(message = "dashboards warmed for a new snapshot", snapshot = %id, results,
                           ms = started.elapsed().as_millis() as u64);
            if let Ok(mut w) = warmed.lock() {
                w.snapshot = Some(id);
            }
            true
        }
        Ok(_) => false,
        Err(error) => {
            tracing::debug!(message = "dashboards not warmed", %error);
            false
        }
    };
    let due = evaluated_at.is_none_or(|at| now - at >= ALERT_EVERY);
    if fresh || due {
        let snapshot = dashboards.kpis.snapshot().await.ok();
        match crate::commands::alerts::evaluate_and_notify(&dashboards.store, snapshot.as_deref(), &rules, &alerts, now)
            .await
        {
            Ok(_) => {
                if let Ok(mut w) = warmed.lock() {
                    w.evaluated_at = Some(now);
                }
            }
            Err(error) => tracing::error!(message = "alert evaluation failed", error = %format!("{error:#}")),
        }
    } else if let Err(error) = crate::commands::alerts::deliver_pending(&dashboards.store, &alerts, now).await {
        tracing::debug!(message = "alert delivery retry failed", error = %format!("{error:#}"));
    }
}
