//! `warehouse refresh`: the store exported to Parquet.
//!
//! - `cases/month=YYYY-MM/part-0.parquet`: one file per submission month
//!   (China time), sorted by submission time, zstd, page statistics. Only
//!   months with cases written since the last snapshot's watermark are
//!   rewritten; the others are hard-linked from the previous snapshot.
//! - `qc_findings`, `evaluations`, `seizures`, `anomalies`: one file each,
//!   rewritten every time (they are small).
//!
//! Everything goes into a new snapshot directory that becomes current only
//! when complete (a rename of the `CURRENT` pointer), so a reader never sees
//! half a snapshot. No raw ID number or name is written: applicants appear as
//! a keyed hash (`applicant_key`, for counting distinct people) and a masked
//! number. Values that depend on the calendar (the committed deadline, on
//! time or not) are computed here; values that depend on the day a KPI is
//! asked for (late but not yet recorded) are left to the KPI queries.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use domain::court_order::{china_time, local_date, local_day_end};
use domain::ident::mask_id_number;
use domain::{Calendar, Catalogue, is_end_to_end_online};
use sha2::{Digest, Sha256};
use store::Store;
use store::cases::StoredCase;

use crate::WarehouseError;
use crate::snapshot::{Manifest, TableEntry, Warehouse};

/// What a refresh needs besides the store.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// The refresh's clock reading (snapshot time).
    pub now: DateTime<Utc>,
    /// Key of the applicant hash (keep it secret and stable: changing it changes every key).
    pub key: Vec<u8>,
    /// The working-day calendar.
    pub calendar: Calendar,
    /// Business types, phases and limits.
    pub catalogue: Catalogue,
    /// Rewrite every month, whatever changed.
    pub full: bool,
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    /// The new snapshot.
    pub manifest: Manifest,
    /// Months written anew.
    pub months_written: Vec<String>,
    /// Months carried over from the previous snapshot.
    pub months_kept: usize,
}

fn ts(nullable: bool, name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), nullable)
}

/// The schema of `cases` (without the `month` partition column).
pub fn cases_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("case_no", DataType::Utf8, false),
        Field::new("business_type", DataType::Utf8, false),
        Field::new("vendor_code", DataType::Int64, false),
        Field::new("phase", DataType::Int64, true),
        Field::new("phase_live", DataType::Boolean, false),
        Field::new("channel", DataType::Int64, false),
        Field::new("online", DataType::Boolean, false),
        Field::new("end_to_end", DataType::Boolean, false),
        Field::new("delivery", DataType::Int64, true),
        Field::new("issues_certificate", DataType::Boolean, false),
        Field::new("applicant_kind", DataType::Utf8, false),
        Field::new("agent_kind", DataType::Utf8, true),
        Field::new("applicant_key", DataType::Utf8, false),
        Field::new("applicant_id_masked", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("unit_no", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("in_scope", DataType::Boolean, false),
        Field::new("week", DataType::Utf8, false),
        ts(false, "submitted_at"),
        ts(true, "accepted_at"),
        ts(true, "verified_at"),
        ts(true, "recorded_at"),
        ts(true, "cert_prepared_at"),
        ts(true, "issued_at"),
        ts(true, "archived_at"),
        ts(true, "closed_at"),
        ts(true, "due_at"),
        Field::new("on_time", DataType::Boolean, true),
        Field::new("correction_count", DataType::Int64, false),
        Field::new("filing_no", DataType::Utf8, true),
        Field::new("loan_ref", DataType::Utf8, true),
    ]))
}

/// The applicant's keyed hash: the same person gives the same key, the key
/// gives nothing back without the secret.
pub fn applicant_key(key: &[u8], id_no: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(b"\x1f");
    hasher.update(id_no.as_bytes());
    hex::encode(&hasher.finalize()[..12])
}

/// `YYYY-MM` of a time, China time.
pub fn month_of(t: DateTime<Utc>) -> String {
    let d = local_date(t);
    format!("{:04}-{:02}", d.year(), d.month())
}

/// The first day of a `YYYY-MM` month (the form of [`month_of`]); `None` for any other text.
pub fn first_day_of_month(month: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()
}

