//! The registry's business system: three cursor-paged JSON feeds with the
//! vendor's field names (`docs/partners.md` §1): cases, QC findings and
//! satisfaction evaluations, validated into store records. A row with a
//! missing field, an unknown code or a broken identifier is a [`BadRow`]:
//! quarantined with the field named, the page goes on.

use chrono::{DateTime, Utc};
use domain::ident::{CreditCode, ResidentId, UnitNo};
use domain::{AgentKind, ApplicantKind, CaseStatus, Channel, Delivery, VendorCode};
use serde_json::Value;
use store::cases::CaseRecord;
use store::records::{Evaluation, QcFinding};

use crate::fetch::{self, RetryPolicy};
use crate::poll::{BadRow, Page, PageError, Record, Source};

/// The source name cases carry.
pub const SOURCE: &str = "registry";
/// The source name QC findings carry.
pub const QC_SOURCE: &str = "qc";
/// The source name evaluations carry.
pub const EVALUATION_SOURCE: &str = "evaluations";

/// Which of the registry's feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryFeed {
    /// `/cases`
    Cases,
    /// `/qc-findings`
    QcFindings,
    /// `/evaluations`
    Evaluations,
}

impl RegistryFeed {
    fn path(self) -> &'static str {
        match self {
            Self::Cases => "cases",
            Self::QcFindings => "qc-findings",
            Self::Evaluations => "evaluations",
        }
    }

    fn parse(self, row: &Value) -> Result<Record, RowError> {
        match self {
            Self::Cases => parse_case(row).map(|c| Record::Case(Box::new(c))),
            Self::QcFindings => parse_qc_finding(row).map(Record::Qc),
            Self::Evaluations => parse_evaluation(row).map(Record::Evaluation),
        }
    }
}

/// One of the registry's feeds.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Connector name.
    pub name: String,
    /// Base URL, e.g. `http://host/registry/v1`.
    pub base_url: String,
    /// Which feed.
    pub feed: RegistryFeed,
    /// Rows per page (≤ 5000).
    pub page_size: usize,
    /// Retries.
    pub policy: RetryPolicy,
    /// HTTP client.
    pub client: reqwest::Client,
}

impl Registry {
    /// A feed with default retries and the largest pages.
    pub fn new(name: &str, base_url: &str, feed: RegistryFeed) -> Self {
        Self {
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            feed,
            page_size: 5000,
            policy: RetryPolicy::default(),
            client: crate::fetch::client(),
        }
    }
}

/// Why a row is bad: (reason code, reason).
pub(crate) type RowError = (&'static str, String);

pub(crate) fn missing(field: &str) -> RowError {
    ("missing_field", format!("missing field {field}"))
}

pub(crate) fn text<'a>(row: &'a Value, field: &str) -> Result<&'a str, RowError> {
    row.get(field).and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| missing(field))
}

/// A person's resident ID or an enterprise's credit code, normalized; a
/// credit-code checksum failure is only a warning (as in `domain`).
pub(crate) fn party_id(id: &str, field: &str) -> Result<String, RowError> {
    match ResidentId::parse(id) {
        Ok(resident) => Ok(resident.as_str().to_owned()),
        Err(resident) => match CreditCode::parse(id) {
            Ok(code) => Ok(code.as_str().to_owned()),
            Err(_) => Err(("bad_identifier", format!("{field}: {resident}"))),
        },
    }
}

fn number(row: &Value, field: &str) -> Result<i64, RowError> {
    match row.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(v) => v.as_i64().ok_or_else(|| ("malformed", format!("{field} {v} is not a whole number"))),
    }
}

pub(crate) fn time(row: &Value, field: &str) -> Result<Option<DateTime<Utc>>, RowError> {
    match row.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| ("malformed", format!("{field} {s:?} is not an ISO 8601 time"))),
        Some(other) => Err(("malformed", format!("{field} {other} is not a time"))),
    }
}

