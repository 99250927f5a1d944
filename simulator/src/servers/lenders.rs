//! Lenders: each bank (JSON, bearer token, `updated_after` and page tokens)
//! and the housing provident fund (GB18030 XML, `since` and page numbers).
//!
//! Banks: `GET {bank base}/bank/v1/mortgage-applications?updated_after=RFC3339&page_token=T&page_size=N`
//! with `Authorization: Bearer sim-token-{code}` → `{"items":[…],"nextPageToken":…|null}`.
//! Provident fund: `GET /gjj/v1/loans?since=yyyyMMddHHmmss&page=N` →
//! `<LoanList page="N" pages="M"><Loan>…</Loan></LoanList>` in GB18030.

use std::collections::HashMap;
use std::sync::Arc;

use crate::world::LoanApplication;
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use domain::{BusinessType, VendorCode};
use quick_xml::escape::escape;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::caseflow::Flow;
use crate::servers::faults::Faults;
use crate::servers::registry::china;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Largest bank page.
pub const MAX_PAGE_SIZE: usize = 1000;
/// Loans per provident-fund page.
pub const GJJ_PAGE: usize = 500;

/// The bearer token the simulated bank `code` accepts.
pub fn bank_token(code: &str) -> String {
    format!("sim-token-{code}")
}

/// The bank codes in a flow (`bank:icbc` → `icbc`).
pub fn bank_codes(flow: &Flow) -> Vec<String> {
    let mut codes: Vec<String> =
        flow.loans.iter().filter_map(|l| l.source.strip_prefix("bank:").map(str::to_owned)).collect();
    codes.sort();
    codes.dedup();
    codes
}

fn product_of(loan: &LoanApplication, types: &HashMap<&str, VendorCode>) -> &'static str {
    match loan.registry_case_no.as_deref().and_then(|c| types.get(c)) {
        Some(v) if v.business_type() == BusinessType::PreNoticeMortgage => "PRESALE_NOTICE_MORTGAGE",
        _ => "MORTGAGE",
    }
}

fn yuan(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[derive(Debug)]
struct Bank {
    code: String,
    /// Items sorted by (updatedAt, applicationId).
    items: Vec<(DateTime<Utc>, Value)>,
}

/// Query of the bank feed.
#[derive(Debug, Deserialize)]
pub struct BankQuery {
    updated_after: Option<String>,
    page_token: Option<String>,
    page_size: Option<usize>,
}

fn bank_page(bank: &Bank, headers: &HeaderMap, query: &BankQuery) -> Response {
    let expected = format!("Bearer {}", bank_token(&bank.code));
    if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "missing or wrong bearer token" }))).into_response();
    }
    let size = query.page_size.unwrap_or(200);
    if size == 0 || size > MAX_PAGE_SIZE {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": format!("page_size must be 1 to {MAX_PAGE_SIZE}") })))
            .into_response();
    }
    let after = match query.updated_after.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": format!("updated_after {text:?} is not RFC 3339") })),
                )
                    .into_response();
            }
        },
    };
    let start = match query.page_token.as_deref().filter(|s| !s.is_empty()) {
        None => 0,
        Some(token) => match token.strip_prefix("p").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => {
                return (StatusCode::BAD_REQUEST, Json(json!({ "error": format!("unknown page_token {token:?}") })))
                    .into_response();
            }
        },
    };
    let matching: Vec<&Value> =
        bank.items.iter().filter(|(t, _)| after.is_none_or(|a| *t > a)).map(|(_, v)| v).collect();
    let end = (start + size).min(matching.len());
    let items: Vec<&Value> = matching.get(start..end).map(<[&Value]>::to_vec).unwrap_or_default();
    let next = (end < matching.len()).then(|| format!("p{end}"));
    Json(json!({ "items": items, "nextPageToken": next })).into_response()
}

fn bank_router(bank: Bank) -> Router {
    Router::new()
        .route(
            "/bank/v1/mortgage-applications",
            get(|State(bank): State<Arc<Bank>>, headers: HeaderMap, Query(q): Query<BankQuery>| async move {
                bank_page(&bank, &headers, &q)
            }),
        )
        .with_state(Arc::new(bank))
}

