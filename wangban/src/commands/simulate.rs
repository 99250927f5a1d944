//! `wangban simulate …`: today the court-push load generator.

use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::Utc;
use simulator::caseflow::{self, FlowParams};
use simulator::court_push::{self, PushConfig};

use crate::cli::{FlowArgs, SimulateArgs, SimulateCommand};

pub(crate) async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let push = match args.command {
        Some(SimulateCommand::CourtPush(ref push)) => push,
        Some(SimulateCommand::Generate(ref flow)) => return run_generate(flow),
        None if args.exchange_db.is_some() => return write_exchange(&args).await,
        None => return serve_partners(&args).await,
    };
    if push.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        bail!("--rate must be a positive number of orders per second");
    }
    let config = PushConfig {
        target: push.target.clone(),
        partner: push.partner.clone(),
        secret: push.secret.clone(),
        rate: push.rate,
        count: push.count,
        concurrency: push.concurrency,
        batch: push.batch,
        units: push.units,
        seed: push.seed,
    };
    eprintln!(
        "pushing {} orders to {} ({} per request, {} in flight, {})",
        config.count,
        config.target,
        config.batch,
        config.concurrency,
        config.rate.map_or_else(|| "as fast as possible".to_owned(), |r| format!("{r} orders/s"))
    );
    let report = court_push::run(&config, Utc::now).await?;
    println!("{}", report.summary());
    let failed: u64 = report.by_status.iter().filter(|(s, _)| !matches!(s, 200 | 422)).map(|(_, n)| n).sum();
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The flow parameters of the command line.
pub(crate) fn flow_params(args: &FlowArgs) -> anyhow::Result<FlowParams> {
    let parse = |text: &str| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .with_context(|| format!("{text:?} is not a date like 2024-01-01"))
    };
    let from = parse(&args.from)?;
    let to = match &args.to {
        Some(to) => parse(to)?,
        None => domain::time::local_date(Utc::now()),
    };
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let mut params = FlowParams::new(to, args.seed);
    params.from = from;
    params.yearly_volume = args.volume;
    Ok(params)
}

/// `simulate --listen`: the partner servers over a generated flow, until Ctrl-C.
async fn serve_partners(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let Some(listen) = args.listen else {
        bail!(
            "say where to serve the partner systems with --listen ADDR (e.g. 127.0.0.1:0), or choose court-push or generate"
        );
    };
    for (name, rate) in [
        ("--error-rate", args.error_rate),
        ("--truncate-rate", args.truncate_rate),
        ("--malformed-rate", args.malformed_rate),
        ("--out-of-order-rate", args.out_of_order_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            bail!("{name} must be between 0 and 1");
        }
    }
    let params = flow_params(&args.flow)?;
    eprintln!(
        "generating the case flow {} to {} ({} cases a year, seed {})…",
        params.from, params.to, params.yearly_volume, params.seed
    );
    let flow = caseflow::generate(&params);
    eprintln!(
        "{} cases, {} QC findings, {} evaluations",
        flow.cases.len(),
        flow.qc_findings.len(),
        flow.evaluations.len()
    );
    let faults = simulator::servers::faults::Faults {
        latency: std::time::Duration::from_millis(args.latency_ms),
        error_rate: args.error_rate,
        truncate_rate: args.truncate_rate,
        outage: false,
        malformed_rate: args.malformed_rate,
        out_of_order_rate: args.out_of_order_rate,
    };
    let servers = simulator::servers::start(listen, &flow, params.to, faults, params.seed)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    // Listen for Ctrl-C before announcing the URLs, so a caller that signals at once is heard.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    if let Some(path) = &args.write_config {
        write_config(path, &servers, &flow)?;
        eprintln!("wrote {} (connectors pointing at these servers)", path.display());
    }
    println!("registry {}", servers.registry_url());
    println!("housing {}", servers.housing_url());
    for code in simulator::servers::lenders::bank_codes(&flow) {
        println!("bank:{code} {} (token {})", servers.bank_url(&code), simulator::servers::lenders::bank_token(&code));
    }
    println!("provident_fund {}", servers.gjj_url());
    println!("court_platform {}", servers.court_url());
    eprintln!("serving; Ctrl-C stops");
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    servers.stop().await?;
    Ok(ExitCode::SUCCESS)
}

/// `simulate generate`: the case flow in memory, timed.
fn run_generate(args: &FlowArgs) -> anyhow::Result<ExitCode> {
    let params = flow_params(args)?;
    let (from, to) = (params.from, params.to);
    let started = std::time::Instant::now();
    let flow = caseflow::generate(&params);
    let elapsed = started.elapsed();
    let online = flow.cases.iter().filter(|c| c.channel.is_online()).count();
    println!(
        "{}",
        serde_json::json!({
            "from": from.to_string(), "to": to.to_string(), "seed": args.seed,
            "cases": flow.cases.len(), "online_share": online as f64 / flow.cases.len().max(1) as f64,
            "filings": flow.filings.len(), "loans": flow.loans.len(), "qc_findings": flow.qc_findings.len(),
            "evaluations": flow.evaluations.len(), "anomalies": flow.anomalies.len(),
            "elapsed_ms": elapsed.as_millis(),
        })
    );
    Ok(ExitCode::SUCCESS)
}

