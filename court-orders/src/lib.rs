//! Court orders applied: the one path every court order takes, pushed to the
//! gateway or pulled from the control platform. In one store transaction it
//! records the raw payload (if not already recorded), serialises on the
//! unit, runs the `domain` seizure rules, writes the register's changes, the
//! order and its receipt, and the audit entry. The receipt can be sent once
//! the transaction has committed.
//!
//! Orders are idempotent by (partner, order number): the same content again
//! returns the original receipt text; other content under a used number is a
//! conflict. Refused orders are not bound to their number (the court may send
//! a corrected order under it); they are kept in the inbox and the audit log.
//!
//! A group of orders (one commit of the gateway's writer, or one page of the
//! platform's requests) is applied at once with few round trips: one read of
//! its order numbers and of its units' registers, the rules in memory in the
//! per-order order, and its rows in multi-row statements (the store's
//! primitives in `store::court`). Should any statement fail (a concurrent
//! writer taking an order number first, above all), the group is rolled back
//! to its savepoint and the same orders are applied one at a time, each a
//! group of one under its own savepoint: the receipts, refusals and audit
//! entries are the same either way.
//!
//! # Layout
//!
//! - `lib.rs`: [`Receipt`] and [`ReceiptStatus`], [`ApplyOutcome`], [`Apply`]
//!   and the functions that apply orders ([`apply`], [`apply_in`],
//!   [`apply_one`]), answer status queries ([`status`]), run the daily lapse
//!   job ([`lapse_expired`]) and read a unit's register ([`unit_register`]).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use domain::court_order::{CourtAction, CourtOrder};
use domain::seizure::{SeizeRequest, SeizureError, SeizureRules, SeizureState, Transition, UnitSeizures};
use store::audit::Recorded;
use store::court::{NewOrderRow, Unit};
use store::{Store, StoreError, StoreResult, StoreTx};

pub use store::court::{OrderJob, Payload};

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

impl Receipt {
    /// A receipt for `order`, with a refusal's code and reason when refused.
    fn of(
        order: &CourtOrder,
        status: ReceiptStatus,
        queue_position: Option<i64>,
        reason: Option<(&str, String)>,
        now: DateTime<Utc>,
    ) -> Self {
        let (reason_code, reason) = reason.map_or((None, None), |(code, text)| (Some(code.to_owned()), Some(text)));
        Self { order_no: order.order_no.clone(), status, queue_position, reason_code, reason, recorded_at: now }
    }
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

/// What every order of a group is applied with: the rules, the time, the
/// local date the rules use, and the receipt's wire form (the gateway's XML
/// element, the platform's JSON feedback), kept with the order and sent
/// again for a repeat.
#[derive(Clone, Copy)]
pub struct Apply<'a> {
    /// The seizure rules.
    pub rules: SeizureRules,
    /// When the orders are recorded.
    pub now: DateTime<Utc>,
    /// The local (China) date of `now`.
    pub today: NaiveDate,
    /// A receipt's text as kept and sent.
    pub render: &'a (dyn Fn(&Receipt) -> String + Sync),
}

impl std::fmt::Debug for Apply<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apply").field("rules", &self.rules).field("now", &self.now).field("today", &self.today).finish()
    }
}

