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

/// Row counts of the tables a warehouse snapshot exports per case month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportCounts {
    /// cases
    pub cases: i64,
    /// evaluations
    pub evaluations: i64,
    /// qc_findings
    pub qc_findings: i64,
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

    /// The QC findings written at or after `since` (every one when `None`;
    /// "at or after" for the reason given at
    /// [`Store::case_submissions_changed_since`]), read through the
    /// `ingested_at` index: what a warehouse refresh places again.
    pub async fn qc_findings_ingested_since(&self, since: Option<DateTime<Utc>>) -> StoreResult<Vec<QcFinding>> {
        macro_rules! select {
            () => {
                "SELECT source, external_id, case_source, case_external_id, category, severity, section, \
                 description, found_at, corrected_at, source_updated_at FROM qc_findings"
            };
        }
        let rows: Vec<QcFinding> = on_pool!(self, pool => {
            match since {
                Some(since) => sqlx::query_as(concat!(select!(), " WHERE ingested_at >= $1 ORDER BY found_at, id"))
                    .bind(since)
                    .fetch_all(pool)
                    .await?,
                None => sqlx::query_as(concat!(select!(), " ORDER BY found_at, id")).fetch_all(pool).await?,
            }
        });
        Ok(rows)
    }

    /// The evaluations written at or after `since` (every one when `None`), as
    /// [`Store::qc_findings_ingested_since`].
    pub async fn evaluations_ingested_since(&self, since: Option<DateTime<Utc>>) -> StoreResult<Vec<Evaluation>> {
        macro_rules! select {
            () => {
                "SELECT source, external_id, case_source, case_external_id, level, channel, comment, \
                 evaluated_at, rectified_at, source_updated_at FROM evaluations"
            };
        }
        let rows: Vec<Evaluation> = on_pool!(self, pool => {
            match since {
                Some(since) => sqlx::query_as(concat!(select!(), " WHERE ingested_at >= $1 ORDER BY evaluated_at, id"))
                    .bind(since)
                    .fetch_all(pool)
                    .await?,
                None => sqlx::query_as(concat!(select!(), " ORDER BY evaluated_at, id")).fetch_all(pool).await?,
            }
        });
        Ok(rows)
    }

    /// Submission times of the cases of the QC findings and evaluations
    /// written at or after `since`: the case months whose child files a
    /// refresh writes again. A child row whose case the store lacks gives none.
    pub async fn child_case_submissions_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<DateTime<Utc>>> {
        let rows: Vec<DateTime<Utc>> = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT c.submitted_at FROM qc_findings f JOIN cases c \
                 ON c.source = f.case_source AND c.external_id = f.case_external_id WHERE f.ingested_at >= $1 \
                 UNION SELECT c.submitted_at FROM evaluations e JOIN cases c \
                 ON c.source = e.case_source AND c.external_id = e.case_external_id WHERE e.ingested_at >= $1",
            )
            .bind(since)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// How many cases, evaluations and QC findings the store holds (each
    /// counted through an index): what a refresh checks its snapshot against.
    pub async fn export_counts(&self) -> StoreResult<ExportCounts> {
        let (cases, evaluations, qc_findings): (i64, i64, i64) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM cases), (SELECT COUNT(*) FROM evaluations), (SELECT COUNT(*) FROM qc_findings)",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(ExportCounts { cases, evaluations, qc_findings })
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
