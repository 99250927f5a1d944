//! Court orders and the seizure register. [`Store::apply_court_order`] is the
//! one code path for every court order, pushed to the gateway or pulled from
//! the control platform: in one transaction it records the raw payload (if not
//! already recorded), serialises on the unit, runs the `domain` seizure state
//! machine, writes the register changes, the order and its receipt, and the
//! audit entry. The receipt can be sent once this returns.
//!
//! Orders are idempotent by (partner, order number): the same content again
//! returns the original receipt; other content under a used number is a
//! conflict. Refused orders are not bound to their number (the court may send
//! a corrected order under it); they are kept in the inbox and the audit log.

use chrono::{DateTime, NaiveDate, Utc};
use domain::court_order::CourtOrder;
use domain::seizure::{Seizure, SeizureError, SeizureRules, SeizureState, Transition, UnitSeizures};

use crate::{Store, StoreError, StoreResult, StoreTx, TxInner, on_pool, on_tx};

mod batch;

/// Status carried by a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// The seizure is in force.
    Seized,
    /// The seizure waits behind another (轮候).
    Queued,
    /// The seizure was renewed.
    Renewed,
    /// The seizure was released.
    Released,
    /// The order was refused.
    Rejected,
    /// The seizure expired without renewal (status queries only).
    Lapsed,
}

impl ReceiptStatus {
    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Seized => "SEIZED",
            Self::Queued => "QUEUED",
            Self::Renewed => "RENEWED",
            Self::Released => "RELEASED",
            Self::Rejected => "REJECTED",
            Self::Lapsed => "LAPSED",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        [Self::Seized, Self::Queued, Self::Renewed, Self::Released, Self::Rejected, Self::Lapsed]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// What a receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The court's order number.
    pub order_no: String,
    /// Outcome.
    pub status: ReceiptStatus,
    /// Position in the queue (1 = next), for queued seizures.
    pub queue_position: Option<i64>,
    /// Machine-readable refusal reason.
    pub reason_code: Option<String>,
    /// Human-readable refusal reason.
    pub reason: Option<String>,
    /// When the registry recorded the order.
    pub recorded_at: DateTime<Utc>,
}

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

/// What applying an order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Applied now; the receipt text to send.
    Applied { receipt: Receipt, receipt_text: String },
    /// Seen before with the same content: the original receipt text.
    Duplicate { receipt_text: String },
    /// The order number was used before with other content.
    Conflict { order_no: String },
    /// Refused by the seizure rules; nothing changed in the register.
    Refused { receipt: Receipt, receipt_text: String, error: SeizureError },
}

/// A machine-readable code for each refusal.
pub fn refusal_code(error: &SeizureError) -> &'static str {
    match error {
        SeizureError::EndBeforeStart { .. } => "end_before_start",
        SeizureError::PeriodTooLong { .. } => "period_too_long",
        SeizureError::AlreadyOver { .. } => "period_already_over",
        SeizureError::DuplicateOrder { .. } => "duplicate_order_on_unit",
        SeizureError::UnknownOrder { .. } => "unknown_original_order",
        SeizureError::AlreadyEnded { .. } => "not_seized",
        SeizureError::NotActive { .. } => "not_active",
        SeizureError::RenewalAfterExpiry { .. } => "renewal_after_expiry",
        SeizureError::RenewalNotContinuous { .. } => "renewal_not_continuous",
    }
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

/// What the daily job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LapseReport {
    /// Units examined.
    pub units: usize,
    /// Order numbers of seizures that lapsed.
    pub lapsed: Vec<String>,
    /// Order numbers of queued seizures promoted.
    pub promoted: Vec<String>,
}

