//! Alerts: evaluated after each warehouse refresh (`wangban warehouse refresh`,
//! and `serve` when it sees a new snapshot), kept in the store, shown on the
//! dashboards, and POSTed to the configured webhook, at least once per change
//! (fired or resolved). `wangban alerts list|check` from the command line.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use store::Store;
use store::alerts::{Alert, AlertChanges};
use warehouse::cache::OpenSnapshot;

use crate::cli::{AlertsArgs, AlertsCommand};
use crate::settings::{AlertSettings, Settings, WebhookFormat};

/// Evaluates every rule (the online-rate rule on `snapshot` when there is
/// one), records the states, and delivers what the webhook has not been told.
pub(crate) async fn evaluate_and_notify(
    store: &Store,
    snapshot: Option<&OpenSnapshot>,
    rules: &warehouse::alerts::AlertRules,
    settings: &AlertSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<AlertChanges> {
    let (kinds, observed) =
        warehouse::alerts::evaluate(snapshot, store, rules, now).await.context("evaluating the alert rules")?;
    let snapshot_id = snapshot.map(|s| s.manifest.snapshot_id.as_str());
    let changes = store.record_alert_evaluation(&kinds, &observed, snapshot_id, now).await?;
    for (kind, subject) in &changes.fired {
        let summary = observed.iter().find(|o| &o.kind == kind && &o.subject == subject).map(|o| o.summary.as_str());
        tracing::warn!(message = "alert firing", kind = %kind, subject = %subject, summary = summary.unwrap_or(""));
    }
    for (kind, subject) in &changes.resolved {
        tracing::info!(message = "alert resolved", kind = %kind, subject = %subject);
    }
    if let Err(error) = deliver_pending(store, settings, now).await {
        tracing::warn!(message = "alert webhook delivery failed; it is retried", error = %format!("{error:#}"));
    }
    Ok(changes)
}

/// [`evaluate_and_notify`] on the warehouse's current snapshot, opened afresh
/// (without a snapshot, the online-rate rule is left out, with a warning):
/// what `warehouse refresh` runs after publishing one, and `alerts check`.
pub(crate) async fn evaluate_on_current_snapshot(
    store: &Store,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<AlertChanges> {
    let cache = warehouse::cache::SnapshotCache::default();
    let snapshot = match cache
        .current(&settings.warehouse_dir(), settings.warehouse.sql_memory_mb << 20, &settings.warehouse.engine)
        .await
    {
        Ok(open) => Some(open),
        Err(warehouse::WarehouseError::NoSnapshot(message)) => {
            eprintln!("warning: {message}; the online-rate rule is not evaluated");
            None
        }
        Err(error) => return Err(error).context("opening the warehouse snapshot"),
    };
    let rules = settings.alerts.rules(&settings.calendar()?);
    evaluate_and_notify(store, snapshot.as_deref(), &rules, &settings.alerts, now).await
}

/// Sends every alert change the webhook has not acknowledged, in one POST;
/// returns how many were sent (0 with no webhook configured or nothing pending).
/// A failure is recorded on the alerts and returned; the next call retries.
pub(crate) async fn deliver_pending(
    store: &Store,
    settings: &AlertSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let Some(url) = settings.webhook_url.as_deref() else { return Ok(0) };
    let pending = store.pending_alert_notifications().await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let body = payload(&pending, settings.webhook_format, now);
    let outcome = post(url, &body, Duration::from_secs(settings.webhook_timeout_seconds.max(1))).await;
    let error = outcome.as_ref().err().map(|e| format!("{e:#}"));
    store.record_alert_delivery(&pending, error.as_deref(), now).await?;
    match error {
        None => {
            tracing::info!(message = "alerts delivered", count = pending.len(), webhook = %redact_webhook(url));
            Ok(pending.len())
        }
        Some(error) => anyhow::bail!("POST {}: {error}", redact_webhook(url)),
    }
}

/// Announces a kept monthly report on the webhook with its headline
/// figures (nothing without a webhook).
pub(crate) async fn announce_report(
    kept: &dashboards::report::Kept,
    settings: &AlertSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let Some(url) = settings.webhook_url.as_deref() else { return Ok(()) };
    let body = report_payload(kept, settings.webhook_format, now);
    post(url, &body, Duration::from_secs(settings.webhook_timeout_seconds.max(1))).await?;
    tracing::info!(message = "monthly report announced", month = %kept.month, webhook = %redact_webhook(url));
    Ok(())
}

/// The webhook's body announcing `kept`.
pub(crate) fn report_payload(kept: &dashboards::report::Kept, format: WebhookFormat, now: DateTime<Utc>) -> Value {
    let download = format!("/reports/{}/xlsx", kept.month);
    match format {
        WebhookFormat::Json => json!({
            "source": "wangban",
            "sent_at": time(now),
            "report": {
                "kind": "monthly",
                "month": kept.month,
                "snapshot_id": kept.snapshot_id,
                "online_rate": kept.online_rate,
                "numerator": kept.numerator,
                "denominator": kept.denominator,
                "target": warehouse::kpi::TARGET_ONLINE_RATE,
                "needed_for_target": kept.needed_for_target,
                "download": download,
            },
        }),
        WebhookFormat::Robot => {
            let rate = kept.online_rate.map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0));
            let counts = match (kept.numerator, kept.denominator) {
                (Some(n), Some(d)) => format!("（{n}/{d} 件）"),
                _ => String::new(),
            };
            let gap = if kept.needed_for_target > 0 {
                format!("，距 90% 目标还需网办 {} 件", kept.needed_for_target)
            } else {
                "，已达到 90% 目标".to_owned()
            };
            json!({ "msgtype": "text", "text": { "content": format!(
                "不动产登记网办监测\n【月报】{} 网办率 {rate}{counts}{gap}。下载：{download}", kept.month
            ) } })
        }
    }
}

