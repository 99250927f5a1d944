//! `wangban simulate …`: today the court-push load generator.

use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::Utc;
use simulator::caseflow::{self, FlowParams};
use simulator::court_push::{self, PushConfig};

use crate::cli::{GenerateArgs, SimulateArgs, SimulateCommand};

pub(crate) async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let push = match args.command {
        Some(SimulateCommand::CourtPush(push)) => push,
        Some(SimulateCommand::Generate(generate)) => return run_generate(&generate),
        None => return Ok(super::unavailable::say("simulate")),
    };
    if push.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        bail!("--rate must be a positive number of orders per second");
    }
    let config = PushConfig {
        target: push.target,
        partner: push.partner,
        secret: push.secret,
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
    let report = court_push::run(&config, Utc::now).await.map_err(anyhow::Error::msg)?;
    println!("{}", report.summary());
    let failed: u64 = report.by_status.iter().filter(|(s, _)| !matches!(s, 200 | 422)).map(|(_, n)| n).sum();
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `simulate generate`: the case flow in memory, timed.
fn run_generate(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let parse = |text: &str| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .with_context(|| format!("{text:?} is not a date like 2024-01-01"))
    };
    let from = parse(&args.from)?;
    let to = match &args.to {
        Some(to) => parse(to)?,
        None => domain::court_order::local_date(Utc::now()),
    };
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let mut params = FlowParams::new(to, args.seed);
    params.from = from;
    params.yearly_volume = args.volume;
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