/// One router per bank, mounted under `/banks/{code}`; each bank's base URL is `http://HOST/banks/{code}`.
pub fn banks_router(flow: &Flow) -> Router {
    let types: HashMap<&str, VendorCode> = flow.cases.iter().map(|c| (c.external_id.as_str(), c.vendor_code)).collect();
    let mut router = Router::new();
    for code in bank_codes(flow) {
        let source = format!("bank:{code}");
        let mut items: Vec<(DateTime<Utc>, String, Value)> = flow
            .loans
            .iter()
            .filter(|l| l.source == source)
            .map(|l| {
                let status = match l.status.as_str() {
                    "registered" => "REGISTERED",
                    "withdrawn" => "WITHDRAWN",
                    "rejected" => "REJECTED",
                    "accepted" => "ACCEPTED",
                    _ => "SUBMITTED",
                };
                let item = json!({
                    "applicationId": l.external_id, "bankCode": code, "branch": format!("{code}-衡阳分行"),
                    "product": product_of(l, &types), "borrower": { "name": l.borrower_name, "idNo": l.borrower_id_no },
                    "propertyUnitNo": l.unit_no, "loanAmount": yuan(l.amount_cents), "submittedAt": china(l.applied_at),
                    "status": status, "registryCaseNo": l.registry_case_no, "updatedAt": china(l.source_updated_at),
                });
                (l.source_updated_at, l.external_id.clone(), item)
            })
            .collect();
        items.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let bank = Bank { code: code.clone(), items: items.into_iter().map(|(t, _, v)| (t, v)).collect() };
        router = router.nest(&format!("/banks/{code}"), bank_router(bank));
    }
    router
}

fn compact(t: DateTime<Utc>) -> String {
    domain::time::china_time(t).format("%Y%m%d%H%M%S").to_string()
}

/// Provident-fund loans as XML fragments, with their update times, in stream order.
type GjjLoans = Arc<Vec<(DateTime<Utc>, String)>>;

/// Query of the provident-fund feed.
#[derive(Debug, Deserialize)]
pub struct GjjQuery {
    since: Option<String>,
    page: Option<usize>,
}

fn gjj_page(loans: &[(DateTime<Utc>, String)], query: &GjjQuery) -> Response {
    let since = match query.since.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => {
            let parsed = domain::time::parse_china(text, "%Y%m%d%H%M%S");
            match parsed {
                Some(t) => Some(t),
                None => {
                    return (StatusCode::BAD_REQUEST, format!("since {text:?} is not yyyyMMddHHmmss")).into_response();
                }
            }
        }
    };
    let matching: Vec<&String> = loans.iter().filter(|(t, _)| since.is_none_or(|s| *t > s)).map(|(_, x)| x).collect();
    let pages = matching.len().div_ceil(GJJ_PAGE).max(1);
    let page = query.page.unwrap_or(1);
    if page == 0 || page > pages {
        return (StatusCode::BAD_REQUEST, format!("page must be 1 to {pages}")).into_response();
    }
    let mut xml = format!("<?xml version=\"1.0\" encoding=\"GB18030\"?>\n<LoanList page=\"{page}\" pages=\"{pages}\">");
    for loan in matching.iter().skip((page - 1) * GJJ_PAGE).take(GJJ_PAGE) {
        xml.push_str(loan);
    }
    xml.push_str("</LoanList>");
    let (bytes, _, _) = encoding_rs::GB18030.encode(&xml);
    ([(header::CONTENT_TYPE, "application/xml; charset=GB18030")], bytes.into_owned()).into_response()
}

