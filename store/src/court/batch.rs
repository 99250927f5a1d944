//! The one way orders are applied, with few round trips: the orders of a commit group are
//! applied with one read of every order number and unit they touch, the
//! seizure rules run in memory in the same order the per-order path uses,
//! and the group's rows are written with multi-row statements (inbox
//! payloads, new seizures, court orders). The receipts, refusals and audit
//! entries of a group equal those of applying its orders one at a time,
//! which is the fallback: any database error here (a concurrent writer
//! taking an order number first, above all) rolls the group back to its
//! savepoint, and the caller applies the same orders one at a time, each a
//! group of one under its own savepoint. The daily lapse job loads and saves
//! registers through the same functions. Statements are written with `$N`
//! and bound on SQLite as anonymous `?` (`StoreTx::dialect`), as the
//! upserts are: SQLite binds thousands of numbered parameters quadratically.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use domain::court_order::{CourtAction, CourtOrder};
use domain::seizure::{SeizeRequest, Seizure, SeizureRules, Transition, UnitSeizures};

use super::{ApplyOutcome, OrderJob, Payload, Receipt, ReceiptStatus, SeizureRow, refusal_code};
use crate::audit::Recorded;
use crate::inbox::sha256_hex;
use crate::upsert::value_tuples;
use crate::{StoreError, StoreResult, StoreTx, on_tx};

/// Rows per multi-row statement (court orders have 22 columns: 2,200 parameters).
const ROWS_PER_STATEMENT: usize = 100;

#[derive(sqlx::FromRow)]
struct UnitSeizureRow {
    unit_no: String,
    partner_id: String,
    #[sqlx(flatten)]
    row: SeizureRow,
}

/// A unit's register as loaded, and as the group leaves it.
pub(super) struct Unit {
    before: UnitSeizures,
    /// The register now.
    pub(super) now: UnitSeizures,
    /// The partner of each seizure (by order number).
    partners: HashMap<String, String>,
}

/// A `court_orders` row to insert.
struct OrderRow<'a> {
    job: &'a OrderJob<'a>,
    inbox_id: i64,
    status: ReceiptStatus,
    queue_position: Option<i64>,
    receipt_text: String,
}

/// A receipt for `order`, with a refusal's code and reason when refused.
fn receipt(
    order: &CourtOrder,
    status: ReceiptStatus,
    queue_position: Option<i64>,
    reason: Option<(&str, String)>,
    now: DateTime<Utc>,
) -> Receipt {
    let (reason_code, reason) = reason.map_or((None, None), |(code, text)| (Some(code.to_owned()), Some(text)));
    Receipt { order_no: order.order_no.clone(), status, queue_position, reason_code, reason, recorded_at: now }
}

/// What every order of a group is applied with.
#[derive(Clone, Copy)]
pub(super) struct Apply<'a> {
    pub(super) rules: SeizureRules,
    pub(super) now: DateTime<Utc>,
    pub(super) today: NaiveDate,
    pub(super) render: &'a (dyn Fn(&Receipt) -> String + Sync),
}

