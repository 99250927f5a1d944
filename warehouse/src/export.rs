//! `warehouse refresh`: the store exported to Parquet.
//!
//! - `cases/month=YYYY-MM/part-0.parquet`: one file per submission month
//!   (China time), sorted by district, business type, then submission time
//!   ([`crate::layout`]), zstd, page statistics and index. Only months with
//!   cases written since the last snapshot's watermark are rewritten, each as
//!   the previous file with those cases replaced (only the changed cases are
//!   read from the store); the others are hard-linked from the previous snapshot.
//! - `rollups/case_counts/month=YYYY-MM/`: the month's cases counted by every
//!   case dimension and KPI flag ([`ROLLUP_SQL`]), and `rollups/open_due/…`:
//!   the cases still open, by their deadline ([`OPEN_DUE_SQL`]); written and
//!   carried over with the month's cases file. The rate KPIs read whole
//!   months from them (`kpi::kpi_sql`), Cube's pre-aggregations.
//! - `evaluations/month=…/`, `qc_findings/month=…/`: each row with its case's
//!   dimensions, per case month (`month=unmatched`: rows whose case the store
//!   lacks, counted by `warehouse reconcile`), and their rollups
//!   `rollups/evaluation_counts/…` ([`EVALUATION_COUNTS_SQL`]) and
//!   `rollups/qc_counts/…` ([`QC_COUNTS_SQL`]). Incrementally, only the
//!   child rows written since the previous watermark are read from the store
//!   (through their `ingested_at` index); they and the previous rows of the
//!   months they, the cases written and `unmatched` touch are joined with those
//!   months' cases and written again; every other month's child files and
//!   rollups are hard-linked.
//! - `seizures`, `anomalies`: one file each, rewritten every time (they are small).
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
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::execution::context::SessionContext;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use domain::time::{local_date, local_day_end};
use domain::{Calendar, Catalogue};
use sha2::{Digest, Sha256};
use store::Store;
use store::cases::StoredCase;

use crate::WarehouseError;
pub use crate::case_columns::cases_schema;
use crate::case_columns::{CASE_NO, cases_batch, position};
use crate::layout;
use crate::snapshot::{ConnectorHealth, Manifest, TableEntry, UNMATCHED, Warehouse};

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

/// The UTC bounds `[start, end)` of a `YYYY-MM` month in China time.
pub(crate) fn month_bounds(month: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), WarehouseError> {
    let first = first_day_of_month(month).ok_or_else(|| WarehouseError::Corrupt(format!("month {month:?}")))?;
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
    let start = local_day_end(first.pred_opt().unwrap_or(first));
    let end = local_day_end(next.pred_opt().unwrap_or(next));
    Ok((start, end))
}

/// Writes one batch to `path` (creating its directory), with the month
/// files' writer settings ([`crate::layout::writer_properties`]), declaring
/// the sort keys it has: the caller writes it in that order.
fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), WarehouseError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = fs::File::create(path)?;
    let properties = layout::writer_properties(&layout::sort_positions(&batch.schema()));
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(())
}

/// The `case_counts` rollup of one month's cases (registered as `month_cases`):
/// one row per combination of the case dimensions and the flags the count
/// KPIs test, with the number of cases in `cases`. Every column keeps the name
/// and meaning it has in `cases`; `recorded` is `recorded_at IS NOT NULL` and
/// `correction_free` is `correction_count = 0` (NULL when the count is
/// undetermined), `accepted` is `accepted_at IS NOT NULL`, and `on_time` is
/// the case's (NULL until it is recorded). Weeks are left out: they
/// would make the rollup about five times larger, and a breakdown by week
/// reads `cases`.
pub const ROLLUP_SQL: &str = "SELECT district, business_type, phase, channel, applicant_kind, \
     in_scope, phase_live, online, end_to_end, issues_certificate, delivery, \
     recorded_at IS NOT NULL AS recorded, correction_count = 0 AS correction_free, \
     accepted_at IS NOT NULL AS accepted, on_time, COUNT(*) AS cases \
     FROM month_cases GROUP BY district, business_type, phase, channel, applicant_kind, \
     in_scope, phase_live, online, end_to_end, issues_certificate, delivery, recorded_at IS NOT NULL, correction_count = 0, \
     accepted_at IS NOT NULL, on_time \
     ORDER BY district, business_type, phase, channel, applicant_kind";

