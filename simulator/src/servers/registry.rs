//! The registry's business system (登记业务系统): cursor-paged JSON feeds of
//! cases, QC findings and evaluations with the vendor's field names.
//!
//! `GET /registry/v1/cases?cursor=C&limit=N` (N ≤ 5000, default 1000) answers
//! `{"data":[…],"next_cursor":"…","has_more":bool}`. A record is the latest
//! snapshot of a case at its `gxsj`; the stream is ordered by `gxsj`, and a
//! case corrected later reappears further on with a newer `gxsj`. Cursors are
//! opaque to clients. The flow's planted anomalies show here: duplicated
//! deliveries appear twice, late corrections appear again later.

use std::collections::HashSet;
use std::sync::Arc;

use crate::world::{Case, Evaluation, QcFinding};
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use domain::{AgentKind, ApplicantKind, BusinessType, CaseStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::caseflow::{Anomaly, Flow};
use crate::servers::faults::Faults;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Largest page.
pub const MAX_LIMIT: usize = 5000;

/// One feed: records in stream order, each with its `gxsj`.
#[derive(Debug, Default)]
struct Feed {
    records: Vec<Value>,
}

#[derive(Debug)]
struct Feeds {
    cases: Feed,
    qc_findings: Feed,
    evaluations: Feed,
}

/// Query of every feed.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

/// ISO 8601 in China time, as the vendor writes it.
pub fn china(t: DateTime<Utc>) -> String {
    domain::time::china_time(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn opt(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(china(t)))
}

/// The vendor's status code.
fn zt(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::Submitted | CaseStatus::Accepted | CaseStatus::Verified => "SL",
        CaseStatus::Correction => "BZ",
        CaseStatus::Recorded | CaseStatus::CertificatePrepared => "DB",
        CaseStatus::Issued => "FZ",
        CaseStatus::Archived => "GD",
        CaseStatus::Refused => "BYSL",
        CaseStatus::Withdrawn => "CH",
    }
}

/// The vendor's applicant kind: agents win over the applicant's own kind.
fn sqrlx(case: &Case) -> &'static str {
    match (case.agent_kind, case.applicant_kind) {
        (Some(AgentKind::Developer), _) => "3",
        (Some(AgentKind::Bank), _) => "4",
        (Some(AgentKind::ProvidentFund), _) => "5",
        (Some(AgentKind::Agency), _) => "6",
        (None, ApplicantKind::Judicial) => "7",
        (None, ApplicantKind::Enterprise) => "2",
        (None, ApplicantKind::Individual) => "1",
    }
}

/// A case as the registry's feed shows it.
pub fn case_json(case: &Case, gxsj: DateTime<Utc>) -> Value {
    let zjzl = if case.applicant_kind == ApplicantKind::Individual { "1" } else { "2" };
    let certificate = case.issued_at.map(|issued| {
        let kind = match case.business_type() {
            BusinessType::Mortgage | BusinessType::PreNoticeMortgage | BusinessType::PresaleNotice => "不动产证明",
            _ => "不动产权",
        };
        let serial: String = case.external_id.chars().filter(char::is_ascii_digit).collect();
        format!(
            "湘({})衡阳市{kind}第{}号",
            china(issued).get(..4).unwrap_or("2024"),
            &serial[serial.len().saturating_sub(7)..]
        )
    });
    json!({
        "ywh": case.external_id,
        "djlx": case.vendor_code.registration_category().to_string(),
        "sqlx": case.vendor_code.code().to_string(),
        "sqfs": case.channel.code().to_string(),
        "lzfs": case.delivery.map(|d| d.code().to_string()),
        "sqrlx": sqrlx(case),
        "sqr": [{ "xm": case.applicant_name, "zjzl": zjzl, "zjh": case.applicant_id_no }],
        "bdcdyh": case.unit_no.as_ref().map(|u| u.as_str().to_owned()),
        "xzqdm": case.district,
        "sjsj": china(case.submitted_at),
        "slsj": opt(case.accepted_at),
        "hdsj": opt(case.verified_at),
        "dbsj": opt(case.recorded_at),
        "szsj": opt(case.cert_prepared_at),
        "fzsj": opt(case.issued_at),
        "gdsj": opt(case.archived_at),
        "zt": zt(case.status),
        "bzcs": case.correction_count,
        "zsh": certificate.map_or_else(Vec::new, |c| vec![c]),
        "htbah": case.filing_no,
        "dkbh": case.loan_ref,
        "blr": case.handler,
        "kzqqdh": Value::Null,
        "gxsj": china(gxsj),
    })
}

