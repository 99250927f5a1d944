//! The columns of the warehouse's `cases` table, listed once: each with its
//! name, whether it may be null, and how its value is read from a stored case
//! (and the values derived from it once per case: the calendar deadline, on
//! time or not, the applicant's keyed hash). The Parquet schema and the batch
//! builder are both derived from [`CASE_COLUMNS`], so a new column is one
//! entry here (plus its field in the store and its migration); columns are
//! found by name, never by position.

use std::sync::Arc;

use chrono::{DateTime, Datelike as _, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use domain::ident::mask_id_number;
use domain::is_end_to_end_online;
use domain::time::{china_time, from_china, local_date};
use store::cases::{CaseRecord, StoredCase};

use crate::WarehouseError;
use crate::export::{RefreshOptions, applicant_key};

/// One case with the values derived from it once, for the columns to read.
pub(crate) struct Row<'a> {
    c: &'a CaseRecord,
    phase: Option<i64>,
    phase_live: bool,
    issues_certificate: bool,
    applicant_key: String,
    applicant_id_masked: String,
    week: String,
    due_at: Option<DateTime<Utc>>,
    on_time: Option<bool>,
}

impl<'a> Row<'a> {
    fn of(c: &'a CaseRecord, options: &RefreshOptions) -> Row<'a> {
        let bt = c.business_type();
        let info = options.catalogue.get(bt);
        let local = local_date(c.submitted_at);
        let iso = local.iso_week();
        let due_at = c.accepted_at.map(|accepted| {
            from_china(options.calendar.deadline(china_time(accepted).naive_local(), info.committed_limit))
        });
        let on_time = match (c.accepted_at, c.recorded_at) {
            (Some(accepted), Some(recorded)) => Some(options.calendar.is_within_limit(
                china_time(accepted).naive_local(),
                china_time(recorded).naive_local(),
                info.committed_limit,
            )),
            _ => None,
        };
        Row {
            c,
            phase: info.phase.map(|p| i64::from(p.number())),
            phase_live: local >= info.go_live,
            issues_certificate: bt.issues_certificate(),
            applicant_key: applicant_key(&options.key, &c.applicant_id_no),
            applicant_id_masked: mask_id_number(&c.applicant_id_no),
            week: format!("{:04}-W{:02}", iso.year(), iso.week()),
            due_at,
            on_time,
        }
    }
}

/// How a column's value is read from a [`Row`], by Arrow type.
pub(crate) enum Get {
    /// `Utf8`.
    Text(for<'r> fn(&'r Row<'r>) -> Option<&'r str>),
    /// `Int64`.
    Int(fn(&Row<'_>) -> Option<i64>),
    /// `Boolean`.
    Bool(fn(&Row<'_>) -> Option<bool>),
    /// `Timestamp(µs, UTC)`.
    Time(fn(&Row<'_>) -> Option<DateTime<Utc>>),
}

/// One column of `cases`.
pub struct CaseColumn {
    /// Its name.
    pub name: &'static str,
    /// Whether it may be null.
    pub nullable: bool,
    get: Get,
}

impl std::fmt::Debug for CaseColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseColumn").field("name", &self.name).field("type", &data_type(&self.get)).finish()
    }
}

const fn col(name: &'static str, nullable: bool, get: Get) -> CaseColumn {
    CaseColumn { name, nullable, get }
}

/// Every column of `cases`, in file order (without the `month` partition column).
pub const CASE_COLUMNS: &[CaseColumn] = &[
    col("case_no", false, Get::Text(|r| Some(&r.c.case_no))),
    col("business_type", false, Get::Text(|r| Some(r.c.business_type().code()))),
    col("vendor_code", false, Get::Int(|r| Some(i64::from(r.c.vendor_code.code())))),
    col("phase", true, Get::Int(|r| r.phase)),
    col("phase_live", false, Get::Bool(|r| Some(r.phase_live))),
    col("channel", false, Get::Int(|r| Some(i64::from(r.c.channel.code())))),
    col("online", false, Get::Bool(|r| Some(r.c.channel.is_online()))),
    col(
        "end_to_end",
        false,
        Get::Bool(|r| Some(is_end_to_end_online(r.c.channel, r.c.delivery, r.issues_certificate))),
    ),
    col("delivery", true, Get::Int(|r| r.c.delivery.map(|d| i64::from(d.code())))),
    col("issues_certificate", false, Get::Bool(|r| Some(r.issues_certificate))),
    col("applicant_kind", false, Get::Text(|r| Some(r.c.applicant_kind.code()))),
    col("agent_kind", true, Get::Text(|r| r.c.agent_kind.map(|a| a.code()))),
    col("applicant_key", false, Get::Text(|r| Some(&r.applicant_key))),
    col("applicant_id_masked", false, Get::Text(|r| Some(&r.applicant_id_masked))),
    col("district", false, Get::Text(|r| Some(&r.c.district))),
    col("unit_no", true, Get::Text(|r| r.c.unit_no.as_ref().map(|u| u.as_str()))),
    col("status", false, Get::Text(|r| Some(r.c.status.code()))),
    col("in_scope", false, Get::Bool(|r| Some(!r.c.status.is_excluded_from_scope()))),
    col("week", false, Get::Text(|r| Some(&r.week))),
    col(SUBMITTED_AT, false, Get::Time(|r| Some(r.c.submitted_at))),
    col("accepted_at", true, Get::Time(|r| r.c.accepted_at)),
    col("verified_at", true, Get::Time(|r| r.c.verified_at)),
    col("recorded_at", true, Get::Time(|r| r.c.recorded_at)),
    col("cert_prepared_at", true, Get::Time(|r| r.c.cert_prepared_at)),
    col("issued_at", true, Get::Time(|r| r.c.issued_at)),
    col("archived_at", true, Get::Time(|r| r.c.archived_at)),
    col("closed_at", true, Get::Time(|r| r.c.closed_at)),
    col("due_at", true, Get::Time(|r| r.due_at)),
    col("on_time", true, Get::Bool(|r| r.on_time)),
    col("correction_count", true, Get::Int(|r| r.c.correction_count)),
    col("filing_no", true, Get::Text(|r| r.c.filing_no.as_deref())),
    col("loan_ref", true, Get::Text(|r| r.c.loan_ref.as_deref())),
];

/// The store's case columns (`store::cases::CASE_COLUMNS`) that `cases`
/// leaves out or carries in another form, and why: every store column is
/// either a column here or named in this list (a test holds it so), so a
/// column added to the store is exported, or left out on purpose.
pub const NOT_EXPORTED: &[(&str, &str)] = &[
    ("source", "the feed's name; case_no identifies the case"),
    ("external_id", "the feed's own key; case_no identifies the case"),
    ("agent_id", "a partner's or agent's identifier: agent_kind is what the KPIs break down by"),
    ("applicant_name", "personal data: analysts see neither names nor identity numbers"),
    ("applicant_id_no", "personal data: exported as applicant_key (keyed hash) and applicant_id_masked"),
    ("handler", "staff codes stay in the store, for the staff's own case list"),
    ("source_updated_at", "the feed's version, for upserts only"),
];

/// The column a month's file is sorted by.
pub const SUBMITTED_AT: &str = "submitted_at";

/// The case number column, the tie-break of the sort and the key of a merge.
pub const CASE_NO: &str = "case_no";

fn data_type(get: &Get) -> DataType {
    match get {
        Get::Text(_) => DataType::Utf8,
        Get::Int(_) => DataType::Int64,
        Get::Bool(_) => DataType::Boolean,
        Get::Time(_) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The schema of `cases` (without the `month` partition column).
pub fn cases_schema() -> SchemaRef {
    Arc::new(Schema::new(
        CASE_COLUMNS.iter().map(|c| Field::new(c.name, data_type(&c.get), c.nullable)).collect::<Vec<_>>(),
    ))
}

/// The position of the column `name` in [`cases_schema`].
pub fn position(name: &str) -> Result<usize, WarehouseError> {
    CASE_COLUMNS
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| WarehouseError::Corrupt(format!("cases has no column {name:?}")))
}

/// A column's builder.
enum Builder {
    Text(StringBuilder),
    Int(Int64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
}

/// Builds the `cases` batch of `cases`.
pub(crate) fn cases_batch(cases: &[StoredCase], options: &RefreshOptions) -> Result<RecordBatch, WarehouseError> {
    let n = cases.len();
    let mut builders: Vec<Builder> = CASE_COLUMNS
        .iter()
        .map(|c| match c.get {
            Get::Text(_) => Builder::Text(StringBuilder::with_capacity(n, n * 16)),
            Get::Int(_) => Builder::Int(Int64Builder::with_capacity(n)),
            Get::Bool(_) => Builder::Bool(BooleanBuilder::with_capacity(n)),
            Get::Time(_) => Builder::Time(TimestampMicrosecondBuilder::with_capacity(n)),
        })
        .collect();
    for stored in cases {
        let row = Row::of(&stored.record, options);
        for (column, builder) in CASE_COLUMNS.iter().zip(&mut builders) {
            match (&column.get, builder) {
                (Get::Text(get), Builder::Text(b)) => b.append_option(get(&row)),
                (Get::Int(get), Builder::Int(b)) => b.append_option(get(&row)),
                (Get::Bool(get), Builder::Bool(b)) => b.append_option(get(&row)),
                (Get::Time(get), Builder::Time(b)) => b.append_option(get(&row).map(|t| t.timestamp_micros())),
                _ => return Err(WarehouseError::Corrupt(format!("column {} built with another type", column.name))),
            }
        }
    }
    let utc: Arc<str> = "UTC".into();
    let columns: Vec<ArrayRef> = builders
        .into_iter()
        .map(|builder| -> ArrayRef {
            match builder {
                Builder::Text(mut b) => Arc::new(b.finish()),
                Builder::Int(mut b) => Arc::new(b.finish()),
                Builder::Bool(mut b) => Arc::new(b.finish()),
                Builder::Time(mut b) => Arc::new(b.finish().with_timezone(utc.clone())),
            }
        })
        .collect();
    Ok(RecordBatch::try_new(cases_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_the_list_and_names_are_unique() {
        let schema = cases_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let listed: Vec<&str> = CASE_COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(names, listed);
        let mut unique = listed.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), listed.len(), "a column is listed twice");
        assert_eq!(schema.field(position(SUBMITTED_AT).expect("listed")).data_type(), &data_type(&Get::Time(|_| None)));
        assert!(position("nope").is_err());
    }

    #[test]
    fn every_store_column_is_exported_or_left_out_on_purpose() {
        for column in store::cases::CASE_COLUMNS {
            let exported = CASE_COLUMNS.iter().any(|c| c.name == *column);
            let left_out = NOT_EXPORTED.iter().any(|(name, _)| name == column);
            assert!(
                exported != left_out,
                "store column {column}: add it to CASE_COLUMNS or say in NOT_EXPORTED why it is left out (not both)"
            );
        }
        for (name, _) in NOT_EXPORTED {
            assert!(store::cases::CASE_COLUMNS.contains(name), "NOT_EXPORTED names {name}, which the store lacks");
        }
    }
}
