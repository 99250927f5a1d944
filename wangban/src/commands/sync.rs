//! `wangban sync [--connector NAME]`: one pull of each configured connector, with counts.

use std::process::ExitCode;

use anyhow::bail;
use chrono::Utc;
use connectors::poll::poll_once;
use connectors::registry::RegistryCases;
use serde_json::json;

use crate::EXIT_USAGE;
use crate::cli::SyncArgs;
use crate::settings::Settings;

pub(crate) async fn run(args: &SyncArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let selected: Vec<_> = settings
        .connectors
        .entries()
        .into_iter()
        .filter(|c| c.enabled || args.connector.is_some())
        .filter(|c| args.connector.as_ref().is_none_or(|wanted| *wanted == c.name))
        .collect();
    if selected.is_empty() {
        match &args.connector {
            Some(name) => bail!("no connector {name:?} in the configuration ([connectors.{name}])"),
            None => bail!(
                "no connectors configured: add [connectors.NAME] sections (see `wangban simulate --write-config`)"
            ),
        }
    }
    let store = settings.open_store().await?;
    let mut failed = false;
    let mut unavailable = false;
    for connector in selected {
        let name = &connector.name;
        if connector.kind != "registry" {
            eprintln!("{name}: connectors of kind {} are not available yet", connector.kind);
            unavailable = true;
            continue;
        }
        let source = RegistryCases::new(name, connector.base_url);
        eprintln!("{name}: pulling {}", connector.base_url);
        let started = std::time::Instant::now();
        let outcome = poll_once(&source, &store, Utc::now(), args.max_pages).await?;
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
    Ok(if failed {
        ExitCode::FAILURE
    } else if unavailable && args.connector.is_some() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    })
}
