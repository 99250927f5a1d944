//! `wangban audit verify|list`: the hash-chained audit log from the command line.

use std::process::ExitCode;

use chrono::SecondsFormat;
use serde_json::json;

use crate::cli::{AuditArgs, AuditCommand};
use crate::settings::Settings;

pub(crate) async fn run(args: &AuditArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    match args.command {
        AuditCommand::Verify => match store.verify_audit_chain().await? {
            Ok(entries) => {
                // The newest hash: kept somewhere else (a daily log line, a ticket), it also
                // shows when entries were cut off the end, which the chain alone cannot.
                let head = store.recent_audit(1).await?.into_iter().next().map(|e| e.hash);
                println!("{}", json!({ "chain": "intact", "entries": entries, "head_hash": head }));
                Ok(ExitCode::SUCCESS)
            }
            Err(broken) => {
                println!("{}", json!({ "chain": "broken", "first_bad_entry": broken.id, "reason": broken.reason }));
                eprintln!(
                    "error: the audit chain breaks at entry {}: {}; entries from there on cannot be trusted",
                    broken.id, broken.reason
                );
                Ok(ExitCode::FAILURE)
            }
        },
        AuditCommand::List { limit } => {
            if !(1..=100_000).contains(&limit) {
                anyhow::bail!("--limit must be between 1 and 100000, not {limit}");
            }
            for e in store.recent_audit(limit).await? {
                println!(
                    "{}",
                    json!({ "id": e.id, "at": e.at.to_rfc3339_opts(SecondsFormat::Millis, true), "actor": e.actor,
                            "action": e.action, "subject": e.subject, "detail": e.detail, "hash": e.hash })
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
