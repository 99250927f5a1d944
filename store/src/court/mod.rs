//! The court tables and the seizure register, as transaction primitives.
//! The rules live in `domain::seizure`; applying an order (idempotency, the
//! rules in order, receipts, audit entries, the fallback to one order at a
//! time) is the `court-orders` crate's, which calls these inside one
//! [`StoreTx`]:
//!
//! - locks: [`StoreTx::lock_units`] serialises work on units (PostgreSQL
//!   advisory locks in ascending unit order; SQLite holds the write lock);
//! - savepoints: [`StoreTx::savepoint`], [`StoreTx::release`],
//!   [`StoreTx::rollback_to`] (which also forgets the audit entries made since);
//! - reads and writes of a group in few round trips (`batch.rs`): payloads,
//!   orders already applied, unit registers, new and changed seizures, and
//!   the applied orders with their receipt text;
//! - reads for status queries, the daily lapse job and operators.
//!
//! Court orders are idempotent by (partner, order number) in the table: a
//! second row under a used number is a unique violation.

use chrono::{DateTime, NaiveDate, Utc};
use domain::court_order::CourtOrder;
use domain::seizure::{Seizure, SeizureState};

use crate::{Store, StoreError, StoreResult, StoreTx, TxInner, on_pool, on_tx};

mod batch;

pub use batch::{KnownOrder, NewOrderRow, Unit};

/// Where the raw payload of an order is.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// Already in the inbox (a batch records its payload once).
    InInbox(i64),
    /// Record it in the order's own transaction.
    New { channel: &'a str, content_type: &'a str, bytes: &'a [u8] },
}

/// One order to apply, with who sent it and where its payload is.
#[derive(Debug, Clone, Copy)]
pub struct OrderJob<'a> {
    /// The court partner.
    pub partner_id: &'a str,
    /// The validated order.
    pub order: &'a CourtOrder,
    /// Hash of the order's content, for idempotency.
    pub content_sha256: &'a str,
    /// Where the raw payload is.
    pub payload: Payload<'a>,
}

/// A savepoint inside a transaction, and how many audit entries were
/// buffered when it was taken (rolled back with it).
#[derive(Debug)]
#[must_use = "a savepoint is released or rolled back to"]
pub struct Savepoint {
    name: &'static str,
    audit_mark: usize,
}

/// An applied order as the status query reads it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppliedOrder {
    /// `SEIZE`, `RENEW` or `RELEASE`.
    pub action: String,
    /// The status its receipt gave.
    pub receipt_status: String,
    /// The queue position its receipt gave.
    pub queue_position: Option<i64>,
    /// When the registry recorded it.
    pub received_at: DateTime<Utc>,
    /// The unit.
    pub unit_no: String,
}

/// A seizure's state as the status query reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeizureNow {
    /// Its state in the register.
    pub state: SeizureState,
    /// Last day of its current period.
    pub end_date: NaiveDate,
    /// When it was served (its place in a queue).
    pub served_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SeizureRow {
    order_no: String,
    case_no: String,
    served_at: DateTime<Utc>,
    start_date: NaiveDate,
    end_date: NaiveDate,
    state: String,
    ended_on: Option<NaiveDate>,
    renewals: i64,
}

impl TryFrom<SeizureRow> for Seizure {
    type Error = StoreError;

    fn try_from(r: SeizureRow) -> Result<Self, StoreError> {
        let state = SeizureState::from_code(&r.state).ok_or_else(|| StoreError::Corrupt {
            table: "seizures",
            column: "state",
            value: r.state.clone(),
        })?;
        Ok(Seizure {
            order_no: r.order_no,
            case_no: r.case_no,
            served_at: r.served_at.naive_utc(),
            start: r.start_date,
            end: r.end_date,
            state,
            ended_on: r.ended_on,
            renewals: u32::try_from(r.renewals).unwrap_or(u32::MAX),
        })
    }
}

/// A seizure as listed for operators (expiring soon, active on a unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeizureSummary {
    /// Court partner.
    pub partner_id: String,
    /// The court's order number.
    pub order_no: String,
    /// The unit.
    pub unit_no: String,
    /// Case number.
    pub case_no: String,
    /// Current period.
    pub start_date: NaiveDate,
    /// Last day of the current period.
    pub end_date: NaiveDate,
    /// State.
    pub state: SeizureState,
}

