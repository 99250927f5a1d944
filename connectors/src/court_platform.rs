//! The courts' control platform, pull side (`docs/partners.md` §5). Requests
//! (`<KZQQ>`) are read in sequence order and become [`CourtOrder`]s that go
//! through the same seizure processing as pushed orders
//! ([`court_orders::apply_in`], in the poll loop), with their
//! feedback queued in the same transaction. After the pages,
//! [`Source::after_run`] sends the outbox, at least once per request, and
//! records each acknowledgement; what the platform does not acknowledge is
//! sent again next run. The cursor is the last sequence number taken.

use chrono::{DateTime, NaiveDate, Utc};
use domain::court_order::{CourtAction, CourtOrder};
use domain::ident::{CaseNo, CertificateNo, UnitNo};
use domain::time::china_time;
use sha2::{Digest, Sha256};
use store::Store;

use crate::fetch::{self, RetryPolicy};
use crate::poll::{AfterRunError, BadRow, CourtRequest, Page, PageError, Record, Source};
use crate::registry::RowError;
use crate::xmlrows::{self, Fields};

/// The partner id pulled orders are kept under.
pub const PARTNER_ID: &str = "court-platform";

/// The control platform's request feed.
#[derive(Debug, Clone)]
pub struct CourtPlatform {
    /// Connector name.
    pub name: String,
    /// Base URL, e.g. `http://host/court/v1`.
    pub base_url: String,
    /// Requests per page (≤ 1000).
    pub page_size: usize,
    /// Retries.
    pub policy: RetryPolicy,
    /// HTTP client.
    pub client: reqwest::Client,
}

impl CourtPlatform {
    /// A feed with default retries and the largest pages.
    pub fn new(name: &str, base_url: &str) -> Self {
        Self {
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            page_size: 1000,
            policy: RetryPolicy::default(),
            client: crate::fetch::client(),
        }
    }
}

/// The fields of a request, in the order hashed for idempotency.
const FIELDS: [&str; 15] = [
    "CXQQDH", "FYDM", "FYMC", "AH", "KZLX", "BDCDYH", "BDCQZH", "BZXR", "BZXRZJH", "KSRQ", "JSRQ", "YDJDH", "CKWH",
    "CBR", "SDSJ",
];

