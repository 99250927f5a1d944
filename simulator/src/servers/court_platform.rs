//! The courts' control platform (网络查控), pull side: requests to seize,
//! renew and release, read by sequence number; the registry answers each with
//! feedback, which the platform keeps (and tests read).
//!
//! `GET /court/v1/requests?after_seq=N&limit=M` (M ≤ 1000, default 100) →
//! `<KZQQList><KZQQ seq="…">…</KZQQ></KZQQList>`;
//! `POST /court/v1/feedback` with `<KZFK><CXQQDH/><JG/><YY/><DJSJ/></KZFK>`
//! → `<Ack ok="true"/>` (400 with `<Ack ok="false">reason</Ack>` if malformed).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use quick_xml::escape::escape;
use serde::Deserialize;

use crate::caseflow::{CourtRequest, CourtRequestKind, Flow};
use crate::servers::registry::china;

/// Largest page.
pub const MAX_LIMIT: usize = 1000;

/// Feedback the registry sent for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// Request number (CXQQDH).
    pub request_no: String,
    /// JG: 1 done, 2 queued, 3 refused.
    pub result: String,
    /// YY: reason.
    pub reason: String,
    /// DJSJ: recorded at.
    pub recorded_at: String,
}

/// The platform's state: its requests and the feedback received.
#[derive(Debug, Default)]
pub struct Platform {
    requests: Vec<String>,
    feedback: Mutex<Vec<Feedback>>,
}

impl Platform {
    /// Feedback received so far, in arrival order.
    pub fn feedback(&self) -> Vec<Feedback> {
        self.feedback.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

fn slashed(d: chrono::NaiveDate) -> String {
    d.format("%Y/%m/%d").to_string()
}

/// One `<KZQQ>` element.
pub fn request_xml(r: &CourtRequest) -> String {
    let kind = match r.kind {
        CourtRequestKind::Seize => "1",
        CourtRequestKind::Renew => "2",
        CourtRequestKind::Release => "3",
    };
    let (start, end) = r.period.map_or((String::new(), String::new()), |(s, e)| (slashed(s), slashed(e)));
    format!(
        "<KZQQ seq=\"{}\"><CXQQDH>{}</CXQQDH><FYDM>{}</FYDM><FYMC>{}</FYMC><AH>{}</AH><KZLX>{kind}</KZLX><BDCDYH>{}</BDCDYH>\
         <BDCQZH></BDCQZH><BZXR>{}</BZXR><BZXRZJH>{}</BZXRZJH><KSRQ>{start}</KSRQ><JSRQ>{end}</JSRQ><YDJDH>{}</YDJDH>\
         <CKWH>{}</CKWH><CBR>{}</CBR><SDSJ>{}</SDSJ></KZQQ>",
        r.seq,
        escape(r.request_no.as_str()),
        escape(r.court_code.as_str()),
        escape(r.court_name.as_str()),
        escape(r.case_no.as_str()),
        escape(r.unit_no.as_str()),
        escape(r.respondent.0.as_str()),
        escape(r.respondent.1.as_str()),
        escape(r.original_request_no.as_deref().unwrap_or_default()),
        escape(r.ruling_no.as_str()),
        escape(r.judge.as_str()),
        china(r.served_at),
    )
}

/// Query of the request feed.
#[derive(Debug, Deserialize)]
pub struct RequestQuery {
    after_seq: Option<usize>,
    limit: Option<usize>,
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/xml; charset=utf-8")], body).into_response()
}

async fn requests(State(platform): State<Arc<Platform>>, Query(q): Query<RequestQuery>) -> Response {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return xml(StatusCode::BAD_REQUEST, format!("<Error>limit must be 1 to {MAX_LIMIT}</Error>"));
    }
    let after = q.after_seq.unwrap_or(0).min(platform.requests.len());
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<KZQQList>");
    for r in platform.requests.iter().skip(after).take(limit) {
        body.push_str(r);
    }
    body.push_str("</KZQQList>");
    xml(StatusCode::OK, body)
}

/// The text of `<name>…</name>` in `doc`.
fn field(doc: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&format!("</{name}>"))? + start;
    Some(doc[start..end].to_owned())
}