impl StoreTx {
    /// Serialises work on one unit: PostgreSQL takes a transaction-scoped
    /// advisory lock on the unit number; SQLite already holds the write lock.
    pub async fn lock_unit(&mut self, unit_no: &str) -> StoreResult<()> {
        if let TxInner::Postgres(tx) = &mut self.inner {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7172))")
                .bind(unit_no)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// [`StoreTx::lock_unit`] for several units, in the given (ascending)
    /// order, in one statement: the array's elements are scanned in order.
    pub async fn lock_units(&mut self, units: &[&str]) -> StoreResult<()> {
        if let TxInner::Postgres(tx) = &mut self.inner {
            let units: Vec<String> = units.iter().map(|u| (*u).to_owned()).collect();
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended(u, 7172)) FROM unnest($1::text[]) AS u")
                .bind(units)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

impl StoreTx {
    /// Takes a savepoint named `name` (a constant).
    pub async fn savepoint(&mut self, name: &'static str) -> StoreResult<Savepoint> {
        on_tx!(self, conn => { sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SAVEPOINT {name}"))).execute(&mut *conn).await?; });
        Ok(Savepoint { name, audit_mark: self.audit_buffer.len() })
    }

    /// Keeps what was done since the savepoint.
    pub async fn release(&mut self, savepoint: Savepoint) -> StoreResult<()> {
        let name = savepoint.name;
        on_tx!(self, conn => { sqlx::raw_sql(sqlx::AssertSqlSafe(format!("RELEASE SAVEPOINT {name}"))).execute(&mut *conn).await?; });
        Ok(())
    }

    /// Undoes what was done since the savepoint, audit entries included.
    pub async fn rollback_to(&mut self, savepoint: Savepoint) -> StoreResult<()> {
        self.audit_buffer.truncate(savepoint.audit_mark);
        let name = savepoint.name;
        on_tx!(self, conn => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")))
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }
}

impl Store {
    /// An applied order of `partner_id`, if any.
    pub async fn applied_order(&self, partner_id: &str, order_no: &str) -> StoreResult<Option<AppliedOrder>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT action, receipt_status, queue_position, received_at, unit_no FROM court_orders WHERE partner_id = $1 AND order_no = $2",
            )
            .bind(partner_id)
            .bind(order_no)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// The register's entry for a seizure, if any.
    pub async fn seizure_now(&self, partner_id: &str, order_no: &str) -> StoreResult<Option<SeizureNow>> {
        let row: Option<(String, NaiveDate, DateTime<Utc>)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT state, end_date, served_at FROM seizures WHERE partner_id = $1 AND order_no = $2")
                .bind(partner_id)
                .bind(order_no)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(state, end_date, served_at)| {
            let state = SeizureState::from_code(&state).ok_or(StoreError::Corrupt {
                table: "seizures",
                column: "state",
                value: state,
            })?;
            Ok(SeizureNow { state, end_date, served_at })
        })
        .transpose()
    }

    /// Queued seizures on `unit_no` ahead of one served at `served_at` under
    /// `order_no` (earlier, or as early with a smaller number).
    pub async fn queued_ahead(&self, unit_no: &str, served_at: DateTime<Utc>, order_no: &str) -> StoreResult<i64> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM seizures WHERE unit_no = $1 AND state = 'queued' \
                 AND (served_at < $2 OR (served_at = $2 AND order_no < $3))",
            )
            .bind(unit_no)
            .bind(served_at)
            .bind(order_no)
            .fetch_one(pool)
            .await?
        }))
    }

    /// Units with an active seizure whose end is before `today`, in order.
    pub async fn units_with_expired_seizures(&self, today: NaiveDate) -> StoreResult<Vec<String>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar("SELECT DISTINCT unit_no FROM seizures WHERE state = 'active' AND end_date < $1 ORDER BY unit_no")
                .bind(today)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Seizure register entries by state (`active`, `queued`, `released`, `lapsed`).
    pub async fn seizure_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as("SELECT state, COUNT(*) FROM seizures GROUP BY state ORDER BY state").fetch_all(pool).await?
        }))
    }

    /// Active seizures whose period ends within `days` days of `today`, soonest first.
    pub async fn seizures_expiring_within(&self, today: NaiveDate, days: u32) -> StoreResult<Vec<SeizureSummary>> {
        let until = today + chrono::Days::new(u64::from(days));
        let rows: Vec<(String, String, String, String, NaiveDate, NaiveDate, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT partner_id, order_no, unit_no, case_no, start_date, end_date, state FROM seizures \
                 WHERE state = 'active' AND end_date >= $1 AND end_date <= $2 ORDER BY end_date, unit_no",
            )
            .bind(today)
            .bind(until)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(partner_id, order_no, unit_no, case_no, start_date, end_date, state)| {
                let state = SeizureState::from_code(&state).ok_or_else(|| StoreError::Corrupt {
                    table: "seizures",
                    column: "state",
                    value: state.clone(),
                })?;
                Ok(SeizureSummary { partner_id, order_no, unit_no, case_no, start_date, end_date, state })
            })
            .collect()
    }
}

impl Store {
    /// Keeps a court payload that could not be taken (malformed XML, missing or
    /// invalid fields): the raw bytes in the inbox, a quarantine entry with the
    /// reason, and an audit entry, in one transaction. Returns the inbox id.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_rejected_payload(
        &self,
        partner_id: &str,
        channel: &str,
        content_type: &str,
        bytes: &[u8],
        position: &str,
        reason_code: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let mut tx = self.begin().await?;
        let inbox_id = tx.insert_inbox(now, partner_id, channel, content_type, bytes).await?;
        let source = format!("{channel}:{partner_id}");
        let position = format!("inbox {inbox_id} {position}");
        tx.quarantine(
            &crate::quarantine::NewQuarantine {
                source: &source,
                position: &position,
                reason_code,
                reason,
                payload: bytes,
            },
            now,
        )
        .await?;
        tx.record(now, partner_id, &position, &crate::audit::Recorded::PayloadRejected { reason_code }).await?;
        tx.commit().await?;
        Ok(inbox_id)
    }

    /// Records a payload in the inbox on its own (a batch, before its orders are applied one by one).
    pub async fn record_payload(
        &self,
        partner_id: &str,
        channel: &str,
        content_type: &str,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let mut tx = self.begin().await?;
        let id = tx.insert_inbox(now, partner_id, channel, content_type, bytes).await?;
        tx.commit().await?;
        Ok(id)
    }
}