/// The `open_due` rollup of one month's cases (registered as `month_cases`):
/// the cases the on-time rate counts but whose outcome depends on the day it
/// is asked for (in scope, accepted, not yet recorded), counted by the case
/// dimensions and their deadline `due_at`. A KPI as of `T` counts those due
/// before `T` as late; `case_counts` answers the rest.
pub const OPEN_DUE_SQL: &str = "SELECT district, business_type, phase, channel, applicant_kind, due_at, \
     COUNT(*) AS cases FROM month_cases \
     WHERE in_scope AND phase_live AND accepted_at IS NOT NULL AND on_time IS NULL AND recorded_at IS NULL \
     GROUP BY district, business_type, phase, channel, applicant_kind, due_at \
     ORDER BY district, business_type, phase, channel, applicant_kind, due_at";

/// The `duration_counts` rollup of one month's cases (registered as
/// `month_cases`): for each step of the durations KPI
/// (`kpi::DURATION_STEPS`), the cases in scope and live counted by the case
/// dimensions and their exact duration in microseconds (`us`, count `k`),
/// with the latest end time among them (`latest`). The median and p90 of any
/// set of whole months are the same ranks of the summed counts, so they stay
/// exact; a KPI asked as of a time before some `latest` reads `cases`.
pub fn duration_counts_sql() -> String {
    let parts: Vec<String> = crate::kpi::DURATION_STEPS
        .iter()
        .map(|(step, from, to)| {
            format!(
                "SELECT district, business_type, phase, channel, applicant_kind, '{step}' AS step, \
                 CAST({to} AS BIGINT) - CAST({from} AS BIGINT) AS us, {to} AS ended FROM month_cases \
                 WHERE in_scope AND phase_live AND {from} IS NOT NULL AND {to} IS NOT NULL"
            )
        })
        .collect();
    format!(
        "SELECT district, business_type, phase, channel, applicant_kind, step, us, COUNT(*) AS k, MAX(ended) AS latest \
         FROM ({}) GROUP BY district, business_type, phase, channel, applicant_kind, step, us \
         ORDER BY district, business_type, phase, channel, applicant_kind, step, us",
        parts.join(" UNION ALL ")
    )
}

/// The rollups written with each month's `cases` file, by table name:
/// `case_counts` ([`ROLLUP_SQL`]), `open_due` ([`OPEN_DUE_SQL`]) and
/// `duration_counts` ([`duration_counts_sql`]), each over `month_cases`.
fn month_rollup_sqls() -> [(&'static str, String); 3] {
    [
        (crate::session::ROLLUP_TABLE, ROLLUP_SQL.to_owned()),
        (OPEN_DUE, OPEN_DUE_SQL.to_owned()),
        (DURATION_COUNTS, duration_counts_sql()),
    ]
}

/// The rollup table of exact durations (see [`duration_counts_sql`]).
pub const DURATION_COUNTS: &str = "duration_counts";

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

/// `parts` as one batch in the order of a month's file: by district, business
/// type and submission time ([`layout::SORT_KEYS`]), then case number.
fn sorted_for_layout(parts: &[RecordBatch]) -> Result<RecordBatch, WarehouseError> {
    let all = concat_batches(&cases_schema(), parts)?;
    let mut keys = Vec::with_capacity(layout::SORT_KEYS.len() + 1);
    for name in layout::SORT_KEYS.iter().chain(std::iter::once(&CASE_NO)) {
        keys.push(SortColumn { values: all.column(position(name)?).clone(), options: None });
    }
    let order = lexsort_to_indices(&keys, None)?;
    Ok(take_record_batch(&all, &order)?)
}

/// The previous snapshot's `cases` file of a month without the rows of
/// `changed` (case numbers written since), plus `fresh` (those of them
/// submitted in this month), in the order of a month's file.
fn merged_month(previous: &Path, changed: &HashSet<&str>, fresh: RecordBatch) -> Result<RecordBatch, WarehouseError> {
    let mut parts = read_cases(&[previous.to_owned()], |no| !changed.contains(no))?;
    parts.push(fresh);
    sorted_for_layout(&parts)
}

/// Row counts of a month's files: `cases`, then each rollup of [`month_rollup_sqls`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct MonthRows {
    cases: usize,
    rollups: Vec<usize>,
}

/// A month's files in a snapshot, relative to its directory: the `cases`
/// file and its rollups ([`month_rollup_sqls`]), always written and carried together.
struct MonthFiles {
    cases: PathBuf,
    rollups: Vec<(&'static str, PathBuf)>,
}

impl MonthFiles {
    fn of(month: &str) -> Self {
        Self {
            cases: PathBuf::from(format!("cases/month={month}/part-0.parquet")),
            rollups: month_rollup_sqls()
                .iter()
                .map(|(table, _)| (*table, PathBuf::from(format!("rollups/{table}/month={month}/part-0.parquet"))))
                .collect(),
        }
    }

