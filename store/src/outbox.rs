//! The court platform's feedback outbox. The result of every pulled request
//! is written here in the transaction that applies the request, and sent to
//! the platform afterwards, at least once, until the platform acknowledges
//! it; the acknowledgement is recorded. The platform treats repeats as one.

use chrono::{DateTime, Utc};

use crate::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// Feedback for one request (`<KZFK>`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Feedback {
    /// The platform's partner id.
    pub partner_id: String,
    /// The request number (`CXQQDH`).
    pub request_no: String,
    /// `JG`: 1 done, 2 queued, 3 refused.
    pub result: i64,
    /// `YY`: why, for refusals.
    pub reason: String,
    /// `DJSJ`: when the registry recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When the platform acknowledged it.
    pub acked_at: Option<DateTime<Utc>>,
}

impl StoreTx {
    /// Queues feedback for a request; a request already queued keeps its first feedback.
    pub async fn queue_feedback(
        &mut self,
        partner_id: &str,
        request_no: &str,
        result: i64,
        reason: &str,
        recorded_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_tx!(self, conn => {
            sqlx::query(
                "INSERT INTO court_feedback_outbox (partner_id, request_no, result, reason, recorded_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (partner_id, request_no) DO NOTHING",
            )
            .bind(partner_id)
            .bind(request_no)
            .bind(result)
            .bind(reason)
            .bind(recorded_at)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}

impl Store {
    /// Feedback not yet acknowledged, oldest first.
    pub async fn pending_feedback(&self, partner_id: &str, limit: i64) -> StoreResult<Vec<Feedback>> {
        let rows: Vec<Feedback> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT partner_id, request_no, result, reason, recorded_at, attempts, acked_at FROM court_feedback_outbox \
                 WHERE partner_id = $1 AND acked_at IS NULL ORDER BY created_at, request_no LIMIT $2",
            )
            .bind(partner_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// One request's feedback, if queued.
    pub async fn feedback(&self, partner_id: &str, request_no: &str) -> StoreResult<Option<Feedback>> {
        let row: Option<Feedback> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT partner_id, request_no, result, reason, recorded_at, attempts, acked_at FROM court_feedback_outbox \
                 WHERE partner_id = $1 AND request_no = $2",
            )
            .bind(partner_id)
            .bind(request_no)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// Records a delivery attempt: acknowledged (`error` `None`) or failed.
    pub async fn record_feedback_attempt(
        &self,
        partner_id: &str,
        request_no: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let acked_at = error.is_none().then_some(now);
        let mut tx = self.begin().await?;
        on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE court_feedback_outbox SET attempts = attempts + 1, last_attempt_at = $1, last_error = $2, \
                 acked_at = COALESCE(acked_at, $3) WHERE partner_id = $4 AND request_no = $5",
            )
            .bind(now)
            .bind(error)
            .bind(acked_at)
            .bind(partner_id)
            .bind(request_no)
            .execute(conn)
            .await?;
        });
        tx.commit().await
    }
}
