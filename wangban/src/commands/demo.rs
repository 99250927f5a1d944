//! `wangban demo`: the whole system on one machine in one command.
//!
//! Generates a case flow, serves the simulated partners on loopback, makes a
//! fresh SQLite store in the demo folder, runs every connector once (with
//! progress), reconciles, refreshes the warehouse, makes last month's report, creates one account per
//! role, prints the URL and the accounts, then serves the court API, the KPI
//! API and the dashboards (connectors keep running on their schedules) until
//! Ctrl-C. The folder keeps a `wangban.toml`, so other commands can be pointed
//! at the demo: `wangban --config wangban-demo/wangban.toml kpi online-rate …`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use simulator::caseflow;

use crate::cli::{DemoArgs, FlowArgs, SyncArgs, WarehouseArgs, WarehouseCommand};
use crate::settings::Settings;

/// The file that marks a folder as made by `wangban demo` (and so safe to empty).
const MARKER: &str = ".wangban-demo";

/// The demo accounts: name, role, section.
const ACCOUNTS: [(&str, &str, Option<&str>); 5] = [
    ("leader", "leadership", None),
    ("qc", "qc", None),
    ("staff", "staff", Some("registration")),
    ("operator", "operator", Some("ZZ01")),
    ("admin", "admin", None),
];

/// Empties `dir` if an earlier demo made it (or creates it); refuses any other non-empty folder.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?.next().is_none();
        if !empty {
            if !dir.join(MARKER).exists() {
                bail!(
                    "{} is not empty and was not made by `wangban demo`; choose another folder with --dir",
                    dir.display()
                );
            }
            std::fs::remove_dir_all(dir).with_context(|| format!("cannot empty {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), "made by wangban demo; the whole folder is replaced by the next demo\n")?;
    Ok(())
}

fn step(started: Instant, what: &str) {
    eprintln!("[{:>5.1} s] {what}", started.elapsed().as_secs_f64());
}

pub(crate) async fn run(args: DemoArgs, base: Settings) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let flow_args = FlowArgs { seed: args.seed, from: args.from.clone(), to: None, volume: args.volume };
    let params = super::simulate::flow_params(&flow_args)?;
    prepare_dir(&args.dir)?;
    let dir = std::fs::canonicalize(&args.dir).unwrap_or_else(|_| args.dir.clone());
    step(started, &format!("generating the case flow {} to {} (seed {})", params.from, params.to, params.seed));
    let flow = caseflow::generate(&params);
    step(
        started,
        &format!(
            "{} cases, {} QC findings, {} evaluations, {} loans, {} court requests",
            flow.cases.len(),
            flow.qc_findings.len(),
            flow.evaluations.len(),
            flow.loans.len(),
            flow.court_requests.len()
        ),
    );
    let servers = simulator::servers::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        &flow,
        params.to,
        simulator::servers::faults::Faults::default(),
        params.seed,
    )
    .await
    .context("cannot start the simulated partners")?;
    step(started, &format!("simulated partners on http://{}", servers.addr));

    let mut settings = base;
    settings.data_dir = dir.clone();
    settings.database.url = None;
    settings.warehouse.dir = None;
    settings.warehouse.key_file = None;
    settings.connectors = super::simulate::connectors_for(&servers, &flow);
    if let Some(url) = &args.exchange_db {
        // The registry's cases through an exchange table; its QC findings and
        // evaluations still through its HTTP feeds.
        let exchange = simulator::exchange::Exchange::connect(url).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to the exchange database: {}",
                connectors::partner::table::redact(&e.to_string(), url)
            )
        })?;
        step(
            started,
            &format!(
                "writing {} cases into the exchange table {}",
                flow.cases.len(),
                simulator::exchange::REGISTRY_TABLE
            ),
        );
        exchange.write_registry_cases(&flow.cases).await.context("cannot write the exchange table")?;
        let url_file = dir.join("exchange.url");
        std::fs::write(&url_file, url)?;
        let text =
            simulator::exchange::registry_adapter_toml(&format!("{{ file = {:?} }}", url_file.display().to_string()));
        let cases: connectors::partner::config::PartnerConfig = toml::from_str(&text)?;
        let registry = servers.registry_url();
        let shipped = |adapter| {
            connectors::partner::shipped::config(adapter, &registry, "0 */5 * * * *").map_err(anyhow::Error::msg)
        };
        settings.connectors.registry = None;
        settings.partners.insert("registry".into(), cases);
        settings.partners.insert("registry-qc".into(), shipped(connectors::partner::shipped::REGISTRY_QC)?);
        settings
            .partners
            .insert("registry-evaluations".into(), shipped(connectors::partner::shipped::REGISTRY_EVALUATIONS)?);
    }
    let pg_listen =
        args.pg_listen.or(settings.analytics.pg_listen).unwrap_or(std::net::SocketAddr::from(([127, 0, 0, 1], 5433)));
    settings.analytics.pg_listen = Some(pg_listen);
    let config_path = dir.join("wangban.toml");
    #[derive(serde::Serialize)]
    struct Written<'a> {
        data_dir: &'a Path,
        connectors: &'a crate::settings::ConnectorsSettings,
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        partners: &'a std::collections::BTreeMap<String, connectors::partner::config::PartnerConfig>,
    }
    let text =
        toml::to_string(&Written { data_dir: &dir, connectors: &settings.connectors, partners: &settings.partners })?;
    std::fs::write(&config_path, format!("# Written by `wangban demo`; valid while the demo runs.\n{text}"))?;

    step(started, &format!("syncing every connector into {}", settings.database_url()));
    let sync = SyncArgs { connector: None, quiet: false, max_pages: 100_000 };
    if super::sync::run(&sync, &settings).await? != ExitCode::SUCCESS {
        eprintln!("warning: a connector reported an error (see above); the demo goes on with what was synced");
    }
    step(started, "refreshing the warehouse");
    super::warehouse::refresh_or_status(WarehouseArgs { command: WarehouseCommand::Refresh { full: true } }, &settings)
        .await?;
    step(started, "making last month's report (月报)");
    let now = chrono::Utc::now();
    let kpis = settings.kpi_service();
    let archive = super::report::archive(&settings);
    match archive.make(&kpis, super::report::last_month(now), now).await {
        Ok(kept) => eprintln!("  {} (also at /reports)", archive.dir().join(&kept.file).display()),
        Err(error) => eprintln!("warning: last month's report was not made: {error}"),
    }

    let store = settings.open_store().await?;
    let mut accounts = Vec::new();
    for (name, role, section) in ACCOUNTS {
        let password = super::user::generate_password();
        super::user::add(&store, name, role, section, Some(password.clone())).await?;
        accounts.push((name, role, password));
    }
    store.close().await;
    step(started, "ready");

    eprintln!();
    eprintln!("demo accounts (this run only):");
    for (name, role, password) in &accounts {
        eprintln!("  {name:<9} {role:<11} {password}");
    }
    eprintln!(
        "PostgreSQL clients (accounts qc and leader): psql \"host={} port={} dbname=wangban user=qc\" (password above)",
        pg_listen.ip(),
        pg_listen.port()
    );
    eprintln!(
        "other commands on the demo: wangban --config {} kpi online-rate --from 2025-01-01 --to 2025-12-31 --by month",
        config_path.display()
    );
    eprintln!("Ctrl-C stops everything");
    let served = super::serve::run(crate::cli::ServeArgs { listen: Some(args.listen) }, &settings).await;
    servers.stop().await.context("stopping the simulated partners")?;
    served
}
