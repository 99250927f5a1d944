//! A group of orders read and written in few round trips: one read of every
//! order number and of every unit register the group touches, and its rows
//! written with multi-row statements (inbox payloads, new seizures, court
//! orders). The daily lapse job loads and saves registers through the same
//! functions. Statements are written with `$N` and bound on SQLite as
//! anonymous `?` (`StoreTx::dialect`), as the upserts are: SQLite binds
//! thousands of numbered parameters quadratically.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use domain::seizure::{Seizure, SeizureRules, UnitSeizures};

use super::{OrderJob, Payload, SeizureRow};
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
#[derive(Debug, Clone)]
pub struct Unit {
    /// The register as loaded.
    before: UnitSeizures,
    /// The register now: what [`StoreTx::save_units`] writes.
    pub now: UnitSeizures,
    /// The partner of each seizure (by order number); a new seizure's
    /// partner is added here before it is saved.
    pub partners: HashMap<String, String>,
}

/// An order applied under a number before: its content hash and the receipt text kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownOrder {
    /// Hash of its content.
    pub content_sha256: String,
    /// The receipt text kept with it.
    pub receipt_text: String,
}

/// A `court_orders` row to insert: the order, its payload, and its receipt.
#[derive(Debug, Clone)]
pub struct NewOrderRow<'a> {
    /// The order.
    pub job: &'a OrderJob<'a>,
    /// Its payload in the inbox.
    pub inbox_id: i64,
    /// The status code its receipt gives.
    pub receipt_status: &'static str,
    /// The queue position its receipt gives.
    pub queue_position: Option<i64>,
    /// The receipt text, kept and sent again for a repeat.
    pub receipt_text: String,
}

impl StoreTx {
    /// Records the payloads that are not in the inbox yet (multi-row, in the
    /// order the orders are applied, as the per-order path records them); the
    /// inbox id of every job, by job index.
    pub async fn insert_payloads(
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

    /// The orders already applied under the group's numbers, by (partner, number).
    /// One query per partner of the group (usually one), on the (partner, number) index.
    pub async fn known_orders(&mut self, jobs: &[OrderJob<'_>]) -> StoreResult<HashMap<(String, String), KnownOrder>> {
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
                for (number, content_sha256, receipt_text) in rows {
                    known.insert((partner.to_owned(), number), KnownOrder { content_sha256, receipt_text });
                }
            }
        }
        Ok(known)
    }

    /// The registers of the units `numbers` (in any order, repeats allowed).
    pub async fn load_units(&mut self, numbers: &[&str], rules: SeizureRules) -> StoreResult<HashMap<String, Unit>> {
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
    pub async fn save_units(&mut self, units: &HashMap<String, Unit>, now: DateTime<Utc>) -> StoreResult<()> {
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
    pub async fn insert_order_rows(&mut self, rows: &[NewOrderRow<'_>], now: DateTime<Utc>) -> StoreResult<()> {
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
                        .bind(row.receipt_status)
                        .bind(row.queue_position)
                        .bind(&row.receipt_text);
                }
                query.execute(conn).await?;
            });
        }
        Ok(())
    }
}