/// A QC finding as the registry's feed shows it.
pub fn qc_json(q: &QcFinding) -> Value {
    json!({
        "id": q.external_id, "ywh": q.case_external_id, "jcsj": china(q.found_at), "cclx": q.category,
        "ccdj": q.severity.parse::<u8>().unwrap_or(1), "zrks": q.section, "ms": q.description,
        "zgsj": opt(q.corrected_at), "gxsj": china(q.source_updated_at),
    })
}

/// An evaluation as the registry's feed shows it.
pub fn evaluation_json(e: &Evaluation) -> Value {
    json!({
        "id": e.external_id, "ywh": e.case_external_id, "pjsj": china(e.evaluated_at),
        // The vendor counts 5 = very satisfied down to 1 = very dissatisfied.
        "pjdj": 6 - e.level, "pjqd": e.channel, "zgsj": opt(e.rectified_at), "gxsj": china(e.source_updated_at),
    })
}

fn build(flow: &Flow, faults: &Faults, seed: u64) -> Feeds {
    let duplicated: HashSet<&str> = flow
        .anomalies
        .iter()
        .filter_map(|a| match a {
            Anomaly::DuplicateDelivery { case } => Some(case.as_str()),
            _ => None,
        })
        .collect();
    let corrected: HashSet<&str> = flow
        .anomalies
        .iter()
        .filter_map(|a| match a {
            Anomaly::LateCorrection { case } => Some(case.as_str()),
            _ => None,
        })
        .collect();
    let mut cases: Vec<(DateTime<Utc>, Value)> = Vec::with_capacity(flow.cases.len());
    for case in &flow.cases {
        if corrected.contains(case.external_id.as_str()) {
            // First delivered with a wrong district, corrected a day later.
            let mut wrong = case.clone();
            wrong.district = "430400".into();
            cases.push((case.source_updated_at, case_json(&wrong, case.source_updated_at)));
            let later = case.source_updated_at + TimeDelta::days(1);
            cases.push((later, case_json(case, later)));
        } else {
            cases.push((case.source_updated_at, case_json(case, case.source_updated_at)));
        }
        if duplicated.contains(case.external_id.as_str()) {
            cases.push((case.source_updated_at, case_json(case, case.source_updated_at)));
        }
    }
    cases.sort_by_key(|(t, _)| *t);
    let cases = with_data_faults(cases, faults, seed);
    let mut qc: Vec<(DateTime<Utc>, Value)> =
        flow.qc_findings.iter().map(|q| (q.source_updated_at, qc_json(q))).collect();
    qc.sort_by_key(|(t, _)| *t);
    let mut evaluations: Vec<(DateTime<Utc>, Value)> =
        flow.evaluations.iter().map(|e| (e.source_updated_at, evaluation_json(e))).collect();
    evaluations.sort_by_key(|(t, _)| *t);
    let feed = |v: Vec<(DateTime<Utc>, Value)>| Feed { records: v.into_iter().map(|(_, r)| r).collect() };
    Feeds { cases: feed(cases), qc_findings: feed(qc), evaluations: feed(evaluations) }
}

fn page(feed: &Feed, query: &PageQuery) -> Response {
    let limit = query.limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_LIMIT {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": format!("limit must be 1 to {MAX_LIMIT}") })))
            .into_response();
    }
    let start = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => match cursor.strip_prefix("c").and_then(|n| usize::from_str_radix(n, 36).ok()) {
            Some(n) if n <= feed.records.len() => n,
            _ => {
                return (StatusCode::BAD_REQUEST, Json(json!({ "error": format!("unknown cursor {cursor:?}") })))
                    .into_response();
            }
        },
    };
    let end = (start + limit).min(feed.records.len());
    let data = &feed.records[start..end];
    let next = format!("c{}", radix36(end));
    Json(json!({ "data": data, "next_cursor": next, "has_more": end < feed.records.len() })).into_response()
}