async fn post(url: &str, body: &Value, timeout: Duration) -> anyhow::Result<()> {
    // The partner client: system roots plus `connectors.ca_file`, for an https webhook too.
    let answer = connectors::fetch::client().post(url).timeout(timeout).json(body).send().await?;
    let status = answer.status();
    if !status.is_success() {
        let text = answer.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        anyhow::bail!("answered {status}: {text}");
    }
    Ok(())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The webhook's body for `alerts`.
pub(crate) fn payload(alerts: &[Alert], format: WebhookFormat, now: DateTime<Utc>) -> Value {
    match format {
        WebhookFormat::Json => json!({
            "source": "wangban",
            "sent_at": time(now),
            "alerts": alerts.iter().map(alert_json).collect::<Vec<_>>(),
        }),
        WebhookFormat::Robot => {
            let lines: Vec<String> = alerts
                .iter()
                .map(|a| {
                    let mark = if a.is_firing() { "【告警】" } else { "【恢复】" };
                    format!("{mark}{}", a.summary)
                })
                .collect();
            json!({ "msgtype": "text", "text": { "content": format!("不动产登记网办监测\n{}", lines.join("\n")) } })
        }
    }
}

fn alert_json(a: &Alert) -> Value {
    json!({
        "kind": a.kind, "subject": a.subject, "state": a.state, "severity": a.severity, "summary": a.summary,
        "value": a.value, "threshold": a.threshold, "since": time(a.since), "snapshot_id": a.snapshot_id,
    })
}

/// A webhook URL fit for logs: its query (robot keys live there) replaced by `***`.
pub(crate) fn redact_webhook(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?***"),
        None => url.to_owned(),
    }
}

pub(crate) async fn run(args: &AlertsArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let code = match args.command {
        AlertsCommand::List { all } => {
            for a in store.alerts().await? {
                if all || a.is_firing() {
                    println!("{}", alert_json(&a));
                }
            }
            ExitCode::SUCCESS
        }
        AlertsCommand::Check => {
            let changes = evaluate_on_current_snapshot(&store, settings, Utc::now()).await?;
            let firing: Vec<Value> = store.alerts().await?.iter().filter(|a| a.is_firing()).map(alert_json).collect();
            println!(
                "{}",
                json!({ "fired": changes.fired.len(), "resolved": changes.resolved.len(),
                        "continuing": changes.continuing, "firing": firing })
            );
            // Like a monitoring plugin: 0 when all is well, 1 while anything fires.
            if firing.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    };
    store.close().await;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robot_keys_stay_out_of_logs() {
        assert_eq!(
            redact_webhook("http://qyapi.internal/cgi-bin/webhook/send?key=secret"),
            "http://qyapi.internal/cgi-bin/webhook/send?***"
        );
        assert_eq!(redact_webhook("http://hook.internal/x"), "http://hook.internal/x");
    }

    /// A kept report is announced with its headline: as wangban's JSON, or as
    /// a robot's text message in Chinese.
    #[test]
    fn a_report_is_announced_with_its_headline() {
        let kept = dashboards::report::Kept {
            month: "2026-10".into(),
            file: "wangban-月报-2026-10.xlsx".into(),
            snapshot_id: "20261101T010000Z".into(),
            made_at: "2026-11-01T01:00:00+00:00".into(),
            sha256: "00".into(),
            bytes: 1,
            online_rate: Some(0.884263),
            numerator: Some(6563),
            denominator: Some(7422),
            needed_for_target: 117,
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-01T01:00:05Z").map(|t| t.with_timezone(&Utc));
        let now = now.unwrap_or_default();
        let json = report_payload(&kept, WebhookFormat::Json, now);
        assert_eq!(json["report"]["month"], "2026-10");
        assert_eq!(json["report"]["needed_for_target"], 117);
        assert_eq!(json["report"]["download"], "/reports/2026-10/xlsx");
        let robot = report_payload(&kept, WebhookFormat::Robot, now);
        assert_eq!(robot["msgtype"], "text");
        let text = robot["text"]["content"].as_str().unwrap_or_default();
        assert!(text.contains("【月报】2026-10 网办率 88.4%（6563/7422 件），距 90% 目标还需网办 117 件"), "{text}");
    }
}
