//! `wangban partner …`: register partners and manage their signing secrets;
//! `partner check` runs the onboarding conformance suite against a partner's test endpoint.

use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{TimeDelta, Utc};
use connectors::conformance;
use domain::PartnerKind;
use rand::RngCore;
use serde_json::json;
use store::partners::PartnerStatus;

use crate::cli::{PartnerArgs, PartnerCommand};
use crate::settings::Settings;

/// A configured connector that runs through the partner engine, by name.
fn configured(settings: &Settings, name: &str) -> anyhow::Result<connectors::partner::Partner> {
    let all = connectors::runner::build(&settings.connector_specs(true))?;
    let mut names = Vec::new();
    for scheduled in all {
        let connector_name = scheduled.connector.name().to_owned();
        if let connectors::runner::Connector::Partner(p) = scheduled.connector {
            if connector_name == name {
                return Ok(p);
            }
            names.push(connector_name);
        }
    }
    bail!(
        "no configured partner {name:?}; configured: {}",
        if names.is_empty() { "none".to_owned() } else { names.join(", ") }
    )
}

/// Shortest secret accepted from the command line.
const MIN_SECRET_LEN: usize = 32;

pub(crate) async fn run(args: PartnerArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    match args.command {
        PartnerCommand::Check { connector: Some(name), lang: _, json, .. } => {
            let partner = configured(settings, &name)?;
            let lines = connectors::partner::inspect::check(&partner, now).await;
            for l in &lines {
                let tag = match l.level {
                    "pass" => "通过",
                    "warn" => "注意",
                    _ => "失败",
                };
                println!("{tag}  {:<10} {}", l.check, l.detail);
            }
            if let Some(path) = json {
                let value: Vec<_> =
                    lines.iter().map(|l| json!({"level": l.level, "check": l.check, "detail": l.detail})).collect();
                std::fs::write(&path, serde_json::to_string_pretty(&value)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if lines.iter().any(|l| l.level == "fail") {
                return Ok(ExitCode::FAILURE);
            }
        }
        PartnerCommand::Reconcile { connector, days } => {
            let partner = configured(settings, &connector)?;
            if !(1..=366).contains(&days) {
                bail!("--days is 1 to 366");
            }
            let store = settings.open_store().await?;
            let checks =
                connectors::partner::days::reconcile_days(&partner, &store, domain::time::local_date(now), days, now)
                    .await;
            store.close().await;
            let checks = checks.with_context(|| format!("cannot reconcile {connector}"))?;
            for c in &checks {
                println!(
                    "{}",
                    json!({
                        "day": c.day, "partner_rows": c.partner_rows, "ours_before": c.our_rows_before,
                        "ours_after": c.our_rows_after, "reread_rows": c.reread_rows, "differs": c.differs(),
                    })
                );
            }
            if checks.iter().any(store::day_checks::DayCheck::differs) {
                eprintln!(
                    "some days still differ after their re-read: their rows are in quarantine (wangban quarantine list)"
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        PartnerCommand::Map { connector, limit, json } => {
            let partner = configured(settings, &connector)?;
            let previews = connectors::partner::inspect::preview(&partner, limit)
                .await
                .with_context(|| format!("cannot read {connector}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&connectors::partner::inspect::previews_json(&previews))?);
            } else {
                print!("{}", connectors::partner::inspect::render_previews(&partner, &previews));
            }
        }
        PartnerCommand::Check { kind, base_url, token, lang, json, connector: None } => {
            let kind = kind.unwrap_or_default();
            let base_url = base_url.unwrap_or_default();
            let kind = conformance::PartnerKind::parse(&kind).with_context(|| {
                format!(
                    "unknown partner kind {kind:?}; expected registry, housing, bank, provident_fund or court_platform"
                )
            })?;
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                bail!("--base-url must be an http:// or https:// URL, not {base_url:?}");
            }
            let report = conformance::check(kind, &conformance::CheckOptions::new(&base_url, token.as_deref())).await;
            print!("{}", report.render(lang == "en"));
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report.to_json())?;
                std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            }
            if !report.passed() {
                return Ok(ExitCode::FAILURE);
            }
        }
        PartnerCommand::Add { kind, id, name, secret, sandbox } => {
            let kind = PartnerKind::from_code(&kind).with_context(|| {
                format!(
                    "unknown partner kind {kind:?}; expected one of {}",
                    PartnerKind::ALL.map(PartnerKind::code).join(", ")
                )
            })?;
            check_id(&id)?;
            if sandbox && kind != PartnerKind::Court {
                bail!("--sandbox is for partners that push orders, that is --kind court, not {}", kind.code());
            }
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let secret = match secret {
                Some(s) if s.len() < MIN_SECRET_LEN => bail!("--secret must be at least {MIN_SECRET_LEN} characters"),
                Some(s) => s,
                None => generate_secret(),
            };
            let store = settings.open_store().await?;
            if sandbox {
                let partner = store
                    .create_sandbox_partner(&id, name.trim(), &secret, now)
                    .await
                    .with_context(|| format!("cannot add sandbox partner {id}"))?;
                settings.open_sandbox_store().await?.mirror_sandbox_partner(&partner).await?;
            } else {
                store
                    .create_partner(&id, kind, name.trim(), &secret, now)
                    .await
                    .with_context(|| format!("cannot add partner {id}"))?;
            }
            println!("{}", json!({ "id": id, "secret": secret, "sandbox": sandbox }));
        }
        PartnerCommand::List => {
            let store = settings.open_store().await?;
            for p in store.list_partners().await? {
                let status = match p.status {
                    PartnerStatus::Active => "active",
                    PartnerStatus::Disabled => "disabled",
                };
                println!(
                    "{}",
                    json!({ "id": p.id, "kind": p.kind.code(), "name": p.name, "status": status, "sandbox": p.sandbox, "created_at": p.created_at.to_rfc3339() })
                );
            }
        }
        PartnerCommand::Rotate { id, grace_days } => {
            let store = settings.open_store().await?;
            let secret = generate_secret();
            let grace_until = now + TimeDelta::days(i64::from(grace_days));
            store
                .rotate_partner_secret(&id, &secret, grace_until, now)
                .await
                .with_context(|| format!("cannot rotate {id}"))?;
            println!(
                "{}",
                json!({ "id": id, "secret": secret, "previous_secrets_valid_until": grace_until.to_rfc3339() })
            );
        }
        PartnerCommand::Disable { id } => {
            let store = settings.open_store().await?;
            store
                .set_partner_status(&id, PartnerStatus::Disabled, now)
                .await
                .with_context(|| format!("cannot disable {id}"))?;
            eprintln!("partner {id} disabled");
        }
        PartnerCommand::Enable { id } => {
            let store = settings.open_store().await?;
            store
                .set_partner_status(&id, PartnerStatus::Active, now)
                .await
                .with_context(|| format!("cannot enable {id}"))?;
            eprintln!("partner {id} enabled");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Partner ids travel in an HTTP header: ASCII letters, digits, `.`, `_`, `-`, at most 64.
fn check_id(id: &str) -> anyhow::Result<()> {
    if id.is_empty()
        || id.len() > 64
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        bail!("invalid partner id {id:?}: use 1 to 64 ASCII letters, digits, '.', '_' or '-'");
    }
    Ok(())
}

/// 32 random bytes, hex-encoded.
fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_header_safe() {
        assert!(check_id("court-0405").is_ok());
        assert!(check_id("法院").is_err());
        assert!(check_id("a b").is_err());
        assert!(check_id("").is_err());
    }

    #[test]
    fn generated_secrets_are_long_and_distinct() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
