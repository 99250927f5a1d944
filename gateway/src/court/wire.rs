//! `<CourtOrder>` on the wire → [`CourtOrder`] in the domain. Missing and
//! malformed fields are the sender's format errors (400); identifiers that are
//! well-formed XML but not valid numbers are business refusals (422). Every
//! message names the element at fault.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use domain::court_order::{CourtAction, CourtOrder};
use domain::ident::{CaseNo, CertificateNo, UnitNo};
use sha2::{Digest, Sha256};

use super::xml::Element;

/// Elements a `<CourtOrder>` may contain.
const FIELDS: [&str; 14] = [
    "OrderNo",
    "CourtCode",
    "CourtName",
    "CaseNo",
    "Action",
    "UnitNo",
    "CertNo",
    "Respondent",
    "StartDate",
    "EndDate",
    "OriginalOrderNo",
    "RulingNo",
    "Judge",
    "ServedAt",
];

/// Why an order could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FieldError {
    /// A required element is absent or empty (400).
    #[error("missing field {0}")]
    Missing(String),
    /// An element's text is not in the required format (400).
    #[error("malformed field {field}: {reason}")]
    Malformed { field: String, reason: String },
    /// An element this API does not define (400).
    #[error("unknown element {0} in CourtOrder")]
    Unknown(String),
    /// A well-formed value that is not a valid identifier (422): the rule it
    /// breaks and what is wrong.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, rule: &'static str, reason: String },
}

/// The rule of each identifier the API checks, as the sandbox report names it.
const CASE_NO_RULE: &str =
    "案号 (case number): (year) + court code + case type + serial + 号, e.g. (2024)湘0405执123号";
const UNIT_NO_RULE: &str = "不动产单元号 (unit number, GB/T 37346-2019): 28 characters, division (6) + zone (3) + subzone (3) \
     + parcel code (2) + parcel (5) + fixture code (1) + building (4) + unit (4)";
const CERT_NO_RULE: &str = "不动产权证书号/证明号 (certificate number): province + (year) + city or county + 不动产权第/不动产证明第 + serial + 号";

impl FieldError {
    /// True for business refusals (422) rather than format errors (400).
    pub(crate) fn is_business(&self) -> bool {
        matches!(self, Self::Invalid { .. })
    }

    /// The element at fault, e.g. `CourtOrder/UnitNo`.
    pub(crate) fn field(&self) -> String {
        match self {
            Self::Missing(field) | Self::Malformed { field, .. } | Self::Invalid { field, .. } => field.clone(),
            Self::Unknown(name) => format!("CourtOrder/{name}"),
        }
    }

    /// The rule the element broke.
    pub(crate) fn rule(&self) -> String {
        match self {
            Self::Missing(_) => "required by court-api.xsd".to_owned(),
            Self::Malformed { reason, .. } => reason.clone(),
            Self::Unknown(_) => "not an element of CourtOrder in court-api.xsd".to_owned(),
            Self::Invalid { rule, .. } => (*rule).to_owned(),
        }
    }

    /// Machine-readable code for receipts.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Missing(_) => "missing_field",
            Self::Malformed { .. } => "malformed_field",
            Self::Unknown(_) => "unknown_element",
            Self::Invalid { .. } => "invalid_field",
        }
    }
}

fn text<'a>(order: &'a Element, name: &str) -> Option<&'a str> {
    order.child(name).map(|e| e.text.trim()).filter(|t| !t.is_empty())
}

fn required<'a>(order: &'a Element, name: &str) -> Result<&'a str, FieldError> {
    text(order, name).ok_or_else(|| FieldError::Missing(format!("CourtOrder/{name}")))
}

fn date(order: &Element, name: &str) -> Result<NaiveDate, FieldError> {
    let value = required(order, name)?;
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| FieldError::Malformed {
        field: format!("CourtOrder/{name}"),
        reason: format!("{value:?} is not a date like 2024-10-08"),
    })
}

/// ISO 8601 with an offset; without one, China Standard Time is assumed.
fn served_at(order: &Element) -> Result<DateTime<Utc>, FieldError> {
    let value = required(order, "ServedAt")?;
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S").map_err(|_| FieldError::Malformed {
        field: "CourtOrder/ServedAt".into(),
        reason: format!("{value:?} is not an ISO 8601 time like 2024-10-08T09:30:00+08:00"),
    })?;
    Ok(domain::time::from_china(naive))
}