/// SHA-256 over a request's fields in a fixed order: the same request read twice hashes the same.
pub fn content_hash(fields: &Fields) -> String {
    let mut hasher = Sha256::new();
    for name in FIELDS {
        hasher.update(format!("{name}={}\n", fields.get(name).map(|v| v.trim()).unwrap_or_default()).as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Validates one `<KZQQ>`.
pub fn parse_request(fields: &Fields) -> Result<CourtOrder, RowError> {
    let get = |name: &str| -> Result<&str, RowError> {
        fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ("missing_field", format!("missing field {name}")))
    };
    let date = |name: &str| -> Result<NaiveDate, RowError> {
        let value = get(name)?;
        NaiveDate::parse_from_str(value, "%Y/%m/%d")
            .map_err(|_| ("malformed", format!("{name} {value:?} is not a date like 2024/10/08")))
    };
    let action = match get("KZLX")? {
        "1" => CourtAction::Seize { start: date("KSRQ")?, end: date("JSRQ")? },
        "2" => {
            CourtAction::Renew { original_order_no: get("YDJDH")?.to_owned(), start: date("KSRQ")?, end: date("JSRQ")? }
        }
        "3" => CourtAction::Release { original_order_no: get("YDJDH")?.to_owned() },
        other => return Err(("unknown_code", format!("KZLX {other:?} is not 1, 2 or 3"))),
    };
    let case_no = get("AH")?;
    let unit = get("BDCDYH")?;
    let served = get("SDSJ")?;
    Ok(CourtOrder {
        order_no: get("CXQQDH")?.to_owned(),
        court_code: get("FYDM")?.to_owned(),
        court_name: get("FYMC")?.to_owned(),
        case_no: CaseNo::parse(case_no).map_err(|e| ("bad_identifier", format!("AH {case_no:?}: {e}")))?,
        action,
        unit_no: UnitNo::parse(unit).map_err(|e| ("bad_identifier", format!("BDCDYH {unit:?}: {e}")))?,
        cert_no: match fields.get("BDCQZH").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => None,
            Some(c) => Some(CertificateNo::parse(c).map_err(|e| ("bad_identifier", format!("BDCQZH {c:?}: {e}")))?),
        },
        respondent_name: get("BZXR")?.to_owned(),
        respondent_id_no: get("BZXRZJH")?.to_owned(),
        ruling_no: get("CKWH")?.to_owned(),
        judge: get("CBR")?.to_owned(),
        served_at: crate::registry::iso_time(served)
            .ok_or_else(|| ("malformed", format!("SDSJ {served:?} is not an ISO 8601 time")))?,
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The `<KZFK>` document for one request's feedback.
pub fn feedback_document(feedback: &store::outbox::Feedback) -> String {
    let recorded = china_time(feedback.recorded_at);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<KZFK><CXQQDH>{}</CXQQDH><JG>{}</JG><YY>{}</YY><DJSJ>{}</DJSJ></KZFK>",
        escape(&feedback.request_no),
        feedback.result,
        escape(&feedback.reason),
        recorded.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
    )
}

/// Decodes one `<KZQQList>` page as received: its requests validated, bad
/// ones kept with their position after `after`; and the last sequence number
/// seen (the next cursor).
pub fn decode_requests(body: &[u8], after: i64) -> Result<(Vec<Result<Record, BadRow>>, i64), PageError> {
    let text = std::str::from_utf8(body).map_err(|_| PageError::Unreadable("not UTF-8".into()))?;
    let list = xmlrows::split(text, "KZQQList", "KZQQ")?;
    let mut last = after;
    let mut rows = Vec::with_capacity(list.rows.len());
    for (i, row) in list.rows.into_iter().enumerate() {
        let position = format!("序号 {after} 之后第 {} 条", i + 1);
        let bad = |(reason_code, reason): RowError| BadRow {
            position: position.clone(),
            reason_code,
            reason,
            raw: row.raw.as_bytes().to_vec(),
        };
        let fields = match row.fields {
            Ok(fields) => fields,
            Err(e) => {
                rows.push(Err(bad(("malformed", e.to_string()))));
                continue;
            }
        };
        // Without a sequence number the stream's order is lost: the page is not usable.
        let seq: i64 = fields
            .get("@seq")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| PageError::Unreadable("a <KZQQ> without a seq".into()))?;
        last = last.max(seq);
        rows.push(
            parse_request(&fields)
                .map(|order| {
                    Record::Court(Box::new(CourtRequest {
                        partner_id: PARTNER_ID.to_owned(),
                        order,
                        content_sha256: content_hash(&fields),
                        raw: row.raw.as_bytes().to_vec(),
                        seq,
                    }))
                })
                .map_err(bad),
        );
    }
    Ok((rows, last))
}

impl Source for CourtPlatform {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch_page(&self, cursor: Option<&str>) -> Result<Page, PageError> {
        let after: i64 = match cursor.filter(|c| !c.is_empty()) {
            None => 0,
            Some(c) => c.parse().map_err(|_| PageError::Unreadable(format!("saved cursor {c:?} is not a sequence")))?,
        };
        let url =
            format!("{}/requests?after_seq={after}&limit={}", self.base_url.trim_end_matches('/'), self.page_size);
        let body = fetch::get(&self.client, &url, None, &self.policy).await?;
        let (rows, last) = decode_requests(&body, after).map_err(|e| e.from_where(&url))?;
        let has_more = rows.len() >= self.page_size;
        Ok(Page::new(rows, last.to_string(), has_more))
    }

    async fn after_run(&self, store: &Store, now: DateTime<Utc>) -> Result<(), AfterRunError> {
        let url = format!("{}/feedback", self.base_url.trim_end_matches('/'));
        loop {
            let pending = store.pending_feedback(PARTNER_ID, 500).await?;
            if pending.is_empty() {
                return Ok(());
            }
            for feedback in &pending {
                let document = feedback_document(feedback).into_bytes();
                let answer = fetch::post(&self.client, &url, "application/xml", document, &self.policy).await;
                let error = match &answer {
                    Ok(body) if String::from_utf8_lossy(body).contains("ok=\"true\"") => None,
                    Ok(body) => Some(format!("not acknowledged: {}", String::from_utf8_lossy(body))),
                    Err(e) => Some(e.to_string()),
                };
                store.record_feedback_attempt(PARTNER_ID, &feedback.request_no, error.as_deref(), now).await?;
                if let Some(reason) = error {
                    return Err(AfterRunError::NotDelivered { request_no: feedback.request_no.clone(), reason });
                }
            }
        }
    }
}
