//! The registry's business system: three cursor-paged JSON feeds with the
//! vendor's field names (`docs/partners.md` §1): cases, QC findings and
//! satisfaction evaluations, validated into store records. A row with a
//! missing field, an unknown code or a broken identifier is a [`BadRow`]:
//! quarantined with the field named, the page goes on.

use chrono::{DateTime, Utc};
use domain::ident::{CreditCode, IdentError, ResidentId, UnitNo, mask_id_number};
use domain::{AgentKind, ApplicantKind, CaseStatus, Channel, Delivery, VendorCode};
use serde_json::Value;
use store::cases::CaseRecord;
use store::findings::Flaw;
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
    /// The feed's path under the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Cases => "cases",
            Self::QcFindings => "qc-findings",
            Self::Evaluations => "evaluations",
        }
    }

    fn parse(self, row: &Value) -> Result<Record, RowError> {
        match self {
            Self::Cases => parse_case(row).map(|(c, flaws)| Record::Case(Box::new(c), flaws)),
            Self::QcFindings => parse_qc_finding(row).map(|(q, flaws)| Record::Qc(q, flaws)),
            Self::Evaluations => parse_evaluation(row).map(|(e, flaws)| Record::Evaluation(e, flaws)),
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

/// A party's ID number as kept: normalized when it passes its check, else
/// masked with a [`Flaw`] naming `field` (the record is real all the same:
/// a loan or a filing is kept and flagged, like a case).
pub(crate) fn kept_party_id(id: &str, field: &str, flaws: &mut Vec<Flaw>) -> String {
    either_id(id).unwrap_or_else(|e| {
        let masked = mask_id_number(id);
        flaws.push(Flaw {
            field: field.to_owned(),
            rule: ident_rule(&e),
            detail: format!("{field} {masked}: {e}"),
            value_masked: masked.clone(),
        });
        masked
    })
}

/// A resident ID or, failing that, a credit code. A number that is a resident
/// ID but for its check character stays a resident ID error: an all-digit
/// credit code is well formed too, and its checksum failing is only a warning,
/// so falling back would take a mistyped ID number for an enterprise's code.
fn either_id(id: &str) -> Result<String, IdentError> {
    match ResidentId::parse(id) {
        Ok(resident) => Ok(resident.as_str().to_owned()),
        Err(e @ IdentError::CheckDigit { .. }) => Err(e),
        Err(resident) => CreditCode::parse(id).map(|code| code.as_str().to_owned()).map_err(|_| resident),
    }
}

fn number(row: &Value, field: &str) -> Result<i64, RowError> {
    match row.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(v) => v.as_i64().ok_or_else(|| ("malformed", format!("{field} {v} is not a whole number"))),
    }
}

/// An ISO 8601 time with an offset (`2024-10-08T09:30:00+08:00`, `…Z`), or
/// without one, read as China time (the partners' clocks are all in China).
pub fn iso_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    domain::time::parse_china(text, "%Y-%m-%dT%H:%M:%S%.f")
}

pub(crate) fn time(row: &Value, field: &str) -> Result<Option<DateTime<Utc>>, RowError> {
    match row.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            iso_time(s).map(Some).ok_or_else(|| ("malformed", format!("{field} {s:?} is not an ISO 8601 time")))
        }
        Some(other) => Err(("malformed", format!("{field} {other} is not a time"))),
    }
}

/// The rule an identifier broke, for data-quality findings.
pub(crate) fn ident_rule(error: &IdentError) -> &'static str {
    match error {
        IdentError::Length { .. } => "length",
        IdentError::InvalidCharacter { .. } => "character",
        IdentError::CheckDigit { .. } => "check_digit",
        IdentError::BirthDate { .. } => "birth_date",
        IdentError::InvalidSegment { .. } | IdentError::MissingSegment { .. } => "segment",
    }
}

/// Collects the flaws of the fields a case is kept despite.
#[derive(Debug, Default)]
struct Flaws(Vec<Flaw>);

impl Flaws {
    fn add(&mut self, field: &str, rule: &'static str, detail: String, value_masked: String) {
        self.0.push(Flaw { field: field.to_owned(), rule, detail, value_masked });
    }

    /// An optional time that does not parse is a flaw, and no time.
    fn time(&mut self, row: &Value, field: &str) -> Option<DateTime<Utc>> {
        time(row, field).unwrap_or_else(|(rule, detail)| {
            self.add(field, rule, detail, row.get(field).map(value_text).unwrap_or_default());
            None
        })
    }
}

