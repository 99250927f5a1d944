//! The case-level lists behind a figure (the dashboards' drill-downs), as
//! typed queries on a snapshot: typed filters in, typed rows out, identities
//! masked. Filter values are checked plain codes ([`crate::kpi::is_plain_code`])
//! before they reach SQL; the conditions are returned for the audit entry the
//! caller writes.

use chrono::NaiveDate;
use serde_json::Value;

use crate::WarehouseError;
use crate::cache::OpenSnapshot;
use crate::kpi::{batches_to_rows, cell_text, is_plain_code};

/// Cases to list: submitted in `from..=to` (China time), with these codes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// First day, inclusive.
    pub from: NaiveDate,
    /// Last day, inclusive.
    pub to: NaiveDate,
    /// Submission month, `YYYY-MM`.
    pub month: Option<String>,
    /// District code.
    pub district: Option<String>,
    /// Business type code.
    pub business_type: Option<String>,
    /// Channel code.
    pub channel: Option<String>,
    /// Only cases in these statuses (a section's step); `None`: any.
    pub statuses: Option<Vec<&'static str>>,
}

/// QC findings to list: on cases submitted in `from..=to`, with these codes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// First day, inclusive.
    pub from: NaiveDate,
    /// Last day, inclusive.
    pub to: NaiveDate,
    /// Error category.
    pub category: Option<String>,
    /// Section charged.
    pub section: Option<String>,
    /// Submission month, `YYYY-MM`.
    pub month: Option<String>,
    /// District code.
    pub district: Option<String>,
    /// Business type code.
    pub business_type: Option<String>,
}

/// A listed case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    /// 业务号.
    pub case_no: String,
    /// Business type code.
    pub business_type: String,
    /// Channel code.
    pub channel: String,
    /// District code.
    pub district: String,
    /// Status code.
    pub status: String,
    /// When submitted, as the engine writes a UTC timestamp.
    pub submitted_at: String,
    /// The applicant's masked ID number.
    pub applicant_id_masked: String,
}

/// A listed QC finding with its case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRow {
    /// 业务号.
    pub case_no: String,
    /// Business type code.
    pub business_type: String,
    /// District code.
    pub district: String,
    /// The applicant's masked ID number.
    pub applicant_id_masked: String,
    /// Error category.
    pub category: String,
    /// Severity.
    pub severity: String,
    /// Section charged.
    pub section: String,
    /// When found.
    pub found_at: String,
    /// When corrected (empty while open).
    pub corrected_at: String,
}

/// A list and the conditions it was selected by (for the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<R> {
    /// The rows, newest first.
    pub rows: Vec<R>,
    /// The SQL conditions, as the audit entry records them.
    pub conditions: Vec<String>,
}

/// Conditions on the submission time and on plain codes.
fn conditions(
    submitted: &str,
    from: NaiveDate,
    to: NaiveDate,
    codes: &[(&str, &Option<String>)],
) -> Result<Vec<String>, WarehouseError> {
    let mut conditions = vec![format!(
        "{submitted} >= TIMESTAMP '{}' AND {submitted} < TIMESTAMP '{}'",
        domain::time::local_day_end(from.pred_opt().unwrap_or(from)).format("%Y-%m-%dT%H:%M:%SZ"),
        domain::time::local_day_end(to).format("%Y-%m-%dT%H:%M:%SZ")
    )];
    for (column, value) in codes {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            if !is_plain_code(v) {
                return Err(WarehouseError::BadRequest(format!("{column} {v:?}: expected a code")));
            }
            conditions.push(format!("CAST({column} AS VARCHAR) = '{v}'"));
        }
    }
    Ok(conditions)
}

fn text(row: &serde_json::Map<String, Value>, column: &str) -> String {
    cell_text(row.get(column))
}

/// The newest `limit` cases matching `filter` on `snapshot`.
pub async fn cases(
    snapshot: &OpenSnapshot,
    filter: &CaseFilter,
    limit: usize,
) -> Result<Listed<CaseRow>, WarehouseError> {
    let mut conditions = conditions(
        "submitted_at",
        filter.from,
        filter.to,
        &[
            ("month", &filter.month),
            ("district", &filter.district),
            ("business_type", &filter.business_type),
            ("channel", &filter.channel),
        ],
    )?;
    if let Some(statuses) = &filter.statuses {
        if let Some(bad) = statuses.iter().find(|s| !is_plain_code(s)) {
            return Err(WarehouseError::BadRequest(format!("status {bad:?}: expected a code")));
        }
        let list: Vec<String> = statuses.iter().map(|s| format!("'{s}'")).collect();
        conditions.push(format!("status IN ({})", list.join(", ")));
    }
    let sql = format!(
        "SELECT case_no, business_type, channel, district, status, submitted_at, applicant_id_masked \
         FROM cases WHERE {} ORDER BY submitted_at DESC, case_no LIMIT {limit}",
        conditions.join(" AND ")
    );
    let rows = batches_to_rows(&snapshot.query(&sql).await?)
        .iter()
        .map(|r| CaseRow {
            case_no: text(r, "case_no"),
            business_type: text(r, "business_type"),
            channel: text(r, "channel"),
            district: text(r, "district"),
            status: text(r, "status"),
            submitted_at: text(r, "submitted_at"),
            applicant_id_masked: text(r, "applicant_id_masked"),
        })
        .collect();
    Ok(Listed { rows, conditions })
}

/// The newest `limit` QC findings matching `filter` on `snapshot`.
pub async fn qc_findings(
    snapshot: &OpenSnapshot,
    filter: &FindingFilter,
    limit: usize,
) -> Result<Listed<FindingRow>, WarehouseError> {
    // The findings carry their case's dimensions and month: the filters prune
    // `qc_findings` itself, and the join reads only the matching months of `cases`.
    let conditions = conditions(
        "f.submitted_at",
        filter.from,
        filter.to,
        &[
            ("f.category", &filter.category),
            ("f.section", &filter.section),
            ("f.month", &filter.month),
            ("f.district", &filter.district),
            ("f.business_type", &filter.business_type),
        ],
    )?;
    let sql = format!(
        "SELECT c.case_no, c.business_type, c.district, c.applicant_id_masked, f.category, f.severity, f.section, \
         f.found_at, f.corrected_at \
         FROM qc_findings f JOIN cases c ON f.case_no = c.case_no AND f.month = c.month \
         WHERE {} ORDER BY f.found_at DESC, c.case_no LIMIT {limit}",
        conditions.join(" AND ")
    );
    let rows = batches_to_rows(&snapshot.query(&sql).await?)
        .iter()
        .map(|r| FindingRow {
            case_no: text(r, "case_no"),
            business_type: text(r, "business_type"),
            district: text(r, "district"),
            applicant_id_masked: text(r, "applicant_id_masked"),
            category: text(r, "category"),
            severity: text(r, "severity"),
            section: text(r, "section"),
            found_at: text(r, "found_at"),
            corrected_at: text(r, "corrected_at"),
        })
        .collect();
    Ok(Listed { rows, conditions })
}
