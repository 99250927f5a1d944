//! How a snapshot's files are laid out, and the streaming writer that lays
//! them out within a bounded memory.
//!
//! - Every month file (`cases`, `evaluations`, `qc_findings`) is sorted by
//!   district, then business type, then submission time ([`SORT_KEYS`]), so a
//!   district's month is a contiguous run of rows: row-group and page
//!   statistics prune the rest of the file when a query names a district.
//! - Row groups hold up to [`ROW_GROUP_ROWS`] rows and pages up to
//!   [`PAGE_ROWS`], with page statistics and the page index written, so a
//!   district (about a tenth of a city's month) is one or two row groups at a
//!   province's size and a few pages at a city's.
//! - The child tables carry their case's dimensions ([`CHILD_CASE_COLUMNS`]):
//!   satisfaction and QC statistics read one table and build no hash table.
//! - [`MonthWriter`] writes a stream sorted by `month` first into one file per
//!   month, never holding more than a batch and the open row group; sorts run
//!   in a session whose memory pool spills to disk ([`spilling_session`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray as _, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionContext;
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::prelude::SessionConfig;
use futures_util::StreamExt as _;

use crate::WarehouseError;

/// The sort order of every month file: these columns, then the table's key.
pub const SORT_KEYS: [&str; 3] = ["district", "business_type", "submitted_at"];

/// Rows per row group at most (a district's month at a province's size is one or two).
pub const ROW_GROUP_ROWS: usize = 1024 * 1024;

/// Rows per data page at most (the unit the page index prunes).
pub const PAGE_ROWS: usize = 8 * 1024;

/// Memory the sorts of a refresh or compaction may hold before they spill.
pub const SORT_MEMORY: usize = 192 << 20;

/// What a sort reserves of [`SORT_MEMORY`] before it fills, to merge what it spilled.
pub const SORT_MERGE_RESERVATION: usize = 32 << 20;

/// The case's columns a child row carries: (name in the child table, name in `cases`).
/// The case's channel is `case_channel`, because `evaluations.channel` is the
/// channel of the evaluation itself.
pub const CHILD_CASE_COLUMNS: [(&str, &str); 9] = [
    ("business_type", "business_type"),
    ("phase", "phase"),
    ("case_channel", "channel"),
    ("district", "district"),
    ("applicant_kind", "applicant_kind"),
    ("in_scope", "in_scope"),
    ("phase_live", "phase_live"),
    ("week", "week"),
    ("submitted_at", "submitted_at"),
];

/// The writer settings of a month file sorted by the columns at `sorted_by`
/// (positions in its schema).
pub fn writer_properties(sorted_by: &[usize]) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS);
    if !sorted_by.is_empty() {
        let columns = sorted_by
            .iter()
            .map(|&column| SortingColumn {
                column_idx: i32::try_from(column).unwrap_or(0),
                descending: false,
                nulls_first: false,
            })
            .collect();
        builder = builder.set_sorting_columns(Some(columns));
    }
    builder.build()
}

/// The positions of [`SORT_KEYS`] in `schema` (those it has).
pub fn sort_positions(schema: &Schema) -> Vec<usize> {
    SORT_KEYS.iter().filter_map(|name| schema.index_of(name).ok()).collect()
}

/// A session for the sorts and aggregates of a refresh or compaction: its
/// operators hold at most [`SORT_MEMORY`] and spill the rest to temporary
/// files, so a month of any size is sorted within a bounded memory.
///
/// One partition: a sort of several partitions splits the pool between its
/// sorters, and one that finished reading could not reserve the memory to
/// merge its spill files while another still held its share (a month of 8
/// million cases failed so in a pool of 256 MiB). With one, the sorter spills
/// what it holds and merges with the whole pool; the merge's reservation is
/// made before it fills ([`SORT_MERGE_RESERVATION`]).
pub fn spilling_session() -> Result<SessionContext, WarehouseError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(SORT_MEMORY)))
        .with_disk_manager_builder(DiskManagerBuilder::default())
        .build()?;
    let config = SessionConfig::new()
        .with_target_partitions(1)
        .with_batch_size(8192)
        .with_sort_spill_reservation_bytes(SORT_MERGE_RESERVATION);
    Ok(SessionContext::new_with_config_rt(config, Arc::new(runtime)))
}

/// A column type as the month files store it: view, large and dictionary strings as plain ones.
pub fn plain_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _) => DataType::Utf8,
        other => other.clone(),
    }
}

