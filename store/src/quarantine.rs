//! Quarantine: records that could not be accepted (broken identifiers,
//! missing fields, undecodable text, unknown codes), kept with the raw bytes,
//! the reason and where in the source they came from, until they are fixed
//! and replayed. Nothing bad is dropped silently.

use chrono::{DateTime, Utc};

use crate::{Store, StoreError, StoreResult, StoreTx, on_pool, on_tx};

/// A quarantined record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// Store id.
    pub id: i64,
    /// When it was quarantined.
    pub created_at: DateTime<Utc>,
    /// Connector or endpoint it came from.
    pub source: String,
    /// Where in the source (page cursor and row, file and line, order number).
    pub position: String,
    /// Machine-readable reason (`bad_identifier`, `missing_field`, `undecodable`, `unknown_code`, …).
    pub reason_code: String,
    /// Human-readable reason.
    pub reason: String,
    /// The raw record.
    pub payload: Vec<u8>,
    /// When it was replayed, if it was.
    pub replayed_at: Option<DateTime<Utc>>,
    /// What the replay did.
    pub replay_outcome: Option<String>,
}

/// A record to quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuarantine<'a> {
    /// Connector or endpoint.
    pub source: &'a str,
    /// Position in the source.
    pub position: &'a str,
    /// Machine-readable reason.
    pub reason_code: &'a str,
    /// Human-readable reason.
    pub reason: &'a str,
    /// The raw record.
    pub payload: &'a [u8],
}

type QuarantineRow =
    (i64, DateTime<Utc>, String, String, String, String, Vec<u8>, Option<DateTime<Utc>>, Option<String>);

fn from_row(r: QuarantineRow) -> QuarantineEntry {
    let (id, created_at, source, position, reason_code, reason, payload, replayed_at, replay_outcome) = r;
    QuarantineEntry { id, created_at, source, position, reason_code, reason, payload, replayed_at, replay_outcome }
}

impl StoreTx {
    /// Quarantines a record; returns its id.
    pub async fn quarantine(&mut self, q: &NewQuarantine<'_>, now: DateTime<Utc>) -> StoreResult<i64> {
        let id: i64 = on_tx!(self, conn => {
            sqlx::query_scalar(
                "INSERT INTO quarantine (created_at, source, position, reason_code, reason, payload) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(now)
            .bind(q.source)
            .bind(q.position)
            .bind(q.reason_code)
            .bind(q.reason)
            .bind(q.payload.to_vec())
            .fetch_one(conn)
            .await?
        });
        Ok(id)
    }

    /// Marks an entry replayed with its outcome.
    pub async fn mark_replayed(&mut self, id: i64, outcome: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let changed = on_tx!(self, conn => {
            sqlx::query("UPDATE quarantine SET replayed_at = $1, replay_outcome = $2 WHERE id = $3")
                .bind(now)
                .bind(outcome)
                .bind(id)
                .execute(conn)
                .await?
                .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound { what: "quarantine entry", key: id.to_string() });
        }
        Ok(())
    }
}

impl Store {
    /// Quarantined entries, newest first, optionally of one source, optionally only those not yet replayed.
    pub async fn list_quarantine(
        &self,
        source: Option<&str>,
        pending_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<QuarantineEntry>> {
        let rows: Vec<QuarantineRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, created_at, source, position, reason_code, reason, payload, replayed_at, replay_outcome \
                 FROM quarantine WHERE ($1 IS NULL OR source = $1) AND ($2 = FALSE OR replayed_at IS NULL) \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(source)
            .bind(pending_only)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// One quarantined entry.
    pub async fn get_quarantine(&self, id: i64) -> StoreResult<Option<QuarantineEntry>> {
        let row: Option<QuarantineRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, created_at, source, position, reason_code, reason, payload, replayed_at, replay_outcome \
                 FROM quarantine WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(from_row))
    }
}