fn radix36(mut n: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[n % 36]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The registry's routes (mounted under `/registry/v1`).
/// Applies the start-time data faults to the ordered case stream: malformed
/// records lose their application type (`sqlx`); out-of-order ones are
/// followed a little later by an older snapshot of the same case.
fn with_data_faults(cases: Vec<(DateTime<Utc>, Value)>, faults: &Faults, seed: u64) -> Vec<(DateTime<Utc>, Value)> {
    if faults.malformed_rate <= 0.0 && faults.out_of_order_rate <= 0.0 {
        return cases;
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5245_4749);
    let mut out = Vec::with_capacity(cases.len());
    let mut stale: Vec<(usize, (DateTime<Utc>, Value))> = Vec::new();
    for (i, (t, mut record)) in cases.into_iter().enumerate() {
        if faults.malformed_rate > 0.0
            && rng.random_bool(faults.malformed_rate.min(1.0))
            && let Some(map) = record.as_object_mut()
        {
            map.remove("sqlx");
        }
        if faults.out_of_order_rate > 0.0 && rng.random_bool(faults.out_of_order_rate.min(1.0)) {
            let mut older = record.clone();
            let then = t - TimeDelta::days(1);
            older["gxsj"] = Value::String(china(then));
            older["zt"] = Value::String("SL".into());
            stale.push((i + rng.random_range(1..20), (t, older)));
        }
        out.push((t, record));
        while let Some(pos) = stale.iter().position(|(at, _)| *at <= i) {
            out.push(stale.remove(pos).1);
        }
    }
    out.extend(stale.into_iter().map(|(_, r)| r));
    out
}

/// The registry's routes (mounted under `/registry/v1`), with the data faults of `faults`.
pub fn router(flow: &Flow, faults: &Faults, seed: u64) -> Router {
    let feeds = Arc::new(build(flow, faults, seed));
    Router::new()
        .route(
            "/cases",
            get(|State(f): State<Arc<Feeds>>, Query(q): Query<PageQuery>| async move { page(&f.cases, &q) }),
        )
        .route(
            "/qc-findings",
            get(|State(f): State<Arc<Feeds>>, Query(q): Query<PageQuery>| async move { page(&f.qc_findings, &q) }),
        )
        .route(
            "/evaluations",
            get(|State(f): State<Arc<Feeds>>, Query(q): Query<PageQuery>| async move { page(&f.evaluations, &q) }),
        )
        .with_state(feeds)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::NaiveDate;

    use super::*;
    use crate::servers::faults::Faults;
    use crate::servers::testing::get_json;

    fn small_flow() -> Flow {
        crate::servers::testing::flow(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 3, 3000, |p| {
            p.anomalies.duplicate_delivery = 0.05;
            p.anomalies.late_correction = 0.05;
        })
    }

    async fn all(base: &str, feed: &str, limit: usize) -> Vec<Value> {
        let mut cursor = String::new();
        let mut out = Vec::new();
        loop {
            let page = get_json(&format!("{base}/{feed}?cursor={cursor}&limit={limit}"), None).await;
            out.extend(page["data"].as_array().cloned().unwrap_or_default());
            cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
            if page["has_more"] == false {
                let again = get_json(&format!("{base}/{feed}?cursor={cursor}"), None).await;
                assert_eq!(again["data"].as_array().map(Vec::len), Some(0), "the end cursor stays valid and empty");
                return out;
            }
        }
    }

    #[tokio::test]
    async fn the_case_feed_pages_through_every_snapshot_in_gxsj_order() {
        let flow = small_flow();
        let servers = crate::servers::testing::serve(
            &flow,
            NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
            Faults::default(),
        )
        .await;
        let records = all(&servers.registry_url(), "cases", 700).await;
        let duplicates = flow.anomalies.iter().filter(|a| matches!(a, Anomaly::DuplicateDelivery { .. })).count();
        let corrections = flow.anomalies.iter().filter(|a| matches!(a, Anomaly::LateCorrection { .. })).count();
        assert!(duplicates > 0 && corrections > 0);
        assert_eq!(records.len(), flow.cases.len() + duplicates + corrections);
        let times: Vec<DateTime<chrono::FixedOffset>> = records
            .iter()
            .map(|r| DateTime::parse_from_rfc3339(r["gxsj"].as_str().expect("gxsj")).expect("iso 8601"))
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "ordered by gxsj");
        for anomaly in &flow.anomalies {
            if let Anomaly::LateCorrection { case } = anomaly {
                let versions: Vec<&Value> = records.iter().filter(|r| r["ywh"] == case.as_str()).collect();
                assert!(versions.len() >= 2, "{case}");
                assert_eq!(versions[0]["xzqdm"], "430400");
                assert_ne!(versions[versions.len() - 1]["xzqdm"], "430400", "the later snapshot is the corrected one");
            }
        }
        let first = &records[0];
        for field in ["ywh", "djlx", "sqlx", "sqfs", "sqrlx", "sqr", "xzqdm", "sjsj", "zt", "bzcs", "zsh", "gxsj"] {
            assert!(!first[field].is_null(), "{field} present");
        }
        let evaluations = all(&servers.registry_url(), "evaluations", 5000).await;
        assert_eq!(evaluations.len(), flow.evaluations.len());
        assert!(evaluations.iter().all(|e| (1..=5).contains(&e["pjdj"].as_i64().unwrap_or(0))));
        assert_eq!(all(&servers.registry_url(), "qc-findings", 10).await.len(), flow.qc_findings.len());
        servers.stop().await.expect("stop");
    }

    #[tokio::test]
    async fn bad_paging_is_refused_with_a_reason() {
        let flow = small_flow();
        let servers = crate::servers::testing::serve(
            &flow,
            NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
            Faults::default(),
        )
        .await;
        let client = reqwest::Client::new();
        let too_big = client.get(format!("{}/cases?limit=5001", servers.registry_url())).send().await.expect("send");
        assert_eq!(too_big.status(), 400);
        let bad_cursor = client.get(format!("{}/cases?cursor=zzz", servers.registry_url())).send().await.expect("send");
        assert_eq!(bad_cursor.status(), 400);
        assert!(bad_cursor.text().await.expect("body").contains("unknown cursor"));
        servers.stop().await.expect("stop");
    }

    #[tokio::test]
    async fn faults_are_injected_as_configured() {
        let flow = small_flow();
        let outage = Faults { outage: true, ..Faults::default() };
        let servers =
            crate::servers::testing::serve(&flow, NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"), outage).await;
        let response = reqwest::get(format!("{}/cases", servers.registry_url())).await.expect("send");
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
        servers.stop().await.expect("stop");

        let flaky = Faults { error_rate: 0.5, latency: Duration::from_millis(5), ..Faults::default() };
        let servers =
            crate::servers::testing::serve(&flow, NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"), flaky).await;
        let mut errors = 0;
        for _ in 0..40 {
            if reqwest::get(format!("{}/cases?limit=1", servers.registry_url())).await.expect("send").status() == 503 {
                errors += 1;
            }
        }
        assert!((8..32).contains(&errors), "about half fail: {errors}");
        servers.stop().await.expect("stop");

        let truncating = Faults { truncate_rate: 1.0, ..Faults::default() };
        let servers =
            crate::servers::testing::serve(&flow, NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"), truncating).await;
        let body = match reqwest::get(format!("{}/cases?limit=50", servers.registry_url())).await {
            Ok(response) => response.bytes().await.map(|b| b.len()),
            Err(e) => Err(e),
        };
        assert!(
            body.is_err() || serde_json::from_slice::<Value>(&[]).is_err(),
            "a truncated body never reads as complete"
        );
        assert!(body.is_err(), "the client must notice the cut: {body:?}");
        servers.stop().await.expect("stop");
    }
}