/// A JSON value as text, for a finding: strings without their quotes.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The applicant's ID number as kept: normalized when it passes its check;
/// otherwise a flaw, kept masked (`zjzl` says which kind; an unknown `zjzl`
/// takes whichever kind the number passes as).
fn applicant_id(zjzl: Option<&str>, id_no: &str, flaws: &mut Flaws) -> String {
    let checked = match zjzl {
        Some("1") => ResidentId::parse(id_no).map(|r| r.as_str().to_owned()),
        Some("2") => CreditCode::parse(id_no).map(|c| c.as_str().to_owned()),
        _ => either_id(id_no),
    };
    checked.unwrap_or_else(|e| {
        let masked = mask_id_number(id_no);
        flaws.add("sqr[0].zjh", ident_rule(&e), format!("sqr[0].zjh {masked}: {e}"), masked.clone());
        masked
    })
}

/// Validates one row of the case feed. Only what cannot be interpreted is a
/// [`RowError`] (quarantine): the key `ywh`, the business type `sqlx`, the
/// channel `sqfs`, the submission time `sjsj`, the status `zt` and the
/// version `gxsj`. A case with any other field flawed (an identifier failing
/// its check, an unknown delivery or applicant code, a malformed unit number,
/// district, handler or step time) happened all the same: it is kept and
/// counted, the field empty or masked, with a [`Flaw`] for each.
pub fn parse_case(row: &Value) -> Result<(CaseRecord, Vec<Flaw>), RowError> {
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
    let submitted_at = time(row, "sjsj")?.ok_or_else(|| missing("sjsj"))?;
    let gxsj = time(row, "gxsj")?.ok_or_else(|| missing("gxsj"))?;
    let zt = text(row, "zt")?;
    if !matches!(zt, "SL" | "BZ" | "DB" | "FZ" | "GD" | "BYSL" | "CH") {
        return Err(("unknown_code", format!("zt {zt:?} is not a status code")));
    }

    let mut flaws = Flaws::default();
    let delivery = match row.get("lzfs") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let code = value_text(v);
            let delivery = code.parse::<u8>().ok().and_then(Delivery::from_code);
            if delivery.is_none() {
                flaws.add("lzfs", "unknown_code", format!("lzfs {code:?} is not a delivery mode (1-3)"), code);
            }
            delivery
        }
    };
    let sqrlx = row.get("sqrlx").map(value_text).unwrap_or_default();
    let (applicant_kind, agent_kind) = match sqrlx.as_str() {
        "1" => (ApplicantKind::Individual, None),
        "2" => (ApplicantKind::Enterprise, None),
        "3" => (ApplicantKind::Individual, Some(AgentKind::Developer)),
        "4" => (ApplicantKind::Individual, Some(AgentKind::Bank)),
        "5" => (ApplicantKind::Individual, Some(AgentKind::ProvidentFund)),
        "6" => (ApplicantKind::Individual, Some(AgentKind::Agency)),
        "7" => (ApplicantKind::Judicial, None),
        "" => {
            flaws.add("sqrlx", "missing_field", "missing field sqrlx; counted as an individual".into(), sqrlx);
            (ApplicantKind::Individual, None)
        }
        _ => {
            let detail = format!("sqrlx {sqrlx:?} is not an applicant kind (1-7); counted as an individual");
            flaws.add("sqrlx", "unknown_code", detail, sqrlx);
            (ApplicantKind::Individual, None)
        }
    };
    let applicant = row.get("sqr").and_then(Value::as_array).and_then(|a| a.first());
    let (applicant_name, applicant_id_no) = match applicant {
        None => {
            flaws.add("sqr", "missing_field", "missing field sqr (no applicant)".into(), String::new());
            (String::new(), String::new())
        }
        Some(applicant) => {
            let name = match text(applicant, "xm") {
                Ok(name) => name.to_owned(),
                Err(_) => {
                    flaws.add("sqr[0].xm", "missing_field", "missing field sqr[0].xm".into(), String::new());
                    String::new()
                }
            };
            let zjzl = applicant.get("zjzl").and_then(Value::as_str);
            if !matches!(zjzl, Some("1" | "2")) {
                let code = applicant.get("zjzl").map(value_text).unwrap_or_default();
                flaws.add("sqr[0].zjzl", "unknown_code", format!("sqr[0].zjzl {code:?} is not 1 or 2"), code);
            }
            let id_no = match text(applicant, "zjh") {
                Ok(id_no) => applicant_id(zjzl, id_no, &mut flaws),
                Err(_) => {
                    flaws.add("sqr[0].zjh", "missing_field", "missing field sqr[0].zjh".into(), String::new());
                    String::new()
                }
            };
            (name, id_no)
        }
    };
    // `sqrlx` names the agent when there is one; the applicant's own kind then
    // shows in its document: a credit code (`zjzl` 2) is an enterprise's.
    let applicant_zjzl = applicant.and_then(|a| a.get("zjzl")).and_then(Value::as_str);
    let applicant_kind =
        if agent_kind.is_some() && applicant_zjzl == Some("2") { ApplicantKind::Enterprise } else { applicant_kind };
    let unit_no = match row.get("bdcdyh") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = value_text(v);
            match UnitNo::parse(&s) {
                Ok(unit) => Some(unit),
                Err(e) => {
                    flaws.add("bdcdyh", ident_rule(&e), format!("bdcdyh {s:?}: {e}"), s);
                    None
                }
            }
        }
    };
    let xzqdm = row.get("xzqdm").map(value_text).unwrap_or_default();
    let district = if xzqdm.len() == 6 && xzqdm.bytes().all(|b| b.is_ascii_digit()) {
        xzqdm
    } else {
        let rule = if xzqdm.is_empty() { "missing_field" } else { "malformed" };
        flaws.add("xzqdm", rule, format!("xzqdm {xzqdm:?} is not a six-digit division code"), xzqdm);
        String::new()
    };
    let (accepted_at, verified_at, recorded_at) =
        (flaws.time(row, "slsj"), flaws.time(row, "hdsj"), flaws.time(row, "dbsj"));
    let (cert_prepared_at, issued_at, archived_at) =
        (flaws.time(row, "szsj"), flaws.time(row, "fzsj"), flaws.time(row, "gdsj"));
    let status = match zt {
        "SL" if verified_at.is_some() => CaseStatus::Verified,
        "SL" if accepted_at.is_some() => CaseStatus::Accepted,
        "SL" => CaseStatus::Submitted,
        "BZ" => CaseStatus::Correction,
        "DB" if cert_prepared_at.is_some() => CaseStatus::CertificatePrepared,
        "DB" => CaseStatus::Recorded,
        "FZ" => CaseStatus::Issued,
        "GD" => CaseStatus::Archived,
        "BYSL" => CaseStatus::Refused,
        _ => CaseStatus::Withdrawn,
    };
    // Absent or null: no corrections. Anything but a whole number is a flaw,
    // and the count is undetermined (so is the case's first-time-right), never 0.
    let correction_count = match row.get("bzcs") {
        None | Some(Value::Null) => Some(0),
        Some(v) => {
            let count = v.as_i64().filter(|n| *n >= 0);
            if count.is_none() {
                flaws.add(
                    "bzcs",
                    "malformed",
                    format!("bzcs {v} is not a whole number of corrections; first-time-right left undetermined"),
                    value_text(v),
                );
            }
            count
        }
    };
    let handler = match row.get("blr") {
        None | Some(Value::Null) => None,
        Some(Value::String(code))
            if (1..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Some(code.clone())
        }
        Some(other) => {
            let detail = format!("blr {other} is not a staff code (letters, digits, -)");
            flaws.add("blr", "malformed", detail, value_text(other));
            None
        }
    };
    let optional = |field: &str| row.get(field).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let case = CaseRecord {
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
        district,
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
    };
    Ok((case, flaws.0))
}