async fn feedback(State(platform): State<Arc<Platform>>, body: Bytes) -> Response {
    let Ok(doc) = std::str::from_utf8(&body) else {
        return xml(StatusCode::BAD_REQUEST, "<Ack ok=\"false\">body is not UTF-8</Ack>".into());
    };
    let parsed = (|| {
        let request_no = field(doc, "CXQQDH").filter(|s| !s.is_empty())?;
        let result = field(doc, "JG").filter(|s| matches!(s.as_str(), "1" | "2" | "3"))?;
        Some(Feedback {
            request_no,
            result,
            reason: field(doc, "YY").unwrap_or_default(),
            recorded_at: field(doc, "DJSJ").unwrap_or_default(),
        })
    })();
    match parsed {
        Some(f) => {
            if let Ok(mut all) = platform.feedback.lock() {
                all.push(f);
            }
            xml(StatusCode::OK, "<Ack ok=\"true\"/>".into())
        }
        None => xml(StatusCode::BAD_REQUEST, "<Ack ok=\"false\">KZFK needs CXQQDH and JG (1, 2 or 3)</Ack>".into()),
    }
}

/// The platform over a flow.
pub fn platform(flow: &Flow) -> Arc<Platform> {
    Arc::new(Platform { requests: flow.court_requests.iter().map(request_xml).collect(), feedback: Mutex::default() })
}

/// The platform's routes (mounted under `/court/v1`).
pub fn router(platform: Arc<Platform>) -> Router {
    Router::new().route("/requests", get(requests)).route("/feedback", post(feedback)).with_state(platform)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::servers::faults::Faults;

    #[tokio::test]
    async fn requests_page_by_sequence_and_feedback_is_kept() {
        let flow =
            crate::servers::testing::flow(NaiveDate::from_ymd_opt(2025, 12, 31).expect("date"), 4, 20_000, |_| {});
        assert!(flow.court_requests.len() > 50);
        assert!(flow.court_requests.iter().any(|r| r.kind == CourtRequestKind::Release));
        assert!(flow.court_requests.iter().any(|r| r.kind == CourtRequestKind::Renew));
        let servers = crate::servers::testing::serve(
            &flow,
            NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
            Faults::default(),
        )
        .await;
        let mut seen = 0;
        let mut after = 0;
        loop {
            let body = reqwest::get(format!("{}/requests?after_seq={after}&limit=40", servers.court_url()))
                .await
                .expect("get")
                .text()
                .await
                .expect("body");
            let seqs: Vec<usize> =
                body.split("seq=\"").skip(1).filter_map(|s| s.split('"').next()?.parse().ok()).collect();
            if seqs.is_empty() {
                break;
            }
            assert_eq!(seqs[0], after + 1, "sequence continues after after_seq");
            seen += seqs.len();
            after = *seqs.last().expect("non-empty");
        }
        assert_eq!(seen, flow.court_requests.len());
        let client = reqwest::Client::new();
        let ack = client
            .post(format!("{}/feedback", servers.court_url()))
            .body("<KZFK><CXQQDH>KZ2024000001</CXQQDH><JG>1</JG><YY></YY><DJSJ>2024-10-08T09:00:00+08:00</DJSJ></KZFK>")
            .send()
            .await
            .expect("post");
        assert_eq!(ack.status(), 200);
        assert_eq!(ack.text().await.expect("body"), "<Ack ok=\"true\"/>");
        let bad = client
            .post(format!("{}/feedback", servers.court_url()))
            .body("<KZFK><JG>9</JG></KZFK>")
            .send()
            .await
            .expect("post");
        assert_eq!(bad.status(), 400);
        assert_eq!(servers.court_feedback().len(), 1);
        assert_eq!(servers.court_feedback()[0].request_no, "KZ2024000001");
        servers.stop().await.expect("stop");
    }
}