impl StoreTx {
    /// Serialises work on one unit: PostgreSQL takes a transaction-scoped
    /// advisory lock on the unit number; SQLite already holds the write lock.
    async fn lock_unit(&mut self, unit_no: &str) -> StoreResult<()> {
        if let TxInner::Postgres(tx) = &mut self.inner {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7172))")
                .bind(unit_no)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Locks every unit of `jobs` in ascending order; the jobs' indices in
    /// that order (document order within a unit), the order they are applied in.
    async fn lock_in_unit_order(&mut self, jobs: &[OrderJob<'_>]) -> StoreResult<Vec<usize>> {
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by(|a, b| jobs[*a].order.unit_no.as_str().cmp(jobs[*b].order.unit_no.as_str()));
        let mut units: Vec<&str> = order.iter().map(|i| jobs[*i].order.unit_no.as_str()).collect();
        units.dedup();
        self.lock_units(&units).await?;
        Ok(order)
    }

    /// [`StoreTx::lock_unit`] for several units, in the given (ascending)
    /// order, in one statement: the array's elements are scanned in order.
    async fn lock_units(&mut self, units: &[&str]) -> StoreResult<()> {
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

/// action, receipt_status, queue_position, received_at, unit_no
type OrderStatusRow = (String, String, Option<i64>, DateTime<Utc>, String);

impl StoreTx {
    /// Applies several orders inside this transaction (see
    /// [`Store::apply_court_orders`]): all at once with few round trips
    /// (`batch.rs`), or, if that fails, one by one under a savepoint each;
    /// nothing is final until the caller commits. The court platform's
    /// connector uses this to commit the orders of a page with its feedback
    /// and its cursor.
    pub async fn apply_court_orders(
        &mut self,
        jobs: &[OrderJob<'_>],
        rules: SeizureRules,
        now: DateTime<Utc>,
        today: NaiveDate,
        render: &(dyn Fn(&Receipt) -> String + Sync),
    ) -> StoreResult<Vec<StoreResult<ApplyOutcome>>> {
        // One lock order everywhere: every unit of the group in ascending
        // order first, the audit chain last (at commit). Several writers, or
        // several gateways on one PostgreSQL, then cannot deadlock.
        let order = self.lock_in_unit_order(jobs).await?;
        let with = batch::Apply { rules, now, today, render };
        // The group at once (few round trips); if anything fails there, the
        // same orders one by one, each under its own savepoint.
        on_tx!(self, conn => { sqlx::query("SAVEPOINT court_group").execute(&mut *conn).await?; });
        let audit_mark = self.audit_buffer.len();
        match self.apply_group(jobs, &order, with).await {
            Ok(results) => {
                on_tx!(self, conn => { sqlx::query("RELEASE SAVEPOINT court_group").execute(&mut *conn).await?; });
                return Ok(results);
            }
            Err(error) => {
                tracing::debug!(message = "group apply fell back to one order at a time", %error, orders = jobs.len());
                self.audit_buffer.truncate(audit_mark);
                on_tx!(self, conn => {
                    sqlx::query("ROLLBACK TO SAVEPOINT court_group").execute(&mut *conn).await?;
                    sqlx::query("RELEASE SAVEPOINT court_group").execute(&mut *conn).await?;
                });
            }
        }
        self.apply_each(jobs, &order, with).await
    }

    /// Applies `jobs` one at a time in `order`, each a group of one under its
    /// own savepoint, so a failure of one leaves the others alone (the
    /// fallback of [`StoreTx::apply_court_orders`]).
    async fn apply_each(
        &mut self,
        jobs: &[OrderJob<'_>],
        order: &[usize],
        with: batch::Apply<'_>,
    ) -> StoreResult<Vec<StoreResult<ApplyOutcome>>> {
        let mut results: Vec<Option<StoreResult<ApplyOutcome>>> = (0..jobs.len()).map(|_| None).collect();
        for &index in order {
            let job = &jobs[index];
            on_tx!(self, conn => { sqlx::query("SAVEPOINT court_order").execute(&mut *conn).await?; });
            let audit_mark = self.audit_buffer.len();
            let result = self.apply_group(std::slice::from_ref(job), &[0], with).await;
            let result = match result.map(|mut one| one.pop()) {
                Ok(Some(outcome)) => {
                    on_tx!(self, conn => { sqlx::query("RELEASE SAVEPOINT court_order").execute(&mut *conn).await?; });
                    outcome
                }
                Ok(None) => Err(StoreError::NotFound { what: "order result", key: job.order.order_no.clone() }),
                Err(error) => {
                    self.audit_buffer.truncate(audit_mark);
                    on_tx!(self, conn => {
                        sqlx::query("ROLLBACK TO SAVEPOINT court_order").execute(&mut *conn).await?;
                        sqlx::query("RELEASE SAVEPOINT court_order").execute(&mut *conn).await?;
                    });
                    if error.is_unique_violation() {
                        // The same number under another unit, raced in by a concurrent request.
                        Ok(ApplyOutcome::Conflict { order_no: job.order.order_no.clone() })
                    } else {
                        Err(error)
                    }
                }
            };
            results[index] = Some(result);
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::NotFound { what: "order result", key: String::new() })))
            .collect())
    }
}

impl Store {
    /// Applies one court order in its own transaction (see the module
    /// documentation). `content_sha256` identifies the order's content for
    /// idempotency; `render` turns a receipt into the text kept and sent for
    /// it; `today` is the local date the rules use.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_court_order(
        &self,
        partner_id: &str,
        order: &CourtOrder,
        content_sha256: &str,
        payload: Payload<'_>,
        rules: SeizureRules,
        now: DateTime<Utc>,
        today: NaiveDate,
        render: &(dyn Fn(&Receipt) -> String + Sync),
    ) -> StoreResult<ApplyOutcome> {
        let job = OrderJob { partner_id, order, content_sha256, payload };
        let mut results = self.apply_court_orders(&[job], rules, now, today, render).await?;
        results.pop().unwrap_or_else(|| Err(StoreError::NotFound { what: "order result", key: order.order_no.clone() }))
    }

    /// Applies several orders with one commit (group commit). The group is
    /// applied with multi-row statements; should that fail, each order runs
    /// under its own savepoint, so it is applied whole or not at all and a
    /// failure of one leaves the others alone; the receipts may be sent once
    /// this returns `Ok`. If the commit itself fails, nothing was applied.
    /// Orders are applied in the given order for each unit (units in
    /// ascending order), which keeps lock order the same in every process.
    pub async fn apply_court_orders(
        &self,
        jobs: &[OrderJob<'_>],
        rules: SeizureRules,
        now: DateTime<Utc>,
        today: NaiveDate,
        render: &(dyn Fn(&Receipt) -> String + Sync),
    ) -> StoreResult<Vec<StoreResult<ApplyOutcome>>> {
        let mut tx = self.begin().await?;
        let results = tx.apply_court_orders(jobs, rules, now, today, render).await?;
        tx.commit().await?;
        Ok(results)
    }

    /// The current receipt of an applied order: a queued seizure since promoted
    /// reads SEIZED, one past its end LAPSED. `None` if the order is unknown.
    pub async fn court_order_status(
        &self,
        partner_id: &str,
        order_no: &str,
        today: NaiveDate,
    ) -> StoreResult<Option<Receipt>> {
        let row: Option<OrderStatusRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT action, receipt_status, queue_position, received_at, unit_no FROM court_orders WHERE partner_id = $1 AND order_no = $2",
            )
            .bind(partner_id)
            .bind(order_no)
            .fetch_optional(pool)
            .await?
        });
        let Some((action, status, queue_position, recorded_at, unit_no)) = row else { return Ok(None) };
        let mut status = ReceiptStatus::from_code(&status).ok_or_else(|| StoreError::Corrupt {
            table: "court_orders",
            column: "receipt_status",
            value: status.clone(),
        })?;
        let mut queue_position = queue_position;
        if action == "SEIZE" {
            let seizure: Option<(String, NaiveDate, DateTime<Utc>)> = on_pool!(self, pool => {
                sqlx::query_as("SELECT state, end_date, served_at FROM seizures WHERE partner_id = $1 AND order_no = $2")
                    .bind(partner_id)
                    .bind(order_no)
                    .fetch_optional(pool)
                    .await?
            });
            if let Some((state, end_date, served_at)) = seizure {
                queue_position = None;
                status = match SeizureState::from_code(&state) {
                    Some(SeizureState::Active) if end_date < today => ReceiptStatus::Lapsed,
                    Some(SeizureState::Active) => ReceiptStatus::Seized,
                    Some(SeizureState::Queued) => {
                        let ahead: i64 = on_pool!(self, pool => {
                            sqlx::query_scalar(
                                "SELECT COUNT(*) FROM seizures WHERE unit_no = $1 AND state = 'queued' \
                                 AND (served_at < $2 OR (served_at = $2 AND order_no < $3))",
                            )
                            .bind(&unit_no)
                            .bind(served_at)
                            .bind(order_no)
                            .fetch_one(pool)
                            .await?
                        });
                        queue_position = Some(ahead + 1);
                        ReceiptStatus::Queued
                    }
                    Some(SeizureState::Released) => ReceiptStatus::Released,
                    Some(SeizureState::Lapsed) => ReceiptStatus::Lapsed,
                    None => return Err(StoreError::Corrupt { table: "seizures", column: "state", value: state }),
                };
            }
        }
        Ok(Some(Receipt {
            order_no: order_no.to_owned(),
            status,
            queue_position,
            reason_code: None,
            reason: None,
            recorded_at,
        }))
    }

    /// The daily job: lapses every active seizure whose end is before `today`
    /// and promotes the queues behind them, one unit per transaction.
    pub async fn lapse_expired_seizures(
        &self,
        rules: SeizureRules,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<LapseReport> {
        let units: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT DISTINCT unit_no FROM seizures WHERE state = 'active' AND end_date < $1 ORDER BY unit_no")
                .bind(today)
                .fetch_all(pool)
                .await?
        });
        let mut report = LapseReport { units: units.len(), ..LapseReport::default() };
        for unit_no in units {
            let mut tx = self.begin().await?;
            tx.lock_unit(&unit_no).await?;
            let mut units = tx.load_units(&[unit_no.as_str()], rules).await?;
            let transitions = units.get_mut(&unit_no).map(|u| u.now.lapse_expired(today)).unwrap_or_default();
            tx.save_units(&units, now).await?;
            for t in &transitions {
                match t {
                    Transition::Lapsed { order_no, .. } => report.lapsed.push(order_no.clone()),
                    Transition::Promoted { order_no, .. } => report.promoted.push(order_no.clone()),
                    _ => {}
                }
            }
            tx.record(
                now,
                "system",
                &unit_no,
                &crate::audit::Recorded::SeizureLapse { transitions: transitions.len() },
            )
            .await?;
            tx.commit().await?;
        }
        Ok(report)
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

    /// The seizures of a unit, as the register holds them.
    pub async fn unit_seizures(&self, unit_no: &str, rules: SeizureRules) -> StoreResult<UnitSeizures> {
        let mut tx = self.begin().await?;
        let mut units = tx.load_units(&[unit_no], rules).await?;
        tx.rollback().await?;
        Ok(units.remove(unit_no).map(|u| u.now).unwrap_or_else(|| UnitSeizures::from_seizures(rules, Vec::new())))
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
