//! `wangban seizures lapse|expiring`: the daily seizure job on demand, and the list operators watch.

use std::process::ExitCode;

use chrono::Utc;
use domain::seizure::SeizureRules;
use domain::time::local_date;
use serde_json::json;

use crate::cli::{SeizuresArgs, SeizuresCommand};
use crate::settings::Settings;

pub(crate) async fn run(args: &SeizuresArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let now = Utc::now();
    let today = local_date(now);
    match args.command {
        SeizuresCommand::Lapse => {
            let report = court_orders::lapse_expired(&store, SeizureRules::default(), today, now).await?;
            println!(
                "{}",
                json!({ "today": today.to_string(), "units": report.units, "lapsed": report.lapsed, "promoted": report.promoted })
            );
        }
        SeizuresCommand::Expiring { days } => {
            for s in store.seizures_expiring_within(today, days).await? {
                println!(
                    "{}",
                    json!({ "partner_id": s.partner_id, "order_no": s.order_no, "unit_no": s.unit_no, "case_no": s.case_no,
                            "start_date": s.start_date.to_string(), "end_date": s.end_date.to_string() })
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
