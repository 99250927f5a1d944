//! `wangban simulate …`: today the court-push load generator.

use std::process::ExitCode;

use anyhow::bail;
use chrono::Utc;
use simulator::court_push::{self, PushConfig};

use crate::cli::{SimulateArgs, SimulateCommand};

pub(crate) async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let Some(SimulateCommand::CourtPush(push)) = args.command else {
        return Ok(super::unavailable::say("simulate"));
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
