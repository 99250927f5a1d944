//! `wangban quarantine list|replay`: the records connectors kept back, and
//! (`list --findings`) the flawed fields of records they kept.

use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use connectors::replay::{ReplayError, replay};
use serde_json::json;

use crate::cli::{QuarantineArgs, QuarantineCommand};
use crate::settings::Settings;

pub(crate) async fn run(args: QuarantineArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let code = match args.command {
        QuarantineCommand::List { source, limit, findings: true, .. } => {
            for finding in store.list_data_findings(source.as_deref(), limit).await? {
                println!(
                    "{}",
                    json!({
                        "source": finding.source, "record": finding.record_key, "field": finding.field,
                        "rule": finding.rule, "detail": finding.detail, "value": finding.value_masked,
                        "found_at": finding.found_at.to_rfc3339(),
                    })
                );
            }
            for count in store.count_data_findings().await? {
                if source.as_deref().is_none_or(|s| s == count.source) {
                    println!(
                        "{}",
                        json!({ "source": count.source, "field": count.field, "rule": count.rule, "records": count.records })
                    );
                }
            }
            ExitCode::SUCCESS
        }
        QuarantineCommand::List { source, all, limit, .. } => {
            for entry in store.list_quarantine(source.as_deref(), !all, limit).await? {
                println!(
                    "{}",
                    json!({
                        "id": entry.id, "created_at": entry.created_at.to_rfc3339(), "source": entry.source,
                        "position": entry.position, "reason_code": entry.reason_code, "reason": entry.reason,
                        // Raw partner bytes may be GBK: shown lossily here, kept exactly in the store.
                        "record": String::from_utf8_lossy(&entry.payload),
                        "replayed_at": entry.replayed_at.map(|t| t.to_rfc3339()), "replay_outcome": entry.replay_outcome,
                    })
                );
            }
            ExitCode::SUCCESS
        }
        QuarantineCommand::Replay { id, payload } => {
            let fixed = match &payload {
                Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?),
                None => None,
            };
            match replay(&store, id, fixed.as_deref(), Utc::now()).await {
                Ok(outcome) => {
                    println!("{}", json!({ "id": id, "replayed": format!("{outcome:?}").to_lowercase() }));
                    ExitCode::SUCCESS
                }
                Err(ReplayError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    };
    store.close().await;
    Ok(code)
}