fn month_bounds(month: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), WarehouseError> {
    let first = first_day_of_month(month).ok_or_else(|| WarehouseError::Corrupt(format!("month {month:?}")))?;
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
    let start = local_day_end(first.pred_opt().unwrap_or(first));
    let end = local_day_end(next.pred_opt().unwrap_or(next));
    Ok((start, end))
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Builds the `cases` batch of one month.
fn cases_batch(cases: &[StoredCase], options: &RefreshOptions) -> Result<RecordBatch, WarehouseError> {
    let n = cases.len();
    let mut case_no = StringBuilder::with_capacity(n, n * 14);
    let mut business_type = StringBuilder::new();
    let mut vendor_code = Int64Builder::with_capacity(n);
    let mut phase = Int64Builder::with_capacity(n);
    let mut phase_live = BooleanBuilder::with_capacity(n);
    let mut channel = Int64Builder::with_capacity(n);
    let mut online = BooleanBuilder::with_capacity(n);
    let mut end_to_end = BooleanBuilder::with_capacity(n);
    let mut delivery = Int64Builder::with_capacity(n);
    let mut issues_certificate = BooleanBuilder::with_capacity(n);
    let mut applicant_kind = StringBuilder::new();
    let mut agent_kind = StringBuilder::new();
    let mut applicant_key_col = StringBuilder::new();
    let mut applicant_id_masked = StringBuilder::new();
    let mut district = StringBuilder::new();
    let mut unit_no = StringBuilder::new();
    let mut status = StringBuilder::new();
    let mut in_scope = BooleanBuilder::with_capacity(n);
    let mut week = StringBuilder::new();
    let mut times: Vec<TimestampMicrosecondBuilder> =
        (0..9).map(|_| TimestampMicrosecondBuilder::with_capacity(n)).collect();
    let mut on_time = BooleanBuilder::with_capacity(n);
    let mut correction_count = Int64Builder::with_capacity(n);
    let mut filing_no = StringBuilder::new();
    let mut loan_ref = StringBuilder::new();

    for stored in cases {
        let c = &stored.record;
        let bt = c.business_type();
        let info = options.catalogue.get(bt);
        let certificate = bt.issues_certificate();
        case_no.append_value(&c.case_no);
        business_type.append_value(bt.code());
        vendor_code.append_value(i64::from(c.vendor_code.code()));
        phase.append_option(info.phase.map(|p| i64::from(p.number())));
        phase_live.append_value(local_date(c.submitted_at) >= info.go_live);
        channel.append_value(i64::from(c.channel.code()));
        online.append_value(c.channel.is_online());
        end_to_end.append_value(is_end_to_end_online(c.channel, c.delivery, certificate));
        delivery.append_option(c.delivery.map(|d| i64::from(d.code())));
        issues_certificate.append_value(certificate);
        applicant_kind.append_value(c.applicant_kind.code());
        agent_kind.append_option(c.agent_kind.map(|a| a.code()));
        applicant_key_col.append_value(applicant_key(&options.key, &c.applicant_id_no));
        applicant_id_masked.append_value(mask_id_number(&c.applicant_id_no));
        district.append_value(&c.district);
        unit_no.append_option(c.unit_no.as_ref().map(|u| u.as_str()));
        status.append_value(c.status.code());
        in_scope.append_value(!c.status.is_excluded_from_scope());
        let local = local_date(c.submitted_at);
        let iso = local.iso_week();
        week.append_value(format!("{:04}-W{:02}", iso.year(), iso.week()));
        let due = c.accepted_at.map(|accepted| {
            let deadline = options.calendar.deadline(china_time(accepted).naive_local(), info.committed_limit);
            (deadline - chrono::TimeDelta::hours(8)).and_utc()
        });
        let on = match (c.accepted_at, c.recorded_at) {
            (Some(accepted), Some(recorded)) => Some(options.calendar.is_within_limit(
                china_time(accepted).naive_local(),
                china_time(recorded).naive_local(),
                info.committed_limit,
            )),
            _ => None,
        };
        let values = [
            Some(c.submitted_at),
            c.accepted_at,
            c.verified_at,
            c.recorded_at,
            c.cert_prepared_at,
            c.issued_at,
            c.archived_at,
            c.closed_at,
            due,
        ];
        for (builder, value) in times.iter_mut().zip(values) {
            builder.append_option(value.map(micros));
        }
        on_time.append_option(on);
        correction_count.append_value(c.correction_count);
        filing_no.append_option(c.filing_no.as_deref());
        loan_ref.append_option(c.loan_ref.as_deref());
    }
    let utc: Arc<str> = "UTC".into();
    let mut time_columns: Vec<ArrayRef> =
        times.into_iter().map(|mut b| Arc::new(b.finish().with_timezone(utc.clone())) as ArrayRef).collect();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(case_no.finish()),
        Arc::new(business_type.finish()),
        Arc::new(vendor_code.finish()),
        Arc::new(phase.finish()),
        Arc::new(phase_live.finish()),
        Arc::new(channel.finish()),
        Arc::new(online.finish()),
        Arc::new(end_to_end.finish()),
        Arc::new(delivery.finish()),
        Arc::new(issues_certificate.finish()),
        Arc::new(applicant_kind.finish()),
        Arc::new(agent_kind.finish()),
        Arc::new(applicant_key_col.finish()),
        Arc::new(applicant_id_masked.finish()),
        Arc::new(district.finish()),
        Arc::new(unit_no.finish()),
        Arc::new(status.finish()),
        Arc::new(in_scope.finish()),
        Arc::new(week.finish()),
    ];
    columns.append(&mut time_columns);
    columns.push(Arc::new(on_time.finish()));
    columns.push(Arc::new(correction_count.finish()));
    columns.push(Arc::new(filing_no.finish()));
    columns.push(Arc::new(loan_ref.finish()));
    Ok(RecordBatch::try_new(cases_schema(), columns)?)
}