/// Connector settings pointing at the running servers.
pub(crate) fn connectors_for(
    servers: &simulator::servers::PartnerServers,
    flow: &caseflow::Flow,
) -> crate::settings::ConnectorsSettings {
    use crate::settings::{BankSettings, ConnectorsSettings, FeedSettings};
    let every = |minutes: u32| format!("0 */{minutes} * * * *");
    let feed = |base_url: String, schedule: String| Some(FeedSettings { base_url, schedule, enabled: true });
    ConnectorsSettings {
        registry: feed(servers.registry_url(), every(5)),
        housing: feed(servers.housing_url(), "0 0 1 * * *".into()),
        provident_fund: feed(servers.gjj_url(), every(10)),
        court_platform: feed(servers.court_url(), every(1)),
        banks: simulator::servers::lenders::bank_codes(flow)
            .into_iter()
            .map(|code| BankSettings {
                base_url: servers.bank_url(&code),
                token: simulator::servers::lenders::bank_token(&code),
                id: code,
                schedule: every(10),
                enabled: true,
            })
            .collect(),
        ..ConnectorsSettings::default()
    }
}

/// Writes a config whose `[connectors]` point at the running servers.
pub(crate) fn write_config(
    path: &std::path::Path,
    servers: &simulator::servers::PartnerServers,
    flow: &caseflow::Flow,
) -> anyhow::Result<()> {
    #[derive(serde::Serialize)]
    struct Written {
        connectors: crate::settings::ConnectorsSettings,
    }
    let text = format!(
        "# Written by wangban: connectors pointing at the simulated partners.\n{}",
        toml::to_string(&Written { connectors: connectors_for(servers, flow) }).context("cannot render the config")?
    );
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `simulate --exchange-db URL`: the registry's cases in a gtmap-style exchange table.
async fn write_exchange(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    use simulator::exchange::{self, Exchange, ExchangeCase};
    let url = args.exchange_db.as_deref().unwrap_or_default();
    let x = Exchange::connect(url).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to the exchange database: {}",
            connectors::partner::table::redact(&e.to_string(), url)
        )
    })?;
    x.create_cases_table().await.context("cannot create BDC_YW_SL")?;
    let today = Utc::now().date_naive();
    let cases = exchange::cases(args.exchange_cases, args.flow.seed, today);
    let clock = x.clock().await?;
    let n = cases.len();
    let third = n / 3;
    // Hundreds of rows with one timestamp across page boundaries.
    x.write_at(&cases[..third], clock - chrono::Duration::minutes(10), 'I').await?;
    // A transaction holds earlier timestamps open while later rows commit.
    let held = x.hold(&cases[third..third + third / 10], clock - chrono::Duration::minutes(5), 'I').await?;
    for (i, chunk) in cases[third + third / 10..].chunks(50).enumerate() {
        x.write_at(chunk, clock - chrono::Duration::minutes(4) + chrono::Duration::milliseconds(i as i64 * 7), 'I')
            .await?;
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    held.commit().await?;
    // Second versions, and logical deletes of every fiftieth case.
    let later = x.clock().await?;
    let second: Vec<ExchangeCase> = cases.iter().map(|c| ExchangeCase { zt: "办结".into(), ..c.clone() }).collect();
    for (i, chunk) in second.chunks(100).enumerate() {
        x.write_at(chunk, later + chrono::Duration::milliseconds(i as i64), 'U').await?;
    }
    let deleted: Vec<ExchangeCase> = cases.iter().step_by(50).cloned().collect();
    x.write_at(&deleted, later + chrono::Duration::seconds(1), 'D').await?;
    eprintln!(
        "wrote {n} cases twice into {} ({} held back 3 s with earlier timestamps, {} deleted)",
        exchange::CASES_TABLE,
        third / 10,
        deleted.len()
    );
    if let Some(path) = &args.write_config {
        let section = exchange::adapter_toml("{ env = \"WANGBAN_EXCHANGE_URL\" }", "increment")
            .replace("[table", "[partners.gtmap.table")
            .replace("[fields]", "[partners.gtmap.fields]")
            .replace("[codes.", "[partners.gtmap.codes.");
        let text = format!("# Set WANGBAN_EXCHANGE_URL to the exchange database's URL.\n[partners.gtmap]\n{section}");
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {} (set WANGBAN_EXCHANGE_URL)", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