impl StoreTx {
    /// Applies `jobs` (already locked, in `order`) as described in the module
    /// documentation; one result per job, in the jobs' order. An `Err` means
    /// nothing may be kept: the caller rolls back to its savepoint.
    pub(super) async fn apply_group(
        &mut self,
        jobs: &[OrderJob<'_>],
        order: &[usize],
        with: Apply<'_>,
    ) -> StoreResult<Vec<StoreResult<ApplyOutcome>>> {
        let Apply { rules, now, today, render } = with;
        let inbox_ids = self.insert_payloads(jobs, order, now).await?;
        let mut known = self.known_orders(jobs).await?;
        let numbers: Vec<&str> = jobs.iter().map(|j| j.order.unit_no.as_str()).collect();
        let mut units = self.load_units(&numbers, rules).await?;

        let mut results: Vec<Option<StoreResult<ApplyOutcome>>> = (0..jobs.len()).map(|_| None).collect();
        let mut rows: Vec<OrderRow<'_>> = Vec::new();
        for &index in order {
            let job = &jobs[index];
            let OrderJob { partner_id, order, content_sha256, .. } = *job;
            let inbox_id = inbox_ids[index];
            let key = (partner_id.to_owned(), order.order_no.clone());
            if let Some((sha, receipt_text)) = known.get(&key) {
                let same = sha == content_sha256;
                let outcome = if same {
                    ApplyOutcome::Duplicate { receipt_text: receipt_text.clone() }
                } else {
                    ApplyOutcome::Conflict { order_no: order.order_no.clone() }
                };
                let outcome_code = if same { "duplicate" } else { "conflict" };
                let entry = Recorded::CourtOrderRepeat { inbox_id, outcome: outcome_code };
                self.record(now, partner_id, &order.order_no, &entry).await?;
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
                CourtAction::Renew { original_order_no, start, end } => {
                    next.renew(original_order_no, *start, *end, today)
                }
                CourtAction::Release { original_order_no } => next.release(original_order_no, today),
            };
            let transitions = match result {
                Ok(transitions) => transitions,
                Err(error) => {
                    // Expiries found on the way are real: keep them, refuse the order.
                    unit.now.lapse_expired(today);
                    let reason = Some((refusal_code(&error), error.to_string()));
                    let receipt = receipt(order, ReceiptStatus::Rejected, None, reason, now);
                    let receipt_text = render(&receipt);
                    let entry = Recorded::CourtOrderRefused {
                        inbox_id,
                        action: order.action.code(),
                        unit_no: order.unit_no.as_str(),
                        refused: refusal_code(&error),
                    };
                    self.record(now, partner_id, &order.order_no, &entry).await?;
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
                    Transition::Seized { order_no } if *order_no == order.order_no => {
                        Some((ReceiptStatus::Seized, None))
                    }
                    Transition::Queued { order_no, position } if *order_no == order.order_no => {
                        Some((ReceiptStatus::Queued, i64::try_from(*position).ok()))
                    }
                    Transition::Renewed { .. } => Some((ReceiptStatus::Renewed, None)),
                    Transition::Released { .. } => Some((ReceiptStatus::Released, None)),
                    _ => None,
                })
                .unwrap_or((ReceiptStatus::Seized, None));
            let receipt = receipt(order, status, queue_position, None, now);
            let receipt_text = render(&receipt);
            let entry = Recorded::CourtOrder {
                inbox_id,
                action: order.action.code(),
                unit_no: order.unit_no.as_str(),
                status: status.code(),
                transitions: transitions.len(),
            };
            self.record(now, partner_id, &order.order_no, &entry).await?;
            known.insert(key, (content_sha256.to_owned(), receipt_text.clone()));
            rows.push(OrderRow { job, inbox_id, status, queue_position, receipt_text: receipt_text.clone() });
            results[index] = Some(Ok(ApplyOutcome::Applied { receipt, receipt_text }));
        }

        self.save_units(&units, now).await?;
        self.insert_order_rows(&rows, now).await?;
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::NotFound { what: "order result", key: String::new() })))
            .collect())
    }

    /// Records the payloads that are not in the inbox yet (multi-row, in the
    /// order the orders are applied, as the per-order path records them); the
    /// inbox id of every job, by job index.
    async fn insert_payloads(
        &mut self,
        jobs: &[OrderJob<'_>],
        order: &[usize],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        let mut ids = vec![0i64; jobs.len()];
        let new: Vec<usize> = order
            .iter()
            .copied()
            .filter(|i| match jobs[*i].payload {
                Payload::InInbox(id) => {
                    ids[*i] = id;
                    false
                }
                Payload::New { .. } => true,
            })
            .collect();
        for chunk in new.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO inbox (received_at, partner_id, channel, content_type, sha256, size_bytes, payload) \
                 VALUES {} RETURNING id, sha256",
                value_tuples(chunk.len(), 7)
            );
            let sql = self.dialect(sql);
            let mut expected = Vec::with_capacity(chunk.len());
            let returned: Vec<(i64, String)> = on_tx!(self, conn => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
                for &i in chunk {
                    if let Payload::New { channel, content_type, bytes } = jobs[i].payload {
                        let hash = sha256_hex(bytes);
                        query = query
                            .bind(now)
                            .bind(jobs[i].partner_id)
                            .bind(channel)
                            .bind(content_type)
                            .bind(hash.clone())
                            .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
                            .bind(bytes.to_vec());
                        expected.push(hash);
                    }
                }
                query.fetch_all(conn).await?
            });
            // The rows come back in the order given; checked, not assumed.
            if returned.len() != chunk.len() || returned.iter().zip(&expected).any(|((_, got), want)| got != want) {
                return Err(StoreError::NotFound { what: "inbox ids in insertion order", key: String::new() });
            }
            for (&i, (id, _)) in chunk.iter().zip(returned) {
                ids[i] = id;
            }
        }
        Ok(ids)
    }

    /// The orders already applied under the group's numbers: (partner, number) → (content hash, receipt).
    /// One query per partner of the group (usually one), on the (partner, number) index.
    async fn known_orders(
        &mut self,
        jobs: &[OrderJob<'_>],
    ) -> StoreResult<HashMap<(String, String), (String, String)>> {
        let mut by_partner: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for job in jobs {
            by_partner.entry(job.partner_id).or_default().push(job.order.order_no.as_str());
        }
        let mut known = HashMap::new();
        for (partner, mut numbers) in by_partner {
            numbers.sort_unstable();
            numbers.dedup();
            for chunk in numbers.chunks(ROWS_PER_STATEMENT * 10) {
                let list: Vec<String> = (2..=chunk.len() + 1).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT order_no, content_sha256, receipt_text FROM court_orders \
                     WHERE partner_id = $1 AND order_no IN ({})",
                    list.join(", ")
                );
                let sql = self.dialect(sql);
                let rows: Vec<(String, String, String)> = on_tx!(self, conn => {
                    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(partner);
                    for number in chunk {
                        query = query.bind(*number);
                    }
                    query.fetch_all(conn).await?
                });
                for (number, sha, receipt) in rows {
                    known.insert((partner.to_owned(), number), (sha, receipt));
                }
            }
        }
        Ok(known)
    }

    /// The registers of the units `numbers` (in any order, repeats allowed).
    pub(super) async fn load_units(
        &mut self,
        numbers: &[&str],
        rules: SeizureRules,
    ) -> StoreResult<HashMap<String, Unit>> {
        let mut numbers = numbers.to_vec();
        numbers.sort_unstable();
        numbers.dedup();
        let mut seizures: HashMap<String, (Vec<Seizure>, HashMap<String, String>)> = HashMap::new();
        for chunk in numbers.chunks(ROWS_PER_STATEMENT * 10) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT unit_no, partner_id, order_no, case_no, served_at, start_date, end_date, state, ended_on, renewals \
                 FROM seizures WHERE unit_no IN ({}) ORDER BY id",
                list.join(", ")
            );
            let sql = self.dialect(sql);
            let rows: Vec<UnitSeizureRow> = on_tx!(self, conn => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
                for number in chunk {
                    query = query.bind(*number);
                }
                query.fetch_all(conn).await?
            });
            for r in rows {
                let entry = seizures.entry(r.unit_no).or_default();
                entry.1.insert(r.row.order_no.clone(), r.partner_id);
                entry.0.push(Seizure::try_from(r.row)?);
            }
        }
        Ok(numbers
            .into_iter()
            .map(|number| {
                let (list, partners) = seizures.remove(number).unwrap_or_default();
                let before = UnitSeizures::from_seizures(rules, list);
                (number.to_owned(), Unit { now: before.clone(), before, partners })
            })
            .collect())
    }

    /// Writes what the group changed in each register: new seizures in
    /// multi-row statements, changed ones one by one.
    pub(super) async fn save_units(&mut self, units: &HashMap<String, Unit>, now: DateTime<Utc>) -> StoreResult<()> {
        let mut numbers: Vec<&String> = units.keys().collect();
        numbers.sort();
        let mut inserts: Vec<(&str, &str, &Seizure)> = Vec::new();
        for number in numbers {
            let unit = &units[number];
            for seizure in unit.now.seizures() {
                let partner = unit.partners.get(&seizure.order_no).map(String::as_str).unwrap_or_default();
                match unit.before.get(&seizure.order_no) {
                    Some(old) if old == seizure => {}
                    Some(_) => {
                        on_tx!(self, conn => {
                            sqlx::query(
                                "UPDATE seizures SET start_date = $1, end_date = $2, state = $3, ended_on = $4, renewals = $5, updated_at = $6 \
                                 WHERE partner_id = $7 AND order_no = $8",
                            )
                            .bind(seizure.start)
                            .bind(seizure.end)
                            .bind(seizure.state.code())
                            .bind(seizure.ended_on)
                            .bind(i64::from(seizure.renewals))
                            .bind(now)
                            .bind(partner)
                            .bind(&seizure.order_no)
                            .execute(conn)
                            .await?;
                        });
                    }
                    None => inserts.push((partner, number.as_str(), seizure)),
                }
            }
        }
        for chunk in inserts.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO seizures (partner_id, order_no, unit_no, case_no, served_at, start_date, end_date, state, \
                 ended_on, renewals, created_at, updated_at) VALUES {}",
                value_tuples(chunk.len(), 12)
            );
            let sql = self.dialect(sql);
            on_tx!(self, conn => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (partner, unit_no, seizure) in chunk {
                    query = query
                        .bind(*partner)
                        .bind(&seizure.order_no)
                        .bind(*unit_no)
                        .bind(&seizure.case_no)
                        .bind(seizure.served_at.and_utc())
                        .bind(seizure.start)
                        .bind(seizure.end)
                        .bind(seizure.state.code())
                        .bind(seizure.ended_on)
                        .bind(i64::from(seizure.renewals))
                        .bind(now)
                        .bind(now);
                }
                query.execute(conn).await?;
            });
        }
        Ok(())
    }

    /// The applied orders with their receipts, in multi-row statements.
    async fn insert_order_rows(&mut self, rows: &[OrderRow<'_>], now: DateTime<Utc>) -> StoreResult<()> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO court_orders (partner_id, order_no, content_sha256, inbox_id, action, court_code, court_name, case_no, \
                 unit_no, cert_no, respondent_name, respondent_id_no, start_date, end_date, original_order_no, ruling_no, judge, \
                 served_at, received_at, receipt_status, queue_position, receipt_text) VALUES {}",
                value_tuples(chunk.len(), 22)
            );
            let sql = self.dialect(sql);
            on_tx!(self, conn => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for row in chunk {
                    let OrderJob { partner_id, order, content_sha256, .. } = *row.job;
                    let (start_date, end_date) = order.period().map_or((None, None), |(s, e)| (Some(s), Some(e)));
                    query = query
                        .bind(partner_id)
                        .bind(&order.order_no)
                        .bind(content_sha256)
                        .bind(row.inbox_id)
                        .bind(order.action.code())
                        .bind(&order.court_code)
                        .bind(&order.court_name)
                        .bind(order.case_no.as_str())
                        .bind(order.unit_no.as_str())
                        .bind(order.cert_no.as_ref().map(|c| c.as_str().to_owned()))
                        .bind(&order.respondent_name)
                        .bind(&order.respondent_id_no)
                        .bind(start_date)
                        .bind(end_date)
                        .bind(order.original_order_no())
                        .bind(&order.ruling_no)
                        .bind(&order.judge)
                        .bind(order.served_at)
                        .bind(now)
                        .bind(row.status.code())
                        .bind(row.queue_position)
                        .bind(&row.receipt_text);
                }
                query.execute(conn).await?;
            });
        }
        Ok(())
    }
}
