//! Reads for the warehouse export (cases by submission period are in
//! [`crate::cases`]): the other
//! record tables whole, the seizure register, and what changed since a
//! watermark. Plain rows; the warehouse masks identities before writing.

use chrono::{DateTime, NaiveDate, Utc};

use crate::records::{Evaluation, QcFinding};
use crate::{Store, StoreResult, on_pool};

/// A seizure row as the warehouse exports it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SeizureRow {
    /// Court partner.
    pub partner_id: String,
    /// The court's order number.
    pub order_no: String,
    /// The unit.
    pub unit_no: String,
    /// When the notice was served.
    pub served_at: DateTime<Utc>,
    /// Current period start.
    pub start_date: NaiveDate,
    /// Current period end.
    pub end_date: NaiveDate,
    /// `active`, `queued`, `released`, `lapsed`.
    pub state: String,
    /// When it ended (release or lapse).
    pub ended_on: Option<NaiveDate>,
    /// Renewals so far.
    pub renewals: i64,
    /// When the registry recorded it.
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Submission times of the cases written at or after `since` (all cases
    /// when `None`): the warehouse turns them into the months to rewrite.
    /// "At or after": rows written in the same instant as the watermark may
    /// have been committed after it was read, so the newest batch's months are
    /// written again rather than risk missing a row.
    pub async fn case_submissions_changed_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<DateTime<Utc>>> {
        let rows: Vec<DateTime<Utc>> = match since {
            Some(since) => on_pool!(self, pool => {
                sqlx::query_scalar("SELECT submitted_at FROM cases WHERE ingested_at >= $1").bind(since).fetch_all(pool).await?
            }),
            None => on_pool!(self, pool => {
                sqlx::query_scalar("SELECT submitted_at FROM cases").fetch_all(pool).await?
            }),
        };
        Ok(rows)
    }

    /// The newest write time of each record table and the seizure register
    /// together: the source watermark of a warehouse snapshot.
    pub async fn latest_write(&self) -> StoreResult<Option<DateTime<Utc>>> {
        type Latest = Option<DateTime<Utc>>;
        let times: (Latest, Latest, Latest, Latest) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT MAX(ingested_at) FROM cases), (SELECT MAX(ingested_at) FROM qc_findings), \
                 (SELECT MAX(ingested_at) FROM evaluations), (SELECT MAX(updated_at) FROM seizures)",
            )
            .fetch_one(pool)
            .await?
        });
        Ok([times.0, times.1, times.2, times.3].into_iter().flatten().max())
    }

    /// Every QC finding.
    pub async fn all_qc_findings(&self) -> StoreResult<Vec<QcFinding>> {
        let rows: Vec<QcFinding> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT source, external_id, case_source, case_external_id, category, severity, section, description, \
                 found_at, corrected_at, source_updated_at FROM qc_findings ORDER BY found_at, id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Every evaluation.
    pub async fn all_evaluations(&self) -> StoreResult<Vec<Evaluation>> {
        let rows: Vec<Evaluation> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT source, external_id, case_source, case_external_id, level, channel, comment, evaluated_at, \
                 rectified_at, source_updated_at FROM evaluations ORDER BY evaluated_at, id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// The whole seizure register.
    pub async fn all_seizures(&self) -> StoreResult<Vec<SeizureRow>> {
        let rows: Vec<SeizureRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT partner_id, order_no, unit_no, served_at, start_date, end_date, state, ended_on, renewals, created_at \
                 FROM seizures ORDER BY served_at, id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