/// Validates one row of the case feed.
pub fn parse_case(row: &Value) -> Result<CaseRecord, RowError> {
    let ywh = text(row, "ywh")?;
    let sqlx = text(row, "sqlx")?;
    let vendor_code = sqlx
        .parse::<u16>()
        .ok()
        .and_then(VendorCode::from_code)
        .ok_or_else(|| ("unknown_code", format!("sqlx {sqlx:?} is not a known application type")))?;
    let sqfs = text(row, "sqfs")?;
    let channel = sqfs
        .parse::<u8>()
        .ok()
        .and_then(Channel::from_code)
        .ok_or_else(|| ("unknown_code", format!("sqfs {sqfs:?} is not a channel (1-4)")))?;
    let delivery = match row.get("lzfs") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let code = v.as_str().unwrap_or_default();
            Some(
                code.parse::<u8>()
                    .ok()
                    .and_then(Delivery::from_code)
                    .ok_or_else(|| ("unknown_code", format!("lzfs {code:?} is not a delivery mode (1-3)")))?,
            )
        }
    };
    let (applicant_kind, agent_kind) = match text(row, "sqrlx")? {
        "1" => (ApplicantKind::Individual, None),
        "2" => (ApplicantKind::Enterprise, None),
        "3" => (ApplicantKind::Individual, Some(AgentKind::Developer)),
        "4" => (ApplicantKind::Individual, Some(AgentKind::Bank)),
        "5" => (ApplicantKind::Individual, Some(AgentKind::ProvidentFund)),
        "6" => (ApplicantKind::Individual, Some(AgentKind::Agency)),
        "7" => (ApplicantKind::Judicial, None),
        other => return Err(("unknown_code", format!("sqrlx {other:?} is not an applicant kind (1-7)"))),
    };
    let applicant = row.get("sqr").and_then(Value::as_array).and_then(|a| a.first()).ok_or_else(|| missing("sqr"))?;
    let applicant_name = text(applicant, "xm").map_err(|_| missing("sqr[0].xm"))?.to_owned();
    let id_no = text(applicant, "zjh").map_err(|_| missing("sqr[0].zjh"))?;
    let applicant_id_no = match text(applicant, "zjzl").map_err(|_| missing("sqr[0].zjzl"))? {
        "1" => {
            ResidentId::parse(id_no).map_err(|e| ("bad_identifier", format!("sqr[0].zjh: {e}")))?.as_str().to_owned()
        }
        // A credit-code checksum failure is a QC warning, not a reason to refuse the case.
        "2" => {
            CreditCode::parse(id_no).map_err(|e| ("bad_identifier", format!("sqr[0].zjh: {e}")))?.as_str().to_owned()
        }
        other => return Err(("unknown_code", format!("sqr[0].zjzl {other:?} is not 1 or 2"))),
    };
    let unit_no = match row.get("bdcdyh") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = v.as_str().unwrap_or_default();
            Some(UnitNo::parse(s).map_err(|e| ("bad_identifier", format!("bdcdyh {s:?}: {e}")))?)
        }
    };
    let district = text(row, "xzqdm")?;
    if district.len() != 6 || !district.bytes().all(|b| b.is_ascii_digit()) {
        return Err(("malformed", format!("xzqdm {district:?} is not a six-digit division code")));
    }
    let submitted_at = time(row, "sjsj")?.ok_or_else(|| missing("sjsj"))?;
    let (accepted_at, verified_at, recorded_at) = (time(row, "slsj")?, time(row, "hdsj")?, time(row, "dbsj")?);
    let (cert_prepared_at, issued_at, archived_at) = (time(row, "szsj")?, time(row, "fzsj")?, time(row, "gdsj")?);
    let gxsj = time(row, "gxsj")?.ok_or_else(|| missing("gxsj"))?;
    let status = match text(row, "zt")? {
        "SL" if verified_at.is_some() => CaseStatus::Verified,
        "SL" if accepted_at.is_some() => CaseStatus::Accepted,
        "SL" => CaseStatus::Submitted,
        "BZ" => CaseStatus::Correction,
        "DB" if cert_prepared_at.is_some() => CaseStatus::CertificatePrepared,
        "DB" => CaseStatus::Recorded,
        "FZ" => CaseStatus::Issued,
        "GD" => CaseStatus::Archived,
        "BYSL" => CaseStatus::Refused,
        "CH" => CaseStatus::Withdrawn,
        other => return Err(("unknown_code", format!("zt {other:?} is not a status code"))),
    };
    let correction_count = row.get("bzcs").and_then(Value::as_i64).unwrap_or(0);
    let handler = match row.get("blr") {
        None | Some(Value::Null) => None,
        Some(Value::String(code))
            if (1..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Some(code.clone())
        }
        Some(other) => return Err(("malformed", format!("blr {other} is not a staff code (letters, digits, -)"))),
    };
    let optional = |field: &str| row.get(field).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(CaseRecord {
        source: SOURCE.into(),
        external_id: ywh.to_owned(),
        case_no: ywh.to_owned(),
        vendor_code,
        channel,
        delivery,
        applicant_kind,
        agent_kind,
        agent_id: None,
        applicant_name,
        applicant_id_no,
        district: district.to_owned(),
        unit_no,
        status,
        submitted_at,
        accepted_at,
        verified_at,
        recorded_at,
        cert_prepared_at,
        issued_at,
        archived_at,
        closed_at: status.is_excluded_from_scope().then_some(gxsj),
        correction_count,
        filing_no: optional("htbah"),
        loan_ref: optional("dkbh"),
        handler,
        source_updated_at: gxsj,
    })
}

