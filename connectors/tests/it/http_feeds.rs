//! A partner's HTTP feed by configuration: our HMAC signature on every
//! request (checked by the partner with the same `signing` crate the gateway
//! uses), offset paging, a 429 with `Retry-After` honoured, GB18030 JSON.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use connectors::partner::Partner;
use connectors::partner::config::PartnerConfig;
use connectors::poll::{Record, Source as _};
use serde_json::json;

#[derive(Clone)]
struct Feed {
    calls: Arc<AtomicUsize>,
}

#[derive(serde::Deserialize)]
struct Paging {
    offset: usize,
    limit: usize,
}

async fn loans(State(feed): State<Feed>, headers: HeaderMap, Query(p): Query<Paging>) -> axum::response::Response {
    // The first call is asked to come back later.
    if feed.calls.fetch_add(1, Ordering::SeqCst) == 0 {
        return (StatusCode::TOO_MANY_REQUESTS, [("Retry-After", "0")], "slow down").into_response();
    }
    let signature = headers.get("X-Signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let partner = headers.get("X-Partner-Id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let checked = signing::SignatureHeader::parse(signature)
        .and_then(|h| h.verify(b"/gjj/loans", ["a-shared-secret-of-thirty-two-bytes"], chrono::Utc::now()));
    if partner != "wangban" || checked.is_err() {
        return (StatusCode::UNAUTHORIZED, format!("{checked:?}")).into_response();
    }
    let all: Vec<_> = (0..5)
        .map(|i| {
            json!({"dkbh": format!("GJJ-{i}"), "jkr": "张三", "zjh": "11010519491231002X",
                   "dyh": "430405001002GB00001F00010002", "je": "35.5", "sqsj": "20241008093000",
                   "gxsj": format!("2024100910000{i}"), "zt": "1"})
        })
        .collect();
    let page: Vec<_> = all.into_iter().skip(p.offset).take(p.limit).collect();
    let body = json!({"data": {"rows": page}}).to_string();
    let (bytes, _, _) = encoding_rs::GB18030.encode(&body);
    ([("Content-Type", "application/json; charset=GB18030")], bytes.into_owned()).into_response()
}

fn config(url: &str, secret_file: &std::path::Path) -> PartnerConfig {
    let text = format!(
        r#"
kind = "provident_fund_loan"
schedule = "0 * * * *"
[http]
url = "{url}/gjj/loans"
encoding = "gb18030"
records = "data.rows"
pagination = {{ kind = "offset", param = "offset", limit_param = "limit", limit = 2 }}
auth = {{ kind = "hmac", partner_id = "wangban", secret = {{ file = {:?} }} }}
[fields]
DKBH = "dkbh"
DKLX = {{ value = "1" }}
ZT = "zt"
JKRXM = "jkr"
JKRZJH = "zjh"
BDCDYH = "dyh"
DKJE = {{ from = "je", scale = "10000" }}
SQSJ = {{ from = "sqsj", format = "%Y%m%d%H%M%S" }}
GXSJ = {{ from = "gxsj", format = "%Y%m%d%H%M%S" }}
"#,
        secret_file.display().to_string()
    );
    toml::from_str(&text).expect("config")
}

#[tokio::test]
async fn a_configured_feed_signs_with_our_hmac_pages_by_offset_and_waits_when_asked() {
    let feed = Feed { calls: Arc::new(AtomicUsize::new(0)) };
    let app = axum::Router::new().route("/gjj/loans", axum::routing::get(loans)).with_state(feed.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = std::env::temp_dir().join(format!("wangban_test_http_feed_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let secret = dir.join("secret");
    std::fs::write(&secret, "a-shared-secret-of-thirty-two-bytes\n").expect("secret");

    let partner = Partner::new("gjj", config(&url, &secret)).expect("valid");
    let mut cursor: Option<String> = None;
    let mut loans = Vec::new();
    for _ in 0..5 {
        let page = partner.fetch_page(cursor.as_deref()).await.expect("page");
        for row in page.rows {
            match row.expect("a loan") {
                Record::Loan(loan, flaws) => {
                    assert!(flaws.is_empty(), "{flaws:?}");
                    loans.push(loan);
                }
                other => panic!("{other:?}"),
            }
        }
        cursor = Some(page.next_cursor);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(
        loans.iter().map(|l| l.external_id.as_str()).collect::<Vec<_>>(),
        ["GJJ-0", "GJJ-1", "GJJ-2", "GJJ-3", "GJJ-4"]
    );
    assert_eq!(loans[0].amount_cents, 35_500_000, "35.5 万元");
    assert_eq!(loans[0].borrower_name, "张三", "GB18030 decoded");
    assert!(feed.calls.load(Ordering::SeqCst) >= 4, "the 429 was retried");

    // A wrong secret: refused, and the error says what the partner answered, not the secret.
    std::fs::write(&secret, "not-the-secret-they-share-with-us").expect("secret");
    let wrong = Partner::new("gjj-wrong", config(&url, &secret)).expect("valid");
    let error = wrong.fetch_page(None).await.expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains("not-the-secret"), "{text}");
}