/// The order number, if present (for receipts of refused orders).
pub(crate) fn order_no(order: &Element) -> String {
    text(order, "OrderNo").unwrap_or_default().to_owned()
}

/// SHA-256 over the order's fields in a fixed order: two sends of the same
/// order have the same hash whatever their whitespace or element order.
pub(crate) fn content_hash(order: &Element) -> String {
    let mut hasher = Sha256::new();
    for name in FIELDS {
        if name == "Respondent" {
            let respondent = order.child("Respondent");
            for sub in ["Name", "IdNo"] {
                let value = respondent.and_then(|r| text(r, sub)).unwrap_or_default();
                hasher.update(format!("Respondent/{sub}={value}\n").as_bytes());
            }
        } else {
            hasher.update(format!("{name}={}\n", text(order, name).unwrap_or_default()).as_bytes());
        }
    }
    hex::encode(hasher.finalize())
}

/// Validates one `<CourtOrder>` element.
pub(crate) fn to_order(order: &Element) -> Result<CourtOrder, FieldError> {
    if let Some(unknown) = order.children.iter().find(|c| !FIELDS.contains(&c.name.as_str())) {
        return Err(FieldError::Unknown(unknown.name.clone()));
    }
    let order_no = required(order, "OrderNo")?.to_owned();
    if order_no.chars().count() > 64 {
        return Err(FieldError::Malformed {
            field: "CourtOrder/OrderNo".into(),
            reason: "longer than 64 characters".into(),
        });
    }
    let court_code = required(order, "CourtCode")?.to_owned();
    let court_name = required(order, "CourtName")?.to_owned();
    let case_no_text = required(order, "CaseNo")?;
    let action = required(order, "Action")?;
    let unit_no_text = required(order, "UnitNo")?;
    let respondent = order.child("Respondent").ok_or_else(|| FieldError::Missing("CourtOrder/Respondent".into()))?;
    let respondent_name =
        text(respondent, "Name").ok_or_else(|| FieldError::Missing("CourtOrder/Respondent/Name".into()))?.to_owned();
    let respondent_id_no =
        text(respondent, "IdNo").ok_or_else(|| FieldError::Missing("CourtOrder/Respondent/IdNo".into()))?.to_owned();
    let ruling_no = required(order, "RulingNo")?.to_owned();
    let judge = required(order, "Judge")?.to_owned();
    let served_at = served_at(order)?;
    let action = match action {
        "SEIZE" => CourtAction::Seize { start: date(order, "StartDate")?, end: date(order, "EndDate")? },
        "RENEW" => CourtAction::Renew {
            original_order_no: required(order, "OriginalOrderNo")?.to_owned(),
            start: date(order, "StartDate")?,
            end: date(order, "EndDate")?,
        },
        "RELEASE" => CourtAction::Release { original_order_no: required(order, "OriginalOrderNo")?.to_owned() },
        other => {
            return Err(FieldError::Malformed {
                field: "CourtOrder/Action".into(),
                reason: format!("{other:?} is not SEIZE, RENEW or RELEASE"),
            });
        }
    };
    let case_no = CaseNo::parse(case_no_text).map_err(|e| FieldError::Invalid {
        field: "CourtOrder/CaseNo".into(),
        rule: CASE_NO_RULE,
        reason: format!("{case_no_text:?}: {e}"),
    })?;
    let unit_no = UnitNo::parse(unit_no_text).map_err(|e| FieldError::Invalid {
        field: "CourtOrder/UnitNo".into(),
        rule: UNIT_NO_RULE,
        reason: format!("{unit_no_text:?}: {e}"),
    })?;
    let cert_no = match text(order, "CertNo") {
        None => None,
        Some(c) => Some(CertificateNo::parse(c).map_err(|e| FieldError::Invalid {
            field: "CourtOrder/CertNo".into(),
            rule: CERT_NO_RULE,
            reason: format!("{c:?}: {e}"),
        })?),
    };
    Ok(CourtOrder {
        order_no,
        court_code,
        court_name,
        case_no,
        action,
        unit_no,
        cert_no,
        respondent_name,
        respondent_id_no,
        ruling_no,
        judge,
        served_at,
    })
}