/// The QC categories of `cclx` (docs/partners.md §1).
pub const QC_CATEGORIES: [&str; 7] = ["SQCL", "QLR", "FW", "DBNR", "ZS", "LC", "QT"];
/// The evaluation channels of `pjqd`.
pub const EVALUATION_CHANNELS: [&str; 2] = ["online", "onsite"];

/// Validates one row of the QC feed. An unknown `cclx` keeps the finding
/// (it happened) with its code as sent, flagged.
pub fn parse_qc_finding(row: &Value) -> Result<(QcFinding, Vec<Flaw>), RowError> {
    let severity = number(row, "ccdj")?;
    if !(1..=3).contains(&severity) {
        return Err(("unknown_code", format!("ccdj {severity} is not a severity (1-3)")));
    }
    let mut flaws = Flaws(Vec::new());
    let category = text(row, "cclx")?;
    if !QC_CATEGORIES.contains(&category) {
        flaws.add(
            "cclx",
            "unknown_code",
            format!("cclx {category:?} is not a category ({})", QC_CATEGORIES.join(", ")),
            category.to_owned(),
        );
    }
    let finding = QcFinding {
        source: QC_SOURCE.into(),
        external_id: text(row, "id")?.to_owned(),
        case_source: SOURCE.into(),
        case_external_id: text(row, "ywh")?.to_owned(),
        category: category.to_owned(),
        severity: severity.to_string(),
        section: text(row, "zrks")?.to_owned(),
        description: row.get("ms").and_then(Value::as_str).unwrap_or_default().to_owned(),
        found_at: time(row, "jcsj")?.ok_or_else(|| missing("jcsj"))?,
        corrected_at: time(row, "zgsj")?,
        source_updated_at: time(row, "gxsj")?.ok_or_else(|| missing("gxsj"))?,
    };
    Ok((finding, flaws.0))
}