/// Validates one row of the QC feed.
pub fn parse_qc_finding(row: &Value) -> Result<QcFinding, RowError> {
    let severity = number(row, "ccdj")?;
    if !(1..=3).contains(&severity) {
        return Err(("unknown_code", format!("ccdj {severity} is not a severity (1-3)")));
    }
    Ok(QcFinding {
        source: QC_SOURCE.into(),
        external_id: text(row, "id")?.to_owned(),
        case_source: SOURCE.into(),
        case_external_id: text(row, "ywh")?.to_owned(),
        category: text(row, "cclx")?.to_owned(),
        severity: severity.to_string(),
        section: text(row, "zrks")?.to_owned(),
        description: row.get("ms").and_then(Value::as_str).unwrap_or_default().to_owned(),
        found_at: time(row, "jcsj")?.ok_or_else(|| missing("jcsj"))?,
        corrected_at: time(row, "zgsj")?,
        source_updated_at: time(row, "gxsj")?.ok_or_else(|| missing("gxsj"))?,
    })
}

/// Validates one row of the evaluation feed. The vendor counts 5 = very
/// satisfied down to 1; the store counts 1 = very satisfied up to 5.
pub fn parse_evaluation(row: &Value) -> Result<Evaluation, RowError> {
    let pjdj = number(row, "pjdj")?;
    if !(1..=5).contains(&pjdj) {
        return Err(("unknown_code", format!("pjdj {pjdj} is not a level (1-5)")));
    }
    Ok(Evaluation {
        source: EVALUATION_SOURCE.into(),
        external_id: text(row, "id")?.to_owned(),
        case_source: SOURCE.into(),
        case_external_id: text(row, "ywh")?.to_owned(),
        level: 6 - pjdj,
        channel: text(row, "pjqd")?.to_owned(),
        comment: row.get("pjnr").and_then(Value::as_str).unwrap_or_default().to_owned(),
        evaluated_at: time(row, "pjsj")?.ok_or_else(|| missing("pjsj"))?,
        rectified_at: time(row, "zgsj")?,
        source_updated_at: time(row, "gxsj")?.ok_or_else(|| missing("gxsj"))?,
    })
}

impl Source for Registry {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch_page(&self, cursor: Option<&str>) -> Result<Page, PageError> {
        let url = format!(
            "{}/{}?limit={}&cursor={}",
            self.base_url.trim_end_matches('/'),
            self.feed.path(),
            self.page_size,
            cursor.unwrap_or_default()
        );
        let body = fetch::get(&self.client, &url, None, &self.policy).await?;
        let envelope: Value =
            serde_json::from_slice(&body).map_err(|e| PageError::Unreadable(format!("{url}: {e}")))?;
        let data = envelope["data"].as_array().ok_or_else(|| PageError::Unreadable(format!("{url}: no data array")))?;
        let next_cursor = envelope["next_cursor"]
            .as_str()
            .ok_or_else(|| PageError::Unreadable(format!("{url}: no next_cursor")))?
            .to_owned();
        let has_more =
            envelope["has_more"].as_bool().ok_or_else(|| PageError::Unreadable(format!("{url}: no has_more")))?;
        let rows = data
            .iter()
            .enumerate()
            .map(|(i, row)| {
                self.feed.parse(row).map_err(|(reason_code, reason)| BadRow {
                    position: format!("{} cursor {:?} row {i}", self.feed.path(), cursor.unwrap_or_default()),
                    reason_code,
                    reason,
                    raw: row.to_string().into_bytes(),
                })
            })
            .collect();
        Ok(Page { rows, next_cursor, has_more, file: None })
    }
}