/// `batch` with its view strings as plain strings (what the store's export
/// writes), and without the column `drop`, if named.
fn plain(batch: &RecordBatch, drop: Option<&str>) -> Result<RecordBatch, WarehouseError> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if Some(field.name().as_str()) == drop {
            continue;
        }
        let data_type = plain_type(field.data_type());
        if &data_type == field.data_type() {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        } else {
            fields.push(Field::new(field.name(), data_type.clone(), field.is_nullable()));
            columns.push(cast(column, &data_type)?);
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// One open Parquet file being written.
struct Open {
    month: String,
    path: PathBuf,
    writer: ArrowWriter<fs::File>,
    rows: usize,
}

/// Writes the rows of a stream sorted by `month` first as
/// `DIR/month=M/part-0.parquet`, one file per month, without the `month`
/// column (it is the partition).
pub struct MonthWriter {
    dir: PathBuf,
    open: Option<Open>,
    written: BTreeMap<String, (PathBuf, usize)>,
}

impl std::fmt::Debug for MonthWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonthWriter").field("dir", &self.dir).field("written", &self.written).finish_non_exhaustive()
    }
}

impl MonthWriter {
    /// A writer of the table directory `dir`.
    pub fn new(dir: &Path) -> MonthWriter {
        MonthWriter { dir: dir.to_owned(), open: None, written: BTreeMap::new() }
    }

    /// Writes every batch of `stream` (each with a `month` column, sorted by it)
    /// and closes the last file: answers the months written with their path
    /// (relative to `DIR`'s parent) and rows.
    pub async fn write_stream(
        mut self,
        mut stream: SendableRecordBatchStream,
    ) -> Result<BTreeMap<String, (PathBuf, usize)>, WarehouseError> {
        while let Some(batch) = stream.next().await {
            self.write(&batch?)?;
        }
        self.finish()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), WarehouseError> {
        let months = batch
            .column_by_name("month")
            .ok_or_else(|| WarehouseError::Corrupt("a month file's rows have no month".into()))?;
        let months = cast(months, &DataType::Utf8)?;
        let months = months.as_string::<i32>();
        let mut start = 0;
        while start < batch.num_rows() {
            let month = if months.is_null(start) { crate::snapshot::UNMATCHED } else { months.value(start) };
            let mut end = start + 1;
            while end < batch.num_rows() && !months.is_null(end) && months.value(end) == month {
                end += 1;
            }
            let part = plain(&batch.slice(start, end - start), Some("month"))?;
            self.append(month, &part)?;
            start = end;
        }
        Ok(())
    }

    fn append(&mut self, month: &str, part: &RecordBatch) -> Result<(), WarehouseError> {
        if self.open.as_ref().is_none_or(|open| open.month != month) {
            if self.written.contains_key(month) {
                return Err(WarehouseError::Corrupt(format!("rows of month {month} arrived out of order")));
            }
            self.close()?;
            let relative = PathBuf::from(format!("month={month}/part-0.parquet"));
            let path = self.dir.join(&relative);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let properties = writer_properties(&sort_positions(&part.schema()));
            let writer = ArrowWriter::try_new(fs::File::create(&path)?, part.schema(), Some(properties))?;
            self.open = Some(Open { month: month.to_owned(), path: relative, writer, rows: 0 });
        }
        if let Some(open) = self.open.as_mut() {
            open.writer.write(part)?;
            open.rows += part.num_rows();
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), WarehouseError> {
        if let Some(open) = self.open.take() {
            open.writer.close()?;
            self.written.insert(open.month, (open.path, open.rows));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<BTreeMap<String, (PathBuf, usize)>, WarehouseError> {
        self.close()?;
        Ok(self.written)
    }
}

/// Writes `stream` into the single file `path` (creating its directory), each
/// batch's view strings as plain ones, with the writer settings of a month
/// file: answers the rows written.
pub async fn write_file(path: &Path, mut stream: SendableRecordBatchStream) -> Result<usize, WarehouseError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let schema: SchemaRef = plain(&RecordBatch::new_empty(stream.schema()), None)?.schema();
    let properties = writer_properties(&sort_positions(&schema));
    let mut writer = ArrowWriter::try_new(fs::File::create(path)?, schema, Some(properties))?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = plain(&batch?, None)?;
        rows += batch.num_rows();
        writer.write(&batch)?;
    }
    writer.close()?;
    Ok(rows)
}
