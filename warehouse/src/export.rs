//! `warehouse refresh`: the store exported to Parquet.
//!
//! - `cases/month=YYYY-MM/part-0.parquet`: one file per submission month
//!   (China time), sorted by submission time, zstd, page statistics. Only
//!   months with cases written since the last snapshot's watermark are
//!   rewritten, each as the previous file with those cases replaced (only the
//!   changed cases are read from the store); the others are hard-linked from
//!   the previous snapshot.
//! - `rollups/case_counts/month=YYYY-MM/part-0.parquet`: the month's cases
//!   counted by every case dimension and KPI flag ([`ROLLUP_SQL`]), written
//!   and carried over with the month's cases file. The KPIs that are plain
//!   counts read whole months from it (`kpi::kpi_sql`), Cube's pre-aggregations.
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

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use datafusion::arrow::array::{
    AsArray as _, BooleanArray, BooleanBuilder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::{
    SortColumn, cast, concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::execution::context::SessionContext;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use domain::time::{local_date, local_day_end};
use domain::{Calendar, Catalogue};
use sha2::{Digest, Sha256};
use store::Store;
use store::cases::StoredCase;

use crate::WarehouseError;
pub use crate::case_columns::cases_schema;
use crate::case_columns::{CASE_NO, SUBMITTED_AT, cases_batch, position};
use crate::snapshot::{ConnectorHealth, Manifest, TableEntry, Warehouse};

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

/// A UTC timestamp column (microseconds).
fn ts(nullable: bool, name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), nullable)
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
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

/// The `case_counts` rollup of one month's cases (registered as `month_cases`):
/// one row per combination of the case dimensions and the flags the count
/// KPIs test, with the number of cases in `cases`. Every column keeps the name
/// and meaning it has in `cases`; `recorded` is `recorded_at IS NOT NULL` and
/// `correction_free` is `correction_count = 0` (NULL when the count is
/// undetermined). Weeks are left out: they
/// would make the rollup about five times larger, and a breakdown by week
/// reads `cases`.
pub const ROLLUP_SQL: &str = "SELECT business_type, phase, channel, district, applicant_kind, \
     in_scope, phase_live, online, end_to_end, issues_certificate, delivery, \
     recorded_at IS NOT NULL AS recorded, correction_count = 0 AS correction_free, COUNT(*) AS cases \
     FROM month_cases GROUP BY business_type, phase, channel, district, applicant_kind, \
     in_scope, phase_live, online, end_to_end, issues_certificate, delivery, recorded_at IS NOT NULL, correction_count = 0 \
     ORDER BY business_type, phase, channel, district, applicant_kind";

/// The rollup of one month's `cases` batch ([`ROLLUP_SQL`]), one batch.
async fn rollup_batch(ctx: &SessionContext, batch: RecordBatch) -> Result<RecordBatch, WarehouseError> {
    ctx.register_batch("month_cases", batch)?;
    let result = ctx.sql(ROLLUP_SQL).await?.collect().await;
    ctx.deregister_table("month_cases")?;
    let batches = result?;
    let schema = match batches.first() {
        Some(first) => first.schema(),
        None => return Err(WarehouseError::Corrupt("the rollup query answered no schema".into())),
    };
    Ok(concat_batches(&schema, &batches)?)
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

/// Hard-links `source` at `target` (a file of the previous snapshot carried
/// over), copying where links are not possible.
fn link_or_copy(source: &Path, target: &Path) -> Result<(), WarehouseError> {
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir)?;
    }
    if fs::hard_link(source, target).is_err() {
        fs::copy(source, target)?;
    }
    Ok(())
}

/// What a refresh does with one month of `cases`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MonthAction {
    /// Unchanged: hard-link the previous snapshot's files.
    Keep,
    /// Cases written since: the previous file without them, plus them.
    Merge,
    /// Read the whole month from the store.
    Rewrite,
}

