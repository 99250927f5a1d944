//! `wangban sync [--connector NAME]`: one pull of each configured connector,
//! with a progress line, counts printed as JSON lines; after a full sync the
//! partner records are reconciled with the cases.

use std::io::IsTerminal;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::bail;
use chrono::{DateTime, Utc};
use connectors::poll::{Outcome, RunOptions};
use domain::Calendar;
use serde_json::json;

use crate::cli::SyncArgs;
use crate::settings::Settings;

/// Working days a partner record may wait for its registry case before it
/// counts as missing: the longest committed limit (5 working days).
pub(crate) const RECONCILE_AFTER_WORKING_DAYS: u32 = 5;

/// The instant before which partner records have had their limit, on `now`'s day.
pub(crate) fn reconcile_cutoff(calendar: &Calendar, now: DateTime<Utc>) -> DateTime<Utc> {
    let mut day = domain::time::local_date(now);
    let mut counted = 0;
    while counted < RECONCILE_AFTER_WORKING_DAYS {
        day = day.pred_opt().unwrap_or(day);
        if calendar.is_working_day(day) {
            counted += 1;
        }
    }
    domain::time::local_day_end(day.pred_opt().unwrap_or(day))
}

/// Reconciles partner records as of `now` and logs what was found.
pub(crate) async fn reconcile(
    store: &store::Store,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> anyhow::Result<store::reconcile::ReconcileReport> {
    let today = domain::time::local_date(now);
    let report = store.reconcile(today, reconcile_cutoff(calendar, now), now).await?;
    tracing::info!(message = "reconciliation", anomalies = report.found, new = report.new);
    Ok(report)
}

fn matches(name: &str, wanted: &str) -> bool {
    name == wanted || name.strip_prefix(wanted).is_some_and(|rest| rest.starts_with('-'))
}

pub(crate) async fn run(args: &SyncArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let calendar = settings.calendar()?;
    let all = connectors::runner::build(&settings.connector_specs(args.connector.is_some()))?;
    let selected: Vec<_> = all
        .into_iter()
        .filter(|s| args.connector.as_deref().is_none_or(|wanted| matches(s.connector.name(), wanted)))
        .collect();
    if selected.is_empty() {
        match &args.connector {
            Some(name) => bail!(
                "no connector {name:?} in the configuration ([connectors.*], [[connectors.banks]] and [partners.*])"
            ),
            None => bail!(
                "no connectors configured: add [connectors.NAME] sections (see `wangban simulate --write-config`)"
            ),
        }
    }
    let store = settings.open_store().await?;
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let mut failed = false;
    for scheduled in &selected {
        let name = scheduled.connector.name().to_owned();
        let started = std::time::Instant::now();
        let progress = |o: &Outcome| {
            if show_progress {
                let rate = o.rows() as f64 / started.elapsed().as_secs_f64().max(1e-9);
                eprint!(
                    "\r{name}: {} pages, {} rows, {} quarantined, {rate:.0} rows/s   ",
                    o.pages,
                    o.rows(),
                    o.quarantined
                );
                let _ = std::io::stderr().flush();
            }
        };
        let options = RunOptions { now: Utc::now(), max_pages: args.max_pages, progress: &progress };
        let outcome = scheduled.connector.run(&store, options).await?;
        if show_progress {
            eprintln!();
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({
                "connector": name, "pages": outcome.pages, "rows": outcome.rows(), "inserted": outcome.inserted,
                "updated": outcome.updated, "unchanged": outcome.unchanged, "stale": outcome.stale,
                "quarantined": outcome.quarantined, "seconds": (seconds * 1000.0).round() / 1000.0,
                "rows_per_second": (outcome.rows() as f64 / seconds.max(1e-9)).round(), "error": outcome.error,
            })
        );
        failed |= outcome.error.is_some();
    }
    // Exchange tables pulled without failure: each of the last week's days
    // counted against the partner's, a differing day read again whole.
    if !failed {
        let tables: Vec<&connectors::partner::Partner> = selected
            .iter()
            .filter_map(|s| match &s.connector {
                connectors::runner::Connector::Partner(p) if p.table().is_some() => Some(p),
                _ => None,
            })
            .collect();
        for check in reconcile_partner_days(&tables, &store, Utc::now()).await {
            println!("{check}");
        }
    }
    if args.connector.is_none() {
        let report = reconcile(&store, &calendar, Utc::now()).await?;
        println!(
            "{}",
            json!({
                "reconciliation": report.partners.iter().map(|r| json!({
                    "partner": r.partner, "submitted": r.submitted, "registered": r.registered,
                    "refused": r.refused, "missing": r.missing,
                })).collect::<Vec<_>>(),
                "anomalies": report.found, "new_anomalies": report.new,
            })
        );
    }
    store.close().await;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Days of exchange tables reconciled at each full pull and each daily reconciliation.
pub(crate) const RECONCILED_DAYS: u32 = 7;

/// The day reconciliation of `tables` over the last [`RECONCILED_DAYS`] days:
/// a JSON line per connector (its differing days and re-reads); a failure is
/// logged and reported in the line, and the others go on.
pub(crate) async fn reconcile_partner_days(
    tables: &[&connectors::partner::Partner],
    store: &store::Store,
    now: DateTime<Utc>,
) -> Vec<serde_json::Value> {
    use connectors::poll::Source as _;
    let mut out = Vec::new();
    for partner in tables {
        let today = domain::time::local_date(now);
        match connectors::partner::days::reconcile_days(partner, store, today, RECONCILED_DAYS, now).await {
            Ok(checks) => out.push(json!({
                "connector": partner.name(), "days_checked": checks.len(),
                "reread_rows": checks.iter().map(|c| c.reread_rows).sum::<i64>(),
                "days_reread": checks.iter().filter(|c| c.reread_rows > 0).map(|c| &c.day).collect::<Vec<_>>(),
                "days_differing": checks.iter().filter(|c| c.differs()).map(|c| json!({
                    "day": c.day, "partner": c.partner_rows, "ours": c.our_rows_after,
                })).collect::<Vec<_>>(),
            })),
            Err(error) => {
                tracing::warn!(message = "day reconciliation failed", connector = %partner.name(), %error);
                out.push(json!({ "connector": partner.name(), "day_reconciliation_error": error.to_string() }));
            }
        }
    }
    out
}