fn writer_properties(sorted_by: Option<usize>) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(128 * 1024));
    if let Some(column) = sorted_by {
        builder = builder.set_sorting_columns(Some(vec![datafusion::parquet::file::metadata::SortingColumn {
            column_idx: i32::try_from(column).unwrap_or(0),
            descending: false,
            nulls_first: false,
        }]));
    }
    builder.build()
}

/// Writes one batch to `path` (creating its directory).
fn write_parquet(path: &Path, batch: &RecordBatch, sorted_by: Option<usize>) -> Result<(), WarehouseError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = fs::File::create(path)?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(writer_properties(sorted_by)))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(())
}

fn qc_batch(findings: &[store::records::QcFinding]) -> Result<RecordBatch, WarehouseError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("finding_id", DataType::Utf8, false),
        Field::new("case_no", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("section", DataType::Utf8, false),
        ts(false, "found_at"),
        ts(true, "corrected_at"),
    ]));
    let mut id = StringBuilder::new();
    let mut case = StringBuilder::new();
    let mut category = StringBuilder::new();
    let mut severity = StringBuilder::new();
    let mut section = StringBuilder::new();
    let mut found = TimestampMicrosecondBuilder::new();
    let mut corrected = TimestampMicrosecondBuilder::new();
    for f in findings {
        id.append_value(&f.external_id);
        case.append_value(&f.case_external_id);
        category.append_value(&f.category);
        severity.append_value(&f.severity);
        section.append_value(&f.section);
        found.append_value(micros(f.found_at));
        corrected.append_option(f.corrected_at.map(micros));
    }
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(id.finish()),
            Arc::new(case.finish()),
            Arc::new(category.finish()),
            Arc::new(severity.finish()),
            Arc::new(section.finish()),
            Arc::new(found.finish().with_timezone("UTC")),
            Arc::new(corrected.finish().with_timezone("UTC")),
        ],
    )?)
}

/// Working days a bad review has to be rectified in.
pub const RECTIFY_WITHIN_WORKING_DAYS: i64 = 15;