/// The rows of `cases` files (read whole), those whose case number `keep` accepts.
/// Columns are taken by name and cast to [`cases_schema`]'s types, so files
/// written by other tools (a UTC timestamp read back as `+00:00`) read too.
fn read_cases(paths: &[PathBuf], keep: impl Fn(&str) -> bool) -> Result<Vec<RecordBatch>, WarehouseError> {
    let schema = cases_schema();
    let mut parts = Vec::new();
    for path in paths {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path)?)?.with_batch_size(64 * 1024).build()?;
        for batch in reader {
            let batch = batch?;
            let mut columns = Vec::with_capacity(schema.fields().len());
            for field in schema.fields() {
                let column = batch.column_by_name(field.name()).ok_or_else(|| {
                    WarehouseError::Corrupt(format!("{}: no column {}", path.display(), field.name()))
                })?;
                columns.push(if column.data_type() == field.data_type() {
                    column.clone()
                } else {
                    cast(column, field.data_type())?
                });
            }
            let batch = RecordBatch::try_new(schema.clone(), columns)?;
            let case_no = batch.column(position(CASE_NO)?).as_string::<i32>();
            let kept: BooleanArray = case_no.iter().map(|no| Some(no.is_some_and(&keep))).collect();
            if kept.true_count() == batch.num_rows() {
                parts.push(batch);
            } else {
                parts.push(filter_record_batch(&batch, &kept)?);
            }
        }
    }
    Ok(parts)
}

/// `parts` as one batch sorted by submission time (then case number), the order of a month's file.
fn sorted_by_submission(parts: &[RecordBatch]) -> Result<RecordBatch, WarehouseError> {
    let all = concat_batches(&cases_schema(), parts)?;
    let order = lexsort_to_indices(
        &[
            SortColumn { values: all.column(position(SUBMITTED_AT)?).clone(), options: None },
            SortColumn { values: all.column(position(CASE_NO)?).clone(), options: None },
        ],
        None,
    )?;
    Ok(take_record_batch(&all, &order)?)
}

/// The previous snapshot's `cases` file of a month without the rows of
/// `changed` (case numbers written since), plus `fresh` (those of them
/// submitted in this month), sorted by submission time.
fn merged_month(previous: &Path, changed: &HashSet<&str>, fresh: RecordBatch) -> Result<RecordBatch, WarehouseError> {
    let mut parts = read_cases(&[previous.to_owned()], |no| !changed.contains(no))?;
    parts.push(fresh);
    sorted_by_submission(&parts)
}

/// A month's two files in a snapshot, relative to its directory: the `cases`
/// file and its `case_counts` rollup, always written and carried together.
struct MonthFiles {
    cases: PathBuf,
    rollup: PathBuf,
}

impl MonthFiles {
    fn of(month: &str) -> Self {
        Self {
            cases: PathBuf::from(format!("cases/month={month}/part-0.parquet")),
            rollup: PathBuf::from(format!("rollups/case_counts/month={month}/part-0.parquet")),
        }
    }

    /// Hard-links both files of snapshot directory `from` into `to`.
    fn carry(&self, from: &Path, to: &Path) -> Result<(), WarehouseError> {
        link_or_copy(&from.join(&self.cases), &to.join(&self.cases))?;
        link_or_copy(&from.join(&self.rollup), &to.join(&self.rollup))
    }

    /// Writes `batch` (sorted by submission time) and its rollup under `dir`;
    /// answers their row counts.
    async fn write(
        &self,
        dir: &Path,
        rollup_ctx: &SessionContext,
        batch: RecordBatch,
    ) -> Result<(usize, usize), WarehouseError> {
        write_parquet(&dir.join(&self.cases), &batch, Some(position(SUBMITTED_AT)?))?;
        let rows = batch.num_rows();
        let rollup = rollup_batch(rollup_ctx, batch).await?;
        write_parquet(&dir.join(&self.rollup), &rollup, None)?;
        Ok((rows, rollup.num_rows()))
    }