/// Validates one row of the evaluation feed. The vendor counts 5 = very
/// satisfied down to 1; the store counts 1 = very satisfied up to 5. An
/// unknown `pjqd` keeps the evaluation with its channel as sent, flagged.
pub fn parse_evaluation(row: &Value) -> Result<(Evaluation, Vec<Flaw>), RowError> {
    let pjdj = number(row, "pjdj")?;
    if !(1..=5).contains(&pjdj) {
        return Err(("unknown_code", format!("pjdj {pjdj} is not a level (1-5)")));
    }
    let mut flaws = Flaws(Vec::new());
    let channel = text(row, "pjqd")?;
    if !EVALUATION_CHANNELS.contains(&channel) {
        flaws.add("pjqd", "unknown_code", format!("pjqd {channel:?} is not online or onsite"), channel.to_owned());
    }
    let evaluation = Evaluation {
        source: EVALUATION_SOURCE.into(),
        external_id: text(row, "id")?.to_owned(),
        case_source: SOURCE.into(),
        case_external_id: text(row, "ywh")?.to_owned(),
        level: 6 - pjdj,
        channel: channel.to_owned(),
        comment: row.get("pjnr").and_then(Value::as_str).unwrap_or_default().to_owned(),
        evaluated_at: time(row, "pjsj")?.ok_or_else(|| missing("pjsj"))?,
        rectified_at: time(row, "zgsj")?,
        source_updated_at: time(row, "gxsj")?.ok_or_else(|| missing("gxsj"))?,
    };
    Ok((evaluation, flaws.0))
}

/// Decodes one page of `feed` as received (`{"data":[…],"next_cursor":…,"has_more":…}`):
/// every row validated, bad rows kept with their position after `cursor`.
pub fn decode_page(feed: RegistryFeed, body: &[u8], cursor: Option<&str>) -> Result<Page, PageError> {
    let envelope: Value = serde_json::from_slice(body).map_err(|e| PageError::Unreadable(e.to_string()))?;
    let data = envelope["data"].as_array().ok_or_else(|| PageError::Unreadable("no data array".into()))?;
    let next_cursor = match &envelope["next_cursor"] {
        Value::String(next) => next.clone(),
        // Unambiguous, though not the contract: an empty last page without a
        // cursor means nothing new, so the cursor stays where it is
        // (`partner check` names it as a deviation).
        Value::Null if data.is_empty() => cursor.unwrap_or_default().to_owned(),
        _ => return Err(PageError::Unreadable("no next_cursor".into())),
    };
    let has_more = envelope["has_more"].as_bool().ok_or_else(|| PageError::Unreadable("no has_more".into()))?;
    let rows = data
        .iter()
        .enumerate()
        .map(|(i, row)| {
            feed.parse(row).map_err(|(reason_code, reason)| BadRow {
                position: format!("{} 游标 {:?} 之后第 {} 条", feed.path(), cursor.unwrap_or_default(), i + 1),
                reason_code,
                reason,
                raw: row.to_string().into_bytes(),
            })
        })
        .collect();
    Ok(Page::new(rows, next_cursor, has_more))
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
        decode_page(self.feed, &body, cursor).map_err(|e| e.from_where(&url))
    }
}