fn evaluations_batch(
    evaluations: &[store::records::Evaluation],
    calendar: &Calendar,
) -> Result<RecordBatch, WarehouseError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("evaluation_id", DataType::Utf8, false),
        Field::new("case_no", DataType::Utf8, false),
        Field::new("level", DataType::Int64, false),
        Field::new("good", DataType::Boolean, false),
        Field::new("bad", DataType::Boolean, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("rectified_within_15", DataType::Boolean, false),
        ts(false, "evaluated_at"),
        ts(true, "rectified_at"),
    ]));
    let mut id = StringBuilder::new();
    let mut case = StringBuilder::new();
    let mut level = Int64Builder::new();
    let mut good = BooleanBuilder::new();
    let mut bad = BooleanBuilder::new();
    let mut channel = StringBuilder::new();
    let mut in_time = BooleanBuilder::new();
    let mut at = TimestampMicrosecondBuilder::new();
    let mut rectified = TimestampMicrosecondBuilder::new();
    for e in evaluations {
        in_time.append_value(
            e.level >= 4
                && e.rectified_at.is_some_and(|r| {
                    calendar.working_days_between(local_date(e.evaluated_at), local_date(r))
                        <= RECTIFY_WITHIN_WORKING_DAYS
                }),
        );
        id.append_value(&e.external_id);
        case.append_value(&e.case_external_id);
        level.append_value(e.level);
        good.append_value(e.level <= 2);
        bad.append_value(e.level >= 4);
        channel.append_value(&e.channel);
        at.append_value(micros(e.evaluated_at));
        rectified.append_option(e.rectified_at.map(micros));
    }
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(id.finish()),
            Arc::new(case.finish()),
            Arc::new(level.finish()),
            Arc::new(good.finish()),
            Arc::new(bad.finish()),
            Arc::new(channel.finish()),
            Arc::new(in_time.finish()),
            Arc::new(at.finish().with_timezone("UTC")),
            Arc::new(rectified.finish().with_timezone("UTC")),
        ],
    )?)
}

fn seizures_batch(rows: &[store::export::SeizureRow]) -> Result<RecordBatch, WarehouseError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_no", DataType::Utf8, false),
        Field::new("partner_id", DataType::Utf8, false),
        Field::new("unit_no", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("start_date", DataType::Date32, false),
        Field::new("end_date", DataType::Date32, false),
        Field::new("ended_on", DataType::Date32, true),
        Field::new("renewals", DataType::Int64, false),
        ts(false, "served_at"),
        ts(false, "recorded_at"),
    ]));
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    let days = |d: NaiveDate| i32::try_from((d - epoch).num_days()).unwrap_or(0);
    let mut order = StringBuilder::new();
    let mut partner = StringBuilder::new();
    let mut unit = StringBuilder::new();
    let mut state = StringBuilder::new();
    let mut start = datafusion::arrow::array::Date32Builder::new();
    let mut end = datafusion::arrow::array::Date32Builder::new();
    let mut ended = datafusion::arrow::array::Date32Builder::new();
    let mut renewals = Int64Builder::new();
    let mut served = TimestampMicrosecondBuilder::new();
    let mut recorded = TimestampMicrosecondBuilder::new();
    for r in rows {
        order.append_value(&r.order_no);
        partner.append_value(&r.partner_id);
        unit.append_value(&r.unit_no);
        state.append_value(&r.state);
        start.append_value(days(r.start_date));
        end.append_value(days(r.end_date));
        ended.append_option(r.ended_on.map(days));
        renewals.append_value(r.renewals);
        served.append_value(micros(r.served_at));
        recorded.append_value(micros(r.created_at));
    }
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(order.finish()),
            Arc::new(partner.finish()),
            Arc::new(unit.finish()),
            Arc::new(state.finish()),
            Arc::new(start.finish()),
            Arc::new(end.finish()),
            Arc::new(ended.finish()),
            Arc::new(renewals.finish()),
            Arc::new(served.finish().with_timezone("UTC")),
            Arc::new(recorded.finish().with_timezone("UTC")),
        ],
    )?)
}

fn anomalies_batch(rows: &[store::reconcile::Anomaly]) -> Result<RecordBatch, WarehouseError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("partner", DataType::Utf8, false),
        Field::new("subject", DataType::Utf8, false),
        ts(false, "detected_at"),
    ]));
    let mut kind = StringBuilder::new();
    let mut partner = StringBuilder::new();
    let mut subject = StringBuilder::new();
    let mut at = TimestampMicrosecondBuilder::new();
    for a in rows {
        kind.append_value(&a.kind);
        partner.append_value(&a.partner);
        subject.append_value(&a.subject);
        at.append_value(micros(a.detected_at));
    }
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(kind.finish()),
            Arc::new(partner.finish()),
            Arc::new(subject.finish()),
            Arc::new(at.finish().with_timezone("UTC")),
        ],
    )?)
}