    /// Hard-links the month's files of snapshot directory `from` into `to`.
    fn carry(&self, from: &Path, to: &Path) -> Result<(), WarehouseError> {
        link_or_copy(&from.join(&self.cases), &to.join(&self.cases))?;
        for (_, path) in &self.rollups {
            link_or_copy(&from.join(path), &to.join(path))?;
        }
        Ok(())
    }

    /// The rows `previous` lists for the month's files, if it lists them all.
    fn rows_in(previous: &Manifest, month: &str) -> Option<MonthRows> {
        let mut rollups = Vec::new();
        for (table, _) in month_rollup_sqls() {
            let entry = if table == crate::session::ROLLUP_TABLE {
                previous.rollups.get(month)
            } else {
                previous.month_entry(table, month)
            };
            rollups.push(entry?.rows);
        }
        Some(MonthRows { cases: previous.cases.get(month)?.rows, rollups })
    }

    /// Writes `batch` (in the order of a month's file) and its rollups under
    /// `dir`; answers their row counts.
    async fn write(
        &self,
        dir: &Path,
        rollup_ctx: &SessionContext,
        batch: RecordBatch,
    ) -> Result<MonthRows, WarehouseError> {
        write_parquet(&dir.join(&self.cases), &batch)?;
        let cases = batch.num_rows();
        rollup_ctx.register_batch("month_cases", batch)?;
        let mut rollups = Vec::new();
        let mut failed = None;
        for ((_, sql), (_, path)) in month_rollup_sqls().iter().zip(&self.rollups) {
            let written = async {
                let frame = rollup_ctx.sql(sql).await?;
                let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
                let rollup = concat_batches(&schema, &frame.collect().await?)?;
                write_parquet(&dir.join(path), &rollup)?;
                Ok::<usize, WarehouseError>(rollup.num_rows())
            }
            .await;
            match written {
                Ok(rows) => rollups.push(rows),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        rollup_ctx.deregister_table("month_cases")?;
        match failed {
            Some(e) => Err(e),
            None => Ok(MonthRows { cases, rollups }),
        }
    }

    /// Writes the month from the `cases` files `sources` (in any order, each
    /// of any size) under `dir`: sorted in a spilling session and streamed to
    /// the file, then the rollups counted from it, so no more than the sort's
    /// memory is held ([`layout::spilling_session`]).
    async fn write_from_files(&self, dir: &Path, sources: &[PathBuf]) -> Result<MonthRows, WarehouseError> {
        let ctx = layout::spilling_session()?;
        let schema = cases_schema();
        let mut parts = Vec::with_capacity(sources.len());
        for (i, source) in sources.iter().enumerate() {
            let name = format!("source_{i}");
            let options = datafusion::prelude::ParquetReadOptions::default();
            ctx.register_parquet(&name, source.to_string_lossy().as_ref(), options).await?;
            // Columns by name, cast to the export's types (another tool may write them otherwise).
            let columns: Vec<String> = schema
                .fields()
                .iter()
                .map(|f| format!("arrow_cast(\"{0}\", '{1}') AS \"{0}\"", f.name(), f.data_type()))
                .collect();
            parts.push(format!("SELECT {} FROM {name}", columns.join(", ")));
        }
        let order: Vec<&str> = layout::SORT_KEYS.iter().copied().chain(std::iter::once(CASE_NO)).collect();
        let sql = format!("SELECT * FROM ({}) ORDER BY {}", parts.join(" UNION ALL "), order.join(", "));
        let cases = layout::write_file(&dir.join(&self.cases), ctx.sql(&sql).await?.execute_stream().await?).await?;
        let written = datafusion::prelude::ParquetReadOptions::default();
        ctx.register_parquet("month_cases", dir.join(&self.cases).to_string_lossy().as_ref(), written).await?;
        let mut rollups = Vec::new();
        for ((_, sql), (_, path)) in month_rollup_sqls().iter().zip(&self.rollups) {
            rollups.push(layout::write_file(&dir.join(path), ctx.sql(sql).await?.execute_stream().await?).await?);
        }
        Ok(MonthRows { cases, rollups })
    }

    /// Lists the month's files in `manifest`.
    fn record(&self, manifest: &mut Manifest, month: &str, rows: MonthRows) {
        let entry = |path: &Path, rows| TableEntry { file: path.display().to_string(), rows };
        manifest.cases.insert(month.to_owned(), entry(&self.cases, rows.cases));
        for ((table, path), rows) in self.rollups.iter().zip(rows.rollups) {
            if *table == crate::session::ROLLUP_TABLE {
                manifest.rollups.insert(month.to_owned(), entry(path, rows));
            } else {
                manifest.by_month.entry((*table).to_owned()).or_default().insert(month.to_owned(), entry(path, rows));
            }
        }
    }
}

/// The rollup table of the cases still open on a KPI's day (see [`OPEN_DUE_SQL`]).
pub const OPEN_DUE: &str = "open_due";

/// A child table of `cases`: its rows from the store, its key, and its rollup.
struct Child {
    table: &'static str,
    key: &'static str,
    rollup: &'static str,
    rollup_sql: &'static str,
}

/// The child tables, each written per case month with its case's dimensions.
const CHILDREN: [Child; 2] = [
    Child {
        table: "evaluations",
        key: "evaluation_id",
        rollup: "evaluation_counts",
        rollup_sql: EVALUATION_COUNTS_SQL,
    },
    Child { table: "qc_findings", key: "finding_id", rollup: "qc_counts", rollup_sql: QC_COUNTS_SQL },
];

/// The `evaluation_counts` rollup over the `evaluations` table (its case's
/// dimensions and its own channel): evaluations, good, bad and bad ones
/// rectified within 15 working days, by month. Rows whose case is unknown
/// are left out (they count in no KPI).
pub const EVALUATION_COUNTS_SQL: &str = "SELECT month, district, business_type, phase, case_channel, applicant_kind, \
     in_scope, phase_live, channel, COUNT(*) AS evaluations, \
     CAST(SUM(CASE WHEN good THEN 1 ELSE 0 END) AS BIGINT) AS good, \
     CAST(SUM(CASE WHEN bad THEN 1 ELSE 0 END) AS BIGINT) AS bad, \
     CAST(SUM(CASE WHEN rectified_within_15 THEN 1 ELSE 0 END) AS BIGINT) AS rectified_within_15 \
     FROM evaluations WHERE month <> 'unmatched' \
     GROUP BY month, district, business_type, phase, case_channel, applicant_kind, in_scope, phase_live, channel \
     ORDER BY month, district, business_type, phase, case_channel, applicant_kind, channel";

/// The `qc_counts` rollup over the `qc_findings` table (its case's dimensions
/// and its own category, severity, section, and whether it is still open).
pub const QC_COUNTS_SQL: &str = "SELECT month, district, business_type, phase, case_channel, applicant_kind, \
     in_scope, phase_live, category, severity, section, corrected_at IS NULL AS open, COUNT(*) AS findings \
     FROM qc_findings WHERE month <> 'unmatched' \
     GROUP BY month, district, business_type, phase, case_channel, applicant_kind, in_scope, phase_live, \
     category, severity, section, corrected_at IS NULL \
     ORDER BY month, district, business_type, phase, case_channel, applicant_kind, category, severity, section";

/// The columns of a child row's case, read from `cases` (registered in `ctx`).
fn child_case_columns() -> String {
    layout::CHILD_CASE_COLUMNS.iter().map(|(child, case)| format!("c.{case} AS {child}")).collect::<Vec<_>>().join(", ")
}

/// Registers `table` (written per month under `dir`) in `ctx` with its month partition.
async fn register_by_month(ctx: &SessionContext, table: &str, dir: &Path) -> Result<(), WarehouseError> {
    ctx.register_parquet(table, dir.to_string_lossy().as_ref(), crate::session::by_month()).await?;
    Ok(())
}

/// Lists what a [`layout::MonthWriter`] wrote for `table` (under the snapshot
/// directory `dir`) in `manifest`; a table with no rows at all gets an empty
/// file (of `schema`) under the month `unmatched`, so that it can be read.
fn record_months(
    manifest: &mut Manifest,
    staging: &Path,
    (table, dir): (&str, &str),
    written: BTreeMap<String, (PathBuf, usize)>,
    schema: SchemaRef,
) -> Result<(), WarehouseError> {
    let months = manifest.by_month.entry(table.to_owned()).or_default();
    for (month, (path, rows)) in written {
        months.insert(month, TableEntry { file: format!("{dir}/{}", path.display()), rows });
    }
    if months.is_empty() {
        let file = format!("{dir}/month={UNMATCHED}/part-0.parquet");
        write_parquet(&staging.join(&file), &RecordBatch::new_empty(schema))?;
        months.insert(UNMATCHED.to_owned(), TableEntry { file, rows: 0 });
    }
    Ok(())
}

/// Counts the rollup of each child table from its files under `staging`,
/// for the months `placed` only (every month when `None`).
async fn write_child_rollups(
    ctx: &SessionContext,
    staging: &Path,
    manifest: &mut Manifest,
    placed: Option<&BTreeSet<String>>,
) -> Result<(), WarehouseError> {
    for child in &CHILDREN {
        let all = format!("{}_all", child.table);
        register_by_month(ctx, &all, &staging.join(child.table)).await?;
        let view = ctx.sql(&format!("SELECT * FROM {all} WHERE {}", months_filter(placed))).await?;
        ctx.register_table(child.table, view.into_view())?;
        let frame = ctx.sql(child.rollup_sql).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let dir = staging.join("rollups").join(child.rollup);
        let written = layout::MonthWriter::new(&dir).write_stream(frame.execute_stream().await?).await?;
        let rollup_schema = Arc::new(Schema::new(
            schema.fields().iter().filter(|f| f.name() != "month").map(|f| f.as_ref().clone()).collect::<Vec<_>>(),
        ));
        let dir = format!("rollups/{}", child.rollup);
        record_months(manifest, staging, (child.rollup, &dir), written, rollup_schema)?;
        ctx.deregister_table(child.table)?;
        ctx.deregister_table(&all)?;
    }
    Ok(())
}

/// A SQL condition on the `month` partition: one of `months`, or any month when `None`.
fn months_filter(months: Option<&BTreeSet<String>>) -> String {
    match months {
        None => "TRUE".to_owned(),
        Some(months) if months.is_empty() => "FALSE".to_owned(),
        Some(months) => {
            let list: Vec<String> = months.iter().map(|m| format!("'{}'", m.replace('\'', "''"))).collect();
            format!("month IN ({})", list.join(", "))
        }
    }
}

/// What the child tables of a refresh start from.
struct ChildSource<'a> {
    /// The child rows read from the store: all of them, or those written
    /// since the previous snapshot's watermark (`evaluations`, `qc_findings`).
    rows: [RecordBatch; 2],
    /// For an incremental refresh, the previous snapshot (its directory and
    /// manifest) and the months whose child files are placed again: the case
    /// months written now, the case months of the rows read, and `unmatched`.
    /// The other months' files and rollups are carried over.
    previous: Option<(PathBuf, &'a Manifest, BTreeSet<String>)>,
}

/// Writes the child tables (`evaluations`, `qc_findings`) under `staging`,
/// whose `cases` months are written: each row with its case's dimensions
/// ([`layout::CHILD_CASE_COLUMNS`]), per case month, in the order of a month
/// file; rows whose case the snapshot lacks under the month `unmatched`
/// (counted by `warehouse reconcile`); then their rollups.
///
/// Incrementally, only the months to place are written: their previous rows,
/// less those read again from the store, plus the rows read, joined to the
/// cases of those months only; the other months are hard-linked. In full,
/// every row is read and placed. The join builds its hash table on the child
/// rows and streams `cases`; the sort spills.
async fn write_children(
    staging: &Path,
    manifest: &mut Manifest,
    source: ChildSource<'_>,
) -> Result<(), WarehouseError> {
    let ctx = layout::spilling_session()?;
    if manifest.cases.is_empty() {
        ctx.register_table("cases", crate::session::empty_cases()?)?;
    } else {
        register_by_month(&ctx, "cases", &staging.join("cases")).await?;
    }
    let placed = source.previous.as_ref().map(|(_, _, months)| months);
    if let Some((previous_dir, previous, months)) = &source.previous {
        for table in CHILDREN.iter().flat_map(|child| [child.table, child.rollup]) {
            for (month, entry) in previous.by_month.get(table).into_iter().flatten() {
                if months.contains(month) {
                    continue;
                }
                link_or_copy(&previous_dir.join(&entry.file), &staging.join(&entry.file))?;
                manifest.by_month.entry(table.to_owned()).or_default().insert(month.clone(), entry.clone());
            }
        }
    }
    for (child, batch) in CHILDREN.iter().zip(source.rows) {
        let rows_table = format!("{}_rows", child.table);
        let own: Vec<String> = batch.schema().fields().iter().map(|f| format!("\"{}\"", f.name())).collect();
        ctx.register_batch(&rows_table, batch)?;
        let mut rows = format!("SELECT * FROM {rows_table}");
        let previous_table = format!("{}_previous", child.table);
        if let Some((previous_dir, previous, months)) = &source.previous
            && previous.by_month.contains_key(child.table)
        {
            register_by_month(&ctx, &previous_table, &previous_dir.join(child.table)).await?;
            rows = format!(
                "SELECT {own} FROM {previous_table} WHERE {months} \
                 AND {key} NOT IN (SELECT {key} FROM {rows_table}) UNION ALL {rows}",
                own = own.join(", "),
                months = months_filter(Some(months)),
                key = child.key,
            );
        }
        let sql = format!(
            "SELECT * FROM (SELECT ch.*, {}, COALESCE(c.month, '{UNMATCHED}') AS month \
             FROM ({rows}) ch LEFT JOIN (SELECT * FROM cases WHERE {}) c ON ch.case_no = c.case_no) \
             ORDER BY month, district, business_type, submitted_at, {}",
            child_case_columns(),
            months_filter(placed),
            child.key
        );
        let frame = ctx.sql(&sql).await?;
        let schema = Arc::new(Schema::new(
            frame
                .schema()
                .as_arrow()
                .fields()
                .iter()
                .filter(|f| f.name() != "month")
                .map(|f| Field::new(f.name(), layout::plain_type(f.data_type()), true))
                .collect::<Vec<_>>(),
        ));
        let written =
            layout::MonthWriter::new(&staging.join(child.table)).write_stream(frame.execute_stream().await?).await?;
        if let Some(months) = placed
            && let Some(stray) = written.keys().find(|month| !months.contains(*month))
        {
            return Err(WarehouseError::Corrupt(format!(
                "{}: a row was placed in month {stray}, which this refresh carries over",
                child.table
            )));
        }
        record_months(manifest, staging, (child.table, child.table), written, schema)?;
        ctx.deregister_table(&rows_table)?;
        ctx.deregister_table(&previous_table)?;
    }
    write_child_rollups(&ctx, staging, manifest, placed).await
}

/// Refreshes the warehouse under `root` from `store` (see the module documentation).
///
/// Incrementally (the default), a month untouched since the previous
/// snapshot's watermark is hard-linked, and a month with cases written since
/// is the previous file with those cases replaced: only the changed cases are
/// read from the store. If the result holds more cases than the store (a case
/// whose submission moved to another month), the refresh starts over in full;
/// so does a refresh after a snapshot of an older layout.
pub async fn refresh(store: &Store, root: &Path, options: &RefreshOptions) -> Result<RefreshReport, WarehouseError> {
    let started = std::time::Instant::now();
    let warehouse = Warehouse::open(root)?;
    let previous = if options.full {
        None
    } else {
        warehouse.current()?.filter(|previous| previous.layout >= crate::snapshot::LAYOUT)
    };
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
            // A month without all its rollups is rewritten once.
            let action = if MonthFiles::rows_in(previous, month).is_none() {
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
    // A month of a city is tens of thousands of rows: one partition plans and
    // runs its rollups faster than spreading them over threads.
    let rollup_ctx =
        SessionContext::new_with_config(datafusion::prelude::SessionConfig::new().with_target_partitions(1));
    for (month, action) in &months {
        let files = MonthFiles::of(month);
        let carried = previous.as_ref().and_then(|p| Some((&p.snapshot_id, MonthFiles::rows_in(p, month)?)));
        let rows = match (action, carried) {
            (MonthAction::Keep, Some((previous_id, rows))) => {
                files.carry(&warehouse.snapshot_dir(previous_id), &staging)?;
                kept += 1;
                rows
            }
            (action, carried) => {
                let batch = match (action, carried) {
                    (MonthAction::Merge, Some((previous_id, _))) => {
                        let fresh = changed_cases.get(month).map(Vec::as_slice).unwrap_or_default();
                        let fresh = cases_batch(fresh, options)?;
                        merged_month(&warehouse.snapshot_dir(previous_id).join(&files.cases), &changed_numbers, fresh)?
                    }
                    _ => {
                        let (from, to) = month_bounds(month)?;
                        sorted_for_layout(&[cases_batch(&store.cases_submitted_between(from, to).await?, options)?])?
                    }
                };
                if batch.num_rows() == 0 {
                    continue;
                }
                written.push(month.clone());
                let month_started = std::time::Instant::now();
                let rows = files.write(&staging, &rollup_ctx, batch).await?;
                tracing::debug!(
                    month,
                    ms = month_started.elapsed().as_millis(),
                    "refresh: month and its rollups written"
                );
                rows
            }
        };
        files.record(&mut manifest, month, rows);
    }
    // Cases are never deleted, and the count is read after the export: more
    // rows than the store holds means a case kept in a month it left.
    let in_store = store.export_counts().await?;
    if previous.is_some() && manifest.case_rows() > usize::try_from(in_store.cases).unwrap_or(usize::MAX) {
        tracing::warn!(
            exported = manifest.case_rows(),
            in_store = in_store.cases,
            "incremental refresh holds more cases than the store (a submission time moved to another month): refreshing in full"
        );
        return start_over_in_full(store, root, options, &staging).await;
    }
    tracing::debug!(ms = started.elapsed().as_millis(), months = written.len(), "refresh: months written");

    // The child rows: those written since the previous watermark, placed in
    // the months written now, their own cases' months and `unmatched`; or all.
    let child_previous = match (&previous, since) {
        (Some(previous), Some(since))
            if CHILDREN
                .iter()
                .all(|c| previous.by_month.contains_key(c.table) && previous.by_month.contains_key(c.rollup)) =>
        {
            let mut months: BTreeSet<String> = written.iter().cloned().collect();
            months.extend(store.child_case_submissions_since(since).await?.into_iter().map(month_of));
            months.insert(UNMATCHED.to_owned());
            Some((warehouse.snapshot_dir(&previous.snapshot_id), previous, months))
        }
        _ => None,
    };
    let child_since = child_previous.as_ref().and(since);
    let qc = qc_batch(&store.qc_findings_ingested_since(child_since).await?)?;
    let evaluations = evaluations_batch(&store.evaluations_ingested_since(child_since).await?, &options.calendar)?;
    tracing::debug!(
        ms = started.elapsed().as_millis(),
        rows = qc.num_rows() + evaluations.num_rows(),
        "refresh: child rows read"
    );
    write_children(&staging, &mut manifest, ChildSource { rows: [evaluations, qc], previous: child_previous }).await?;
    tracing::debug!(ms = started.elapsed().as_millis(), "refresh: child tables written");
    // A child row is never deleted either: more rows than the store holds
    // means one kept where it no longer belongs (its case number changed).
    let children = (manifest.month_rows("evaluations"), manifest.month_rows("qc_findings"));
    let stored = (
        usize::try_from(in_store.evaluations).unwrap_or(usize::MAX),
        usize::try_from(in_store.qc_findings).unwrap_or(usize::MAX),
    );
    if previous.is_some() && (children.0 > stored.0 || children.1 > stored.1) {
        tracing::warn!(
            ?children,
            ?stored,
            "incremental refresh holds more child rows than the store: refreshing in full"
        );
        return start_over_in_full(store, root, options, &staging).await;
    }
    let seizures = store.all_seizures().await?;
    write_parquet(&staging.join("seizures/part-0.parquet"), &seizures_batch(&seizures)?)?;
    let anomalies = store.anomalies(None).await?;
    write_parquet(&staging.join("anomalies/part-0.parquet"), &anomalies_batch(&anomalies)?)?;
    manifest
        .tables
        .insert("seizures".into(), TableEntry { file: "seizures/part-0.parquet".into(), rows: seizures.len() });
    manifest
        .tables
        .insert("anomalies".into(), TableEntry { file: "anomalies/part-0.parquet".into(), rows: anomalies.len() });
    // The reconciliation of the months carried over still holds (their cases
    // did not change); `reconcile::after_refresh` checks the months written.
    if let Some(previous) = &previous {
        manifest.reconciliation = previous
            .reconciliation
            .iter()
            .filter(|check| !written.contains(&check.month) && manifest.cases.contains_key(&check.month))
            .cloned()
            .collect();
    }
    manifest.connectors = store.all_connector_states().await?.iter().map(ConnectorHealth::of).collect();
    manifest.refresh_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    warehouse.publish(&staging, &manifest)?;
    Ok(RefreshReport { manifest, months_written: written, months_kept: kept })
}

/// Drops the incremental refresh's `staging` directory and refreshes in full.
async fn start_over_in_full(
    store: &Store,
    root: &Path,
    options: &RefreshOptions,
    staging: &Path,
) -> Result<RefreshReport, WarehouseError> {
    fs::remove_dir_all(staging)?;
    Box::pin(refresh(store, root, &RefreshOptions { full: true, ..options.clone() })).await
}

/// What [`compact`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactReport {
    /// The new snapshot.
    pub manifest: Manifest,
    /// Months whose files were merged into one.
    pub months_compacted: Vec<String>,
}

/// The `*.parquet` files of a month directory, by name.
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, WarehouseError> {
    let mut found: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    found.retain(|path| path.extension().is_some_and(|e| e == "parquet"));
    found.sort();
    Ok(found)
}

/// Publishes a copy of the current snapshot in which every month of `cases`,
/// `evaluations` and `qc_findings` is one file, as a refresh writes it: all
/// the month's `*.parquet` files read, sorted in a session whose memory
/// spills ([`layout::spilling_session`]) and streamed to the file with the
/// refresh's settings, and the month's rollups counted again from it. Months
/// that are already a refresh's `part-0.parquet` with their rollups, and the
/// other tables, are hard-linked. This is for snapshots whose month
/// directories were filled by other means (`bench/inflate.py` writes each
/// month of a simulated year K times over). The snapshot must have the
/// current layout (a refresh writes it). `now` names the new snapshot.
pub async fn compact(root: &Path, now: DateTime<Utc>) -> Result<CompactReport, WarehouseError> {
    let warehouse = Warehouse::open(root)?;
    let previous = warehouse.current()?.ok_or_else(|| {
        WarehouseError::NoSnapshot(format!("{} has no snapshot yet: run `wangban warehouse refresh`", root.display()))
    })?;
    if !previous.has_layout() && !previous.cases.is_empty() {
        return Err(WarehouseError::BadRequest(format!(
            "snapshot {} has an older layout: run `wangban warehouse refresh --full` first",
            previous.snapshot_id
        )));
    }
    let previous_dir = warehouse.snapshot_dir(&previous.snapshot_id);
    let id = format!("{}", now.format("%Y%m%dT%H%M%S%.6fZ"));
    let staging = warehouse.staging_dir(&id)?;
    let mut manifest = Manifest::new(&id, now, previous.watermark());
    let mut compacted = Vec::new();
    for month in previous.cases.keys() {
        let target = MonthFiles::of(month);
        let found = parquet_files(&previous_dir.join(format!("cases/month={month}")))?;
        let carried =
            MonthFiles::rows_in(&previous, month).filter(|_| found.len() == 1 && found[0].ends_with(&target.cases));
        let rows = if let Some(rows) = carried {
            target.carry(&previous_dir, &staging)?;
            rows
        } else {
            let rows = target.write_from_files(&staging, &found).await?;
            tracing::info!(month, files = found.len(), rows = rows.cases, "month compacted");
            compacted.push(month.clone());
            rows
        };
        target.record(&mut manifest, month, rows);
    }
    // The child tables: each month sorted into one file, then their rollups counted again.
    let ctx = layout::spilling_session()?;
    let mut children_changed = false;
    for child in &CHILDREN {
        let months = previous.by_month.get(child.table).cloned().unwrap_or_default();
        let mut entries = BTreeMap::new();
        for (month, entry) in months {
            let found = parquet_files(&previous_dir.join(format!("{}/month={month}", child.table)))?;
            let file = format!("{}/month={month}/part-0.parquet", child.table);
            let rows = if found.len() == 1 && found[0].ends_with(&file) {
                link_or_copy(&found[0], &staging.join(&file))?;
                entry.rows
            } else {
                children_changed = true;
                let name = format!("{}_{}", child.table, month.replace('-', "_"));
                ctx.register_listing_table(
                    &name,
                    previous_dir.join(format!("{}/month={month}/", child.table)).to_string_lossy().as_ref(),
                    datafusion::datasource::listing::ListingOptions::new(Arc::new(
                        datafusion::datasource::file_format::parquet::ParquetFormat::default(),
                    ))
                    .with_file_extension(".parquet"),
                    None,
                    None,
                )
                .await?;
                tracing::info!(table = child.table, month, files = found.len(), "child month compacted");
                let sql = format!("SELECT * FROM {name} ORDER BY district, business_type, submitted_at, {}", child.key);
                let rows =
                    layout::write_file(&staging.join(&file), ctx.sql(&sql).await?.execute_stream().await?).await?;
                ctx.deregister_table(&name)?;
                rows
            };
            entries.insert(month, TableEntry { file, rows });
        }
        manifest.by_month.insert(child.table.to_owned(), entries);
    }
    let rollups_carried =
        !children_changed && CHILDREN.iter().all(|child| previous.by_month.contains_key(child.rollup));
    if rollups_carried {
        for child in &CHILDREN {
            let entries = previous.by_month.get(child.rollup).cloned().unwrap_or_default();
            for entry in entries.values() {
                link_or_copy(&previous_dir.join(&entry.file), &staging.join(&entry.file))?;
            }
            manifest.by_month.insert(child.rollup.to_owned(), entries);
        }
    } else {
        write_child_rollups(&ctx, &staging, &mut manifest, None).await?;
    }
    for (table, entry) in &previous.tables {
        link_or_copy(&previous_dir.join(&entry.file), &staging.join(&entry.file))?;
        manifest.tables.insert(table.clone(), entry.clone());
    }
    manifest.connectors = previous.connectors.clone();
    // A month compacted from other files no longer holds what the store delivered.
    manifest.reconciliation =
        previous.reconciliation.iter().filter(|c| !compacted.contains(&c.month)).cloned().collect();
    warehouse.publish(&staging, &manifest)?;
    Ok(CompactReport { manifest, months_compacted: compacted })
}