    /// Lists both files of `month` in `manifest`.
    fn record(&self, manifest: &mut Manifest, month: &str, rows: usize, rollup_rows: usize) {
        manifest.cases.insert(month.to_owned(), TableEntry { file: self.cases.display().to_string(), rows });
        manifest
            .rollups
            .insert(month.to_owned(), TableEntry { file: self.rollup.display().to_string(), rows: rollup_rows });
    }
}

/// Refreshes the warehouse under `root` from `store` (see the module documentation).
///
/// Incrementally (the default), a month untouched since the previous
/// snapshot's watermark is hard-linked, and a month with cases written since
/// is the previous file with those cases replaced: only the changed cases are
/// read from the store. If the result holds more cases than the store (a case
/// whose submission moved to another month), the refresh starts over in full.
pub async fn refresh(store: &Store, root: &Path, options: &RefreshOptions) -> Result<RefreshReport, WarehouseError> {
    let started = std::time::Instant::now();
    let warehouse = Warehouse::open(root)?;
    let previous = if options.full { None } else { warehouse.current()? };
    let watermark = store.latest_write().await?;

    // Months to write: those with cases written since the previous watermark.
    let since = previous.as_ref().and_then(Manifest::watermark);
    let mut changed_cases: BTreeMap<String, Vec<StoredCase>> = BTreeMap::new();
    let changed: BTreeSet<String> = match since {
        Some(since) => {
            for case in store.cases_ingested_since(since).await? {
                changed_cases.entry(month_of(case.record.submitted_at)).or_default().push(case);
            }
            changed_cases.keys().cloned().collect()
        }
        None => store.case_submissions_changed_since(None).await?.into_iter().map(month_of).collect(),
    };
    let changed_numbers: HashSet<&str> = changed_cases.values().flatten().map(|c| c.record.case_no.as_str()).collect();
    let mut months: BTreeMap<String, MonthAction> = BTreeMap::new();
    if let Some(previous) = &previous {
        for month in previous.cases.keys() {
            // A snapshot made before rollups existed: its months are rewritten once.
            let action = if !previous.rollups.contains_key(month) {
                MonthAction::Rewrite
            } else if changed.contains(month) {
                MonthAction::Merge
            } else {
                MonthAction::Keep
            };
            months.insert(month.clone(), action);
        }
    }
    for month in &changed {
        months.entry(month.clone()).or_insert(MonthAction::Rewrite);
    }

    let id = format!("{}", options.now.format("%Y%m%dT%H%M%S%.6fZ"));
    let staging = warehouse.staging_dir(&id)?;
    let mut manifest = Manifest::new(&id, options.now, watermark);
    let mut written = Vec::new();
    let mut kept = 0;
    let rollup_ctx = SessionContext::new();
    for (month, action) in &months {
        let files = MonthFiles::of(month);
        let carried =
            previous.as_ref().and_then(|p| Some((&p.snapshot_id, p.cases.get(month)?, p.rollups.get(month)?)));
        let (rows, rollup_rows) = match (action, carried) {
            (MonthAction::Keep, Some((previous_id, entry, rollup))) => {
                files.carry(&warehouse.snapshot_dir(previous_id), &staging)?;
                kept += 1;
                (entry.rows, rollup.rows)
            }
            (action, carried) => {
                let batch = match (action, carried) {
                    (MonthAction::Merge, Some((previous_id, _, _))) => {
                        let fresh = changed_cases.get(month).map(Vec::as_slice).unwrap_or_default();
                        let fresh = cases_batch(fresh, options)?;
                        merged_month(&warehouse.snapshot_dir(previous_id).join(&files.cases), &changed_numbers, fresh)?
                    }
                    _ => {
                        let (from, to) = month_bounds(month)?;
                        cases_batch(&store.cases_submitted_between(from, to).await?, options)?
                    }
                };
                if batch.num_rows() == 0 {
                    continue;
                }
                written.push(month.clone());
                files.write(&staging, &rollup_ctx, batch).await?
            }
        };
        files.record(&mut manifest, month, rows, rollup_rows);
    }
    if previous.is_some() {
        // Cases are never deleted, and the count is read after the export: more
        // rows than the store holds means a case kept in a month it left.
        let in_store = usize::try_from(store.table_counts().await?.cases).unwrap_or(usize::MAX);
        if manifest.case_rows() > in_store {
            tracing::warn!(
                exported = manifest.case_rows(),
                in_store,
                "incremental refresh holds more cases than the store (a submission time moved to another month): refreshing in full"
            );
            fs::remove_dir_all(&staging)?;
            return Box::pin(refresh(store, root, &RefreshOptions { full: true, ..options.clone() })).await;
        }
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
    manifest.connectors = store.all_connector_states().await?.iter().map(ConnectorHealth::of).collect();
    manifest.refresh_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    warehouse.publish(&staging, &manifest)?;
    Ok(RefreshReport { manifest, months_written: written, months_kept: kept })
}

/// What [`compact`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactReport {
    /// The new snapshot.
    pub manifest: Manifest,
    /// Months whose files were merged into one.
    pub months_compacted: Vec<String>,
}