/// Refreshes the warehouse under `root` from `store` (see the module documentation).
pub async fn refresh(store: &Store, root: &Path, options: &RefreshOptions) -> Result<RefreshReport, WarehouseError> {
    let started = std::time::Instant::now();
    let warehouse = Warehouse::open(root)?;
    let previous = if options.full { None } else { warehouse.current()? };
    let watermark = store.latest_write().await?;

    // Months to write: those with cases written since the previous watermark.
    let since = previous.as_ref().and_then(Manifest::watermark);
    let changed: BTreeSet<String> =
        store.case_submissions_changed_since(since).await?.into_iter().map(month_of).collect();
    let mut months: BTreeMap<String, bool> = BTreeMap::new(); // month → rewrite?
    if let Some(previous) = &previous {
        for month in previous.cases.keys() {
            months.insert(month.clone(), false);
        }
    }
    for month in &changed {
        months.insert(month.clone(), true);
    }

    let id = format!("{}", options.now.format("%Y%m%dT%H%M%S%.6fZ"));
    let staging = warehouse.staging_dir(&id)?;
    let mut manifest = Manifest::new(&id, options.now, watermark);
    let mut written = Vec::new();
    let mut kept = 0;
    for (month, rewrite) in &months {
        let relative = PathBuf::from(format!("cases/month={month}/part-0.parquet"));
        let target = staging.join(&relative);
        let carried = previous.as_ref().and_then(|p| p.cases.get(month).map(|entry| (&p.snapshot_id, entry)));
        let rows = match (rewrite, carried) {
            (false, Some((previous_id, entry))) => {
                let source = warehouse.snapshot_dir(previous_id).join(&relative);
                if let Some(dir) = target.parent() {
                    fs::create_dir_all(dir)?;
                }
                if fs::hard_link(&source, &target).is_err() {
                    fs::copy(&source, &target)?;
                }
                kept += 1;
                entry.rows
            }
            _ => {
                let (from, to) = month_bounds(month)?;
                let cases = store.cases_submitted_between(from, to).await?;
                if cases.is_empty() {
                    continue;
                }
                let batch = cases_batch(&cases, options)?;
                write_parquet(&target, &batch, Some(19))?;
                written.push(month.clone());
                cases.len()
            }
        };
        manifest.cases.insert(month.clone(), TableEntry { file: relative.display().to_string(), rows });
    }

    let qc = store.all_qc_findings().await?;
    write_parquet(&staging.join("qc_findings/part-0.parquet"), &qc_batch(&qc)?, None)?;
    let evaluations = store.all_evaluations().await?;
    write_parquet(
        &staging.join("evaluations/part-0.parquet"),
        &evaluations_batch(&evaluations, &options.calendar)?,
        None,
    )?;
    let seizures = store.all_seizures().await?;
    write_parquet(&staging.join("seizures/part-0.parquet"), &seizures_batch(&seizures)?, None)?;
    let anomalies = store.anomalies(None).await?;
    write_parquet(&staging.join("anomalies/part-0.parquet"), &anomalies_batch(&anomalies)?, None)?;
    manifest
        .tables
        .insert("qc_findings".into(), TableEntry { file: "qc_findings/part-0.parquet".into(), rows: qc.len() });
    manifest.tables.insert(
        "evaluations".into(),
        TableEntry { file: "evaluations/part-0.parquet".into(), rows: evaluations.len() },
    );
    manifest
        .tables
        .insert("seizures".into(), TableEntry { file: "seizures/part-0.parquet".into(), rows: seizures.len() });
    manifest
        .tables
        .insert("anomalies".into(), TableEntry { file: "anomalies/part-0.parquet".into(), rows: anomalies.len() });
    manifest.refresh_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    warehouse.publish(&staging, &manifest)?;
    Ok(RefreshReport { manifest, months_written: written, months_kept: kept })
}