/// Applies several orders with one commit (group commit): see the crate
/// documentation. Each order is applied whole or not at all, and a failure
/// of one leaves the others alone; the receipts may be sent once this
/// returns `Ok`. If the commit itself fails, nothing was applied. Orders are
/// applied in the given order for each unit (units in ascending order),
/// which keeps lock order the same in every process.
pub async fn apply(
    store: &Store,
    jobs: &[OrderJob<'_>],
    with: Apply<'_>,
) -> StoreResult<Vec<StoreResult<ApplyOutcome>>> {
    let order = unit_order(jobs);
    // The group at once, in its own transaction: no savepoint needed, a
    // failure rolls the whole transaction back (two round trips fewer).
    let mut tx = store.begin().await?;
    lock_units(&mut tx, jobs, &order).await?;
    match apply_group(&mut tx, jobs, &order, with).await {
        Ok(results) => {
            tx.commit().await?;
            return Ok(results);
        }
        Err(error) => {
            tracing::debug!(message = "group apply fell back to one order at a time", %error, orders = jobs.len());
            tx.rollback().await?;
        }
    }
    let mut tx = store.begin().await?;
    lock_units(&mut tx, jobs, &order).await?;
    let results = apply_each(&mut tx, jobs, &order, with).await?;
    tx.commit().await?;
    Ok(results)
}

/// The jobs' indices in the order they are applied: by unit, ascending
/// (the lock order), and as given within a unit.
fn unit_order(jobs: &[OrderJob<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|a, b| jobs[*a].order.unit_no.as_str().cmp(jobs[*b].order.unit_no.as_str()));
    order
}

/// One lock order everywhere: every unit of the group in ascending order
/// first, the audit chain last (at commit). Several writers, or several
/// gateways on one PostgreSQL, then cannot deadlock.
async fn lock_units(tx: &mut StoreTx, jobs: &[OrderJob<'_>], order: &[usize]) -> StoreResult<()> {
    let mut units: Vec<&str> = order.iter().map(|i| jobs[*i].order.unit_no.as_str()).collect();
    units.dedup();
    tx.lock_units(&units).await
}

/// Applies one order in its own transaction.
pub async fn apply_one(store: &Store, job: OrderJob<'_>, with: Apply<'_>) -> StoreResult<ApplyOutcome> {
    let mut results = apply(store, &[job], with).await?;
    results.pop().unwrap_or_else(|| Err(StoreError::NotFound { what: "order result", key: job.order.order_no.clone() }))
}

/// [`apply`] inside a transaction the caller commits: the court platform's
/// connector commits the orders of a page with its feedback and its cursor.
pub async fn apply_in(
    tx: &mut StoreTx,
    jobs: &[OrderJob<'_>],
    with: Apply<'_>,
) -> StoreResult<Vec<StoreResult<ApplyOutcome>>> {
    let order = unit_order(jobs);
    lock_units(tx, jobs, &order).await?;
    let savepoint = tx.savepoint("court_group").await?;
    match apply_group(tx, jobs, &order, with).await {
        Ok(results) => {
            tx.release(savepoint).await?;
            return Ok(results);
        }
        Err(error) => {
            tracing::debug!(message = "group apply fell back to one order at a time", %error, orders = jobs.len());
            tx.rollback_to(savepoint).await?;
        }
    }
    apply_each(tx, jobs, &order, with).await
}

/// Applies `jobs` one at a time in `order`, each a group of one under its
/// own savepoint, so a failure of one leaves the others alone.
async fn apply_each(
    tx: &mut StoreTx,
    jobs: &[OrderJob<'_>],
    order: &[usize],
    with: Apply<'_>,
) -> StoreResult<Vec<StoreResult<ApplyOutcome>>> {
    let mut results: Vec<Option<StoreResult<ApplyOutcome>>> = (0..jobs.len()).map(|_| None).collect();
    for &index in order {
        let job = &jobs[index];
        let savepoint = tx.savepoint("court_order").await?;
        let result = match apply_group(tx, std::slice::from_ref(job), &[0], with).await.map(|mut one| one.pop()) {
            Ok(Some(outcome)) => {
                tx.release(savepoint).await?;
                outcome
            }
            Ok(None) => Err(StoreError::NotFound { what: "order result", key: job.order.order_no.clone() }),
            Err(error) => {
                tx.rollback_to(savepoint).await?;
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
    Ok(results.into_iter().map(|r| r.unwrap_or_else(|| Err(missing_result()))).collect())
}

fn missing_result() -> StoreError {
    StoreError::NotFound { what: "order result", key: String::new() }
}

/// Applies `jobs` (already locked, in `order`); one result per job, in the
/// jobs' order. An `Err` means nothing may be kept: the caller rolls back to
/// its savepoint.
async fn apply_group(
    tx: &mut StoreTx,
    jobs: &[OrderJob<'_>],
    order: &[usize],
    with: Apply<'_>,
) -> StoreResult<Vec<StoreResult<ApplyOutcome>>> {
    let Apply { rules, now, today, render } = with;
    let inbox_ids = tx.insert_payloads(jobs, order, now).await?;
    let mut known = tx.known_orders(jobs).await?;
    let numbers: Vec<&str> = jobs.iter().map(|j| j.order.unit_no.as_str()).collect();
    let mut units: HashMap<String, Unit> = tx.load_units(&numbers, rules).await?;

    let mut results: Vec<Option<StoreResult<ApplyOutcome>>> = (0..jobs.len()).map(|_| None).collect();
    let mut rows: Vec<NewOrderRow<'_>> = Vec::new();
    for &index in order {
        let job = &jobs[index];
        let OrderJob { partner_id, order, content_sha256, .. } = *job;
        let inbox_id = inbox_ids[index];
        let key = (partner_id.to_owned(), order.order_no.clone());
        if let Some(seen) = known.get(&key) {
            let same = seen.content_sha256 == content_sha256;
            let outcome = if same {
                ApplyOutcome::Duplicate { receipt_text: seen.receipt_text.clone() }
            } else {
                ApplyOutcome::Conflict { order_no: order.order_no.clone() }
            };
            let outcome_code = if same { "duplicate" } else { "conflict" };
            let entry = Recorded::CourtOrderRepeat { inbox_id, outcome: outcome_code };
            tx.record(now, partner_id, &order.order_no, &entry).await?;
            results[index] = Some(Ok(outcome));
            continue;
        }
        let unit = units
            .get_mut(order.unit_no.as_str())
            .ok_or_else(|| StoreError::NotFound { what: "loaded unit", key: order.unit_no.as_str().to_owned() })?;
        let mut next = unit.now.clone();
        next.lapse_expired(today);
        let result = match &order.action {
            CourtAction::Seize { start, end } => next.seize(
                SeizeRequest {
                    order_no: order.order_no.clone(),
                    case_no: order.case_no.as_str().to_owned(),
                    served_at: order.served_at.naive_utc(),
                    start: *start,
                    end: *end,
                },
                today,
            ),
            // A court renews or releases only its own seizures: another court's reads as unknown to it.
            CourtAction::Renew { original_order_no, .. } | CourtAction::Release { original_order_no }
                if unit.partners.get(original_order_no).is_some_and(|owner| owner != partner_id) =>
            {
                Err(SeizureError::UnknownOrder { order_no: original_order_no.clone() })
            }
            CourtAction::Renew { original_order_no, start, end } => next.renew(original_order_no, *start, *end, today),
            CourtAction::Release { original_order_no } => next.release(original_order_no, today),
        };
        let transitions = match result {
            Ok(transitions) => transitions,
            Err(error) => {
                // Expiries found on the way are real: keep them, refuse the order.
                unit.now.lapse_expired(today);
                let reason = Some((refusal_code(&error), error.to_string()));
                let receipt = Receipt::of(order, ReceiptStatus::Rejected, None, reason, now);
                let receipt_text = render(&receipt);
                let entry = Recorded::CourtOrderRefused {
                    inbox_id,
                    action: order.action.code(),
                    unit_no: order.unit_no.as_str(),
                    refused: refusal_code(&error),
                };
                tx.record(now, partner_id, &order.order_no, &entry).await?;
                results[index] = Some(Ok(ApplyOutcome::Refused { receipt, receipt_text, error }));
                continue;
            }
        };
        for seizure in next.seizures() {
            unit.partners.entry(seizure.order_no.clone()).or_insert_with(|| partner_id.to_owned());
        }
        unit.now = next;
        let (status, queue_position) = transitions
            .iter()
            .rev()
            .find_map(|t| match t {
                Transition::Seized { order_no } if *order_no == order.order_no => Some((ReceiptStatus::Seized, None)),
                Transition::Queued { order_no, position } if *order_no == order.order_no => {
                    Some((ReceiptStatus::Queued, i64::try_from(*position).ok()))
                }
                Transition::Renewed { .. } => Some((ReceiptStatus::Renewed, None)),
                Transition::Released { .. } => Some((ReceiptStatus::Released, None)),
                _ => None,
            })
            .unwrap_or((ReceiptStatus::Seized, None));
        let receipt = Receipt::of(order, status, queue_position, None, now);
        let receipt_text = render(&receipt);
        let entry = Recorded::CourtOrder {
            inbox_id,
            action: order.action.code(),
            unit_no: order.unit_no.as_str(),
            status: status.code(),
            transitions: transitions.len(),
        };
        tx.record(now, partner_id, &order.order_no, &entry).await?;
        known.insert(
            key,
            store::court::KnownOrder { content_sha256: content_sha256.to_owned(), receipt_text: receipt_text.clone() },
        );
        rows.push(NewOrderRow {
            job,
            inbox_id,
            receipt_status: status.code(),
            queue_position,
            receipt_text: receipt_text.clone(),
        });
        results[index] = Some(Ok(ApplyOutcome::Applied { receipt, receipt_text }));
    }

    tx.save_units(&units, now).await?;
    tx.insert_order_rows(&rows, now).await?;
    Ok(results.into_iter().map(|r| r.unwrap_or_else(|| Err(missing_result()))).collect())
}

/// The current receipt of an applied order: a queued seizure since promoted
/// reads SEIZED, one past its end LAPSED. `None` if the order is unknown.
pub async fn status(store: &Store, partner_id: &str, order_no: &str, today: NaiveDate) -> StoreResult<Option<Receipt>> {
    let Some(applied) = store.applied_order(partner_id, order_no).await? else { return Ok(None) };
    let mut status = ReceiptStatus::from_code(&applied.receipt_status).ok_or_else(|| StoreError::Corrupt {
        table: "court_orders",
        column: "receipt_status",
        value: applied.receipt_status.clone(),
    })?;
    let mut queue_position = applied.queue_position;
    if applied.action == "SEIZE"
        && let Some(seizure) = store.seizure_now(partner_id, order_no).await?
    {
        queue_position = None;
        status = match seizure.state {
            SeizureState::Active if seizure.end_date < today => ReceiptStatus::Lapsed,
            SeizureState::Active => ReceiptStatus::Seized,
            SeizureState::Queued => {
                queue_position = Some(store.queued_ahead(&applied.unit_no, seizure.served_at, order_no).await? + 1);
                ReceiptStatus::Queued
            }
            SeizureState::Released => ReceiptStatus::Released,
            SeizureState::Lapsed => ReceiptStatus::Lapsed,
        };
    }
    Ok(Some(Receipt {
        order_no: order_no.to_owned(),
        status,
        queue_position,
        reason_code: None,
        reason: None,
        recorded_at: applied.received_at,
    }))
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

/// The daily job: lapses every active seizure whose end is before `today`
/// and promotes the queues behind them, one unit per transaction.
pub async fn lapse_expired(
    store: &Store,
    rules: SeizureRules,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> StoreResult<LapseReport> {
    let units = store.units_with_expired_seizures(today).await?;
    let mut report = LapseReport { units: units.len(), ..LapseReport::default() };
    for unit_no in units {
        let mut tx = store.begin().await?;
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
        tx.record(now, "system", &unit_no, &Recorded::SeizureLapse { transitions: transitions.len() }).await?;
        tx.commit().await?;
    }
    Ok(report)
}

/// The seizures of a unit, as the register holds them.
pub async fn unit_register(store: &Store, unit_no: &str, rules: SeizureRules) -> StoreResult<UnitSeizures> {
    let mut tx = store.begin().await?;
    let mut units = tx.load_units(&[unit_no], rules).await?;
    tx.rollback().await?;
    Ok(units.remove(unit_no).map(|u| u.now).unwrap_or_else(|| UnitSeizures::from_seizures(rules, Vec::new())))
}