/// Publishes a copy of the current snapshot in which every month of `cases`
/// is one file, as a refresh writes it: all the month's `*.parquet` files read,
/// sorted by submission time, written with the refresh's settings, and the
/// month's rollup computed again from them. Months that are already a
/// refresh's `part-0.parquet` with a rollup, and the other tables, are
/// hard-linked. This is for snapshots whose month directories were filled by
/// other means (`bench/inflate.py` rewrites one simulated year as 10 million
/// cases). `now` names the new snapshot.
pub async fn compact(root: &Path, now: DateTime<Utc>) -> Result<CompactReport, WarehouseError> {
    let warehouse = Warehouse::open(root)?;
    let previous = warehouse.current()?.ok_or_else(|| {
        WarehouseError::NoSnapshot(format!("{} has no snapshot yet: run `wangban warehouse refresh`", root.display()))
    })?;
    let previous_dir = warehouse.snapshot_dir(&previous.snapshot_id);
    let id = format!("{}", now.format("%Y%m%dT%H%M%S%.6fZ"));
    let staging = warehouse.staging_dir(&id)?;
    let mut manifest = Manifest::new(&id, now, previous.watermark());
    let mut compacted = Vec::new();
    let rollup_ctx = SessionContext::new();
    for month in previous.cases.keys() {
        let target = MonthFiles::of(month);
        let mut found: Vec<PathBuf> = fs::read_dir(previous_dir.join(format!("cases/month={month}")))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        found.retain(|path| path.extension().is_some_and(|e| e == "parquet"));
        found.sort();
        let carried = previous.rollups.get(month).filter(|_| found.len() == 1 && found[0].ends_with(&target.cases));
        let (rows, rollup_rows) = if let Some(rollup) = carried {
            target.carry(&previous_dir, &staging)?;
            (previous.cases[month].rows, rollup.rows)
        } else {
            let batch = sorted_by_submission(&read_cases(&found, |_| true)?)?;
            tracing::info!(month, files = found.len(), rows = batch.num_rows(), "month compacted");
            compacted.push(month.clone());
            target.write(&staging, &rollup_ctx, batch).await?
        };
        target.record(&mut manifest, month, rows, rollup_rows);
    }
    for (table, entry) in &previous.tables {
        link_or_copy(&previous_dir.join(&entry.file), &staging.join(&entry.file))?;
        manifest.tables.insert(table.clone(), entry.clone());
    }
    manifest.connectors = previous.connectors.clone();
    warehouse.publish(&staging, &manifest)?;
    Ok(CompactReport { manifest, months_compacted: compacted })
}
