//! A query's rows on their way to the client: read batch by batch from the
//! engine under the statement's time limit, the round's wall-clock limit and
//! cancel requests, written in the client's formats, cut at the row limit,
//! and ended as the protocol asks.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use tokio::io::AsyncWrite;
use warehouse::datafusion::arrow::array::RecordBatch;
use warehouse::datafusion::error::DataFusionError;
use warehouse::datafusion::execution::SendableRecordBatchStream;

use crate::session::{Session, cancelled, df_error, formats_for};
use crate::types::{Column, Kind};
use crate::wire::Out;
use crate::{PgError, send};

/// Bytes of rows gathered before they are sent.
const SEND_AT: usize = 64 << 10;

/// A query's rows on their way out. (The stream sits in a mutex only so
/// that a session is `Sync`; it is reached through `get_mut`, never locked.)
pub(crate) struct Running {
    pub(crate) stream: Option<std::sync::Mutex<SendableRecordBatchStream>>,
    pub(crate) pending: Option<(Vec<Column>, usize, usize)>,
    pub(crate) fields: Vec<(String, Kind)>,
    pub(crate) rows: usize,
    pub(crate) busy: Duration,
    pub(crate) started: Instant,
    pub(crate) sql: String,
    pub(crate) audited: bool,
    /// Keeps the snapshot the rows come from through refreshes until the rows are done.
    pub(crate) _pin: Option<warehouse::snapshot::ReaderPin>,
}

/// How a round of sending rows ended.
pub(crate) enum Pumped {
    /// The rows asked for were sent; more remain.
    Suspended,
    /// The result is complete (`capped`: cut at the row limit).
    Done { capped: bool },
}

/// Why sending rows stopped.
pub(crate) enum PumpError {
    /// The query failed (sent to the client).
    Pg(PgError),
    /// The client went away.
    Io(std::io::Error),
}

impl Session<'_> {
    /// Sends up to `limit` rows (all when `None`) of `running`, in `formats`.
    pub(crate) async fn pump<S: AsyncWrite + Unpin>(
        &self,
        running: &mut Running,
        formats: &[i16],
        limit: Option<usize>,
        stream: &mut S,
        out: &mut Out,
    ) -> Result<Pumped, PumpError> {
        let formats = formats_for(formats, running.fields.len());
        let kinds: Vec<Kind> = running.fields.iter().map(|(_, k)| *k).collect();
        let mut sent = 0usize;
        loop {
            if self.cancel.since(self.mark) {
                return Err(PumpError::Pg(cancelled()));
            }
            if running.rows >= self.inner.max_rows {
                let capped = running.pending.is_some() || self.next_batch(running, &kinds).await?;
                running.stream = None;
                running.pending = None;
                return Ok(Pumped::Done { capped });
            }
            if limit.is_some_and(|l| sent >= l) {
                let more = running.pending.is_some() || self.next_batch(running, &kinds).await?;
                return Ok(if more { Pumped::Suspended } else { Pumped::Done { capped: false } });
            }
            if running.pending.is_none() && !self.next_batch(running, &kinds).await? {
                return Ok(Pumped::Done { capped: false });
            }
            let Some((columns, next, len)) = running.pending.as_mut() else { continue };
            while *next < *len && limit.is_none_or(|l| sent < l) && running.rows < self.inner.max_rows {
                let row = out.begin_row(columns.len());
                for (c, column) in columns.iter().enumerate() {
                    if column.is_null(*next) {
                        out.null();
                    } else {
                        out.value(|buf| column.write(*next, formats[c] == 1, buf));
                    }
                }
                out.end_row(row);
                *next += 1;
                sent += 1;
                running.rows += 1;
                if out.buf.len() >= SEND_AT {
                    self.send_rows(stream, out).await?;
                }
            }
            if *next >= *len {
                running.pending = None;
            }
        }
    }

    /// Sends the rows gathered, within the round's wall-clock limit: a client
    /// that stops reading does not keep the query's memory.
    async fn send_rows<S: AsyncWrite + Unpin>(&self, stream: &mut S, out: &mut Out) -> Result<(), PumpError> {
        match tokio::time::timeout_at(self.wall.into(), send(stream, out)).await {
            Ok(sent) => sent.map_err(PumpError::Io),
            Err(_) => Err(PumpError::Pg(PgError::fatal(
                "57014",
                format!(
                    "terminating the statement: its rows were not read within {} s",
                    self.inner.limits.statement_wall.as_secs()
                ),
            ))),
        }
    }

    /// Reads the next non-empty batch into `running.pending`; false at the end.
    async fn next_batch(&self, running: &mut Running, kinds: &[Kind]) -> Result<bool, PumpError> {
        loop {
            let Some(stream) = running.stream.as_mut() else { return Ok(false) };
            let stream = stream.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
            let left =
                self.timeout.saturating_sub(running.busy).min(self.wall.saturating_duration_since(Instant::now()));
            let polled = Instant::now();
            let next: Option<Result<RecordBatch, DataFusionError>> = tokio::select! {
                n = tokio::time::timeout(left, stream.next()) => n.map_err(|_| PumpError::Pg(self.timed_out()))?,
                () = self.cancel.after(self.mark) => return Err(PumpError::Pg(cancelled())),
            };
            running.busy += polled.elapsed();
            let Some(batch) = next else {
                running.stream = None;
                return Ok(false);
            };
            let batch = batch.map_err(|e| PumpError::Pg(df_error(&e, self.memory_mb())))?;
            if batch.num_rows() == 0 {
                continue;
            }
            let columns = batch
                .columns()
                .iter()
                .zip(kinds)
                .map(|(a, k)| Column::new(a, *k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| PumpError::Pg(PgError::error("XX000", format!("a value could not be sent: {e}"))))?;
            running.pending = Some((columns, 0, batch.num_rows()));
            return Ok(true);
        }
    }

    /// Pumps `running` and ends it as the protocol asks: `CommandComplete`
    /// (after the audit) or `PortalSuspended`. True when it is complete.
    pub(crate) async fn complete<S: AsyncWrite + Unpin>(
        &mut self,
        running: &mut Running,
        formats: &[i16],
        limit: Option<usize>,
        stream: &mut S,
        out: &mut Out,
    ) -> Result<bool, PgError> {
        match self.pump(running, formats, limit, stream, out).await {
            Ok(Pumped::Suspended) => {
                out.empty(b's');
                Ok(false)
            }
            Ok(Pumped::Done { capped }) => {
                if capped {
                    out.notice_or_error(
                        b'N',
                        "WARNING",
                        "01000",
                        &format!(
                            "the result was cut at {} rows, the PostgreSQL front end's row limit ([analytics] pg_max_rows)",
                            self.inner.max_rows
                        ),
                        None,
                    );
                }
                self.finish(running, None).await?;
                out.command_complete(&format!("SELECT {}", running.rows));
                Ok(true)
            }
            Err(PumpError::Pg(e)) => {
                self.finish(running, Some(&e)).await?;
                Err(e)
            }
            Err(PumpError::Io(e)) => {
                let gone = PgError::fatal("08006", format!("the client went away: {e}"));
                let _ = self.finish(running, Some(&gone)).await;
                Err(gone)
            }
        }
    }
}