/// The provident fund's routes (mounted under `/gjj/v1`).
pub fn gjj_router(flow: &Flow, faults: &Faults, seed: u64) -> Router {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x474a_4a00);
    let types: HashMap<&str, VendorCode> = flow.cases.iter().map(|c| (c.external_id.as_str(), c.vendor_code)).collect();
    let mut loans: Vec<(DateTime<Utc>, String, String)> = flow
        .loans
        .iter()
        .filter(|l| l.source == "provident_fund")
        .map(|l| {
            let kind = if product_of(l, &types) == "PRESALE_NOTICE_MORTGAGE" { "1" } else { "2" };
            let status = match l.status.as_str() {
                "registered" => "2",
                "rejected" | "withdrawn" => "3",
                _ => "1",
            };
            let xml = format!(
                "<Loan><DKBH>{}</DKBH><JKRXM>{}</JKRXM><JKRZJH>{}</JKRZJH><BDCDYH>{}</BDCDYH><DKJE>{}</DKJE><DKLX>{kind}</DKLX>\
                 <SQSJ>{}</SQSJ><ZT>{status}</ZT><YWH>{}</YWH><GXSJ>{}</GXSJ></Loan>",
                escape(l.external_id.as_str()),
                escape(l.borrower_name.as_str()),
                escape(l.borrower_id_no.as_str()),
                escape(l.unit_no.as_str()),
                yuan(l.amount_cents),
                compact(l.applied_at),
                escape(l.registry_case_no.as_deref().unwrap_or_default()),
                compact(l.source_updated_at),
            );
            (l.source_updated_at, l.external_id.clone(), xml)
        })
        .collect();
    loans.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    if faults.malformed_rate > 0.0 {
        for (_, _, xml) in &mut loans {
            if rng.random_bool(faults.malformed_rate.min(1.0)) {
                // Broken XML: the loan number's element is never closed.
                *xml = xml.replacen("</DKBH>", "", 1);
            }
        }
    }
    let loans: GjjLoans = Arc::new(loans.into_iter().map(|(t, _, x)| (t, x)).collect());
    Router::new()
        .route(
            "/loans",
            get(|State(loans): State<GjjLoans>, Query(q): Query<GjjQuery>| async move { gjj_page(&loans, &q) }),
        )
        .with_state(loans)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::servers::faults::Faults;
    use crate::servers::testing::get_json;

    fn flow() -> Flow {
        crate::servers::testing::flow(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 11, 6000, |_| {})
    }

    #[tokio::test]
    async fn each_bank_pages_its_applications_behind_its_token() {
        let flow = flow();
        let until = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
        let servers = crate::servers::testing::serve(&flow, until, Faults::default()).await;
        let client = reqwest::Client::new();
        let codes = bank_codes(&flow);
        assert!(codes.len() >= 3);
        for code in &codes {
            let url = format!("{}/bank/v1/mortgage-applications", servers.bank_url(code));
            assert_eq!(client.get(&url).send().await.expect("send").status(), 401);
            let mut token = String::new();
            let mut items = Vec::new();
            loop {
                let page = get_json(&format!("{url}?page_size=100&page_token={token}"), Some(&bank_token(code))).await;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["nextPageToken"].as_str() {
                    Some(next) => token = next.to_owned(),
                    None => break,
                }
            }
            let source = format!("bank:{code}");
            assert_eq!(items.len(), flow.loans.iter().filter(|l| l.source == source).count(), "{code}");
            let middle = items[items.len() / 2]["updatedAt"].as_str().expect("updatedAt").to_owned();
            let later = get_json(
                &format!("{url}?page_size=1000&updated_after={}", middle.replace('+', "%2B")),
                Some(&bank_token(code)),
            )
            .await;
            let later = later["items"].as_array().map(Vec::len).unwrap_or(0);
            assert!(later < items.len() && later > 0, "updated_after filters: {later} of {}", items.len());
        }
        servers.stop().await.expect("stop");
    }

    #[tokio::test]
    async fn the_provident_fund_pages_gb18030_xml() {
        let flow = flow();
        let until = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
        let servers = crate::servers::testing::serve(&flow, until, Faults::default()).await;
        let mut loans = 0;
        let mut page = 1;
        loop {
            let bytes = reqwest::get(format!("{}/loans?page={page}", servers.gjj_url()))
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            let (text, _, had_errors) = encoding_rs::GB18030.decode(&bytes);
            assert!(!had_errors);
            assert!(text.contains("encoding=\"GB18030\""));
            loans += text.matches("<Loan>").count();
            let pages: usize = text
                .split("pages=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .and_then(|s| s.parse().ok())
                .expect("pages");
            if page >= pages {
                break;
            }
            page += 1;
        }
        assert_eq!(loans, flow.loans.iter().filter(|l| l.source == "provident_fund").count());
        let bad = reqwest::get(format!("{}/loans?since=yesterday", servers.gjj_url())).await.expect("get");
        assert_eq!(bad.status(), 400);
        let recent = reqwest::get(format!("{}/loans?since=20241201000000", servers.gjj_url()))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        let (text, _, _) = encoding_rs::GB18030.decode(&recent);
        assert!(text.matches("<Loan>").count() < loans);
        servers.stop().await.expect("stop");
    }
}
