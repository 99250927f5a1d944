//! Linking and reconciliation. Partner records are linked to registry cases
//! by the numbers they share (contract filing ↔ pre-sale notice case by
//! filing number, loan application ↔ mortgage case by loan id, court request
//! ↔ seizure by request number); what does not link, or links to something
//! it must not, is an anomaly. Each anomaly is recorded once (by kind and
//! subject) and kept; the daily reconciliation counts, per partner, what was
//! submitted, registered, refused and is still missing after the limit.

use chrono::{DateTime, NaiveDate, Utc};
use domain::time::{local_date, local_day_end};

use crate::{Store, StoreResult, on_pool, on_tx};

/// Anomaly kinds.
pub mod kind {
    /// A lender's application that no registry case cites and that names no registry case, past the limit.
    pub const ORPHAN_LOAN: &str = "orphan_loan";
    /// A registry case citing a loan application no lender delivered.
    pub const UNKNOWN_LOAN: &str = "unknown_loan";
    /// A registry case citing a contract filing the housing authority never filed.
    pub const UNKNOWN_FILING: &str = "unknown_filing";
    /// A transfer or mortgage recorded while its unit was seized.
    pub const RECORDED_ON_SEIZED_UNIT: &str = "recorded_on_seized_unit";
}

/// One recorded anomaly.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Anomaly {
    /// See [`kind`].
    pub kind: String,
    /// The partner whose data it concerns (`registry`, `bank:icbc`, `housing` …).
    pub partner: String,
    /// The record it is about (a loan id, a case number).
    pub subject: String,
    /// What was found.
    pub detail: String,
    /// When it was first found.
    pub detected_at: DateTime<Utc>,
}

/// One partner's reconciliation for a day (cumulative up to that day).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Reconciliation {
    /// The day.
    pub day: NaiveDate,
    /// The partner.
    pub partner: String,
    /// Records the partner submitted up to the day.
    pub submitted: i64,
    /// Of those, linked to a recorded registry case (court: applied).
    pub registered: i64,
    /// Of those, linked to a refused or withdrawn case (court: refused).
    pub refused: i64,
    /// Of those, with no registry case past the committed limit (court: feedback not acknowledged).
    pub missing: i64,
}

/// What a reconciliation run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Anomalies seen in this run (new or already recorded).
    pub found: usize,
    /// Of those, newly recorded.
    pub new: usize,
    /// Partners reconciled.
    pub partners: Vec<Reconciliation>,
}

type SeizedRow = (String, Option<String>, DateTime<Utc>, String, DateTime<Utc>, NaiveDate, Option<NaiveDate>);

impl Store {
    /// Runs a query selecting two text columns with one time bound (`$1`).
    async fn pairs_before(&self, sql: &'static str, bound: DateTime<Utc>) -> StoreResult<Vec<(String, String)>> {
        let rows: Vec<(String, String)> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(bound).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Finds the anomalies and reconciles every partner as of the end of `day`
    /// (China time). `cutoff`: records submitted before it have had their
    /// committed limit (the caller works it out in working days).
    pub async fn reconcile(
        &self,
        day: NaiveDate,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<ReconcileReport> {
        let day_end = local_day_end(day);
        let mut found: Vec<(&'static str, String, String, String)> = Vec::new();

        let orphans = self
            .pairs_before(
                "SELECT l.source, l.external_id FROM loan_applications l WHERE l.applied_at < $1 \
                 AND l.registry_case_no IS NULL AND l.status NOT IN ('withdrawn', 'rejected') \
                 AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.loan_ref = l.external_id) ORDER BY l.external_id",
                cutoff,
            )
            .await?;
        for (source, loan) in orphans {
            let detail = format!("loan application {loan} from {source} has no registry case after the limit");
            found.push((kind::ORPHAN_LOAN, source, loan, detail));
        }

        let unknown_loans = self.pairs_before(
                "SELECT c.external_id, c.loan_ref FROM cases c WHERE c.loan_ref IS NOT NULL AND c.submitted_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM loan_applications l WHERE l.external_id = c.loan_ref) ORDER BY c.external_id",
            cutoff,
        )
        .await?;
        for (case, loan) in unknown_loans {
            let detail = format!("case {case} cites loan application {loan}, which no lender delivered");
            found.push((kind::UNKNOWN_LOAN, "registry".to_owned(), case, detail));
        }

        let unknown_filings = self.pairs_before(
                "SELECT c.external_id, c.filing_no FROM cases c WHERE c.filing_no IS NOT NULL AND c.submitted_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM contract_filings f WHERE f.filing_no = c.filing_no) ORDER BY c.external_id",
            cutoff,
        )
        .await?;
        for (case, filing) in unknown_filings {
            let detail = format!("case {case} cites contract filing {filing}, which the housing authority never filed");
            found.push((kind::UNKNOWN_FILING, "registry".to_owned(), case, detail));
        }

        // Transfers and mortgages recorded on a unit whose seizure had been served and had not ended.
        let seized: Vec<SeizedRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT c.external_id, c.unit_no, c.recorded_at, s.order_no, s.served_at, s.end_date, s.ended_on \
                 FROM cases c JOIN seizures s ON s.unit_no = c.unit_no \
                 WHERE c.recorded_at IS NOT NULL AND c.recorded_at < $1 \
                 AND c.business_type IN ('first_hand_transfer', 'second_hand_transfer', 'mortgage') \
                 ORDER BY c.external_id, s.served_at",
            )
            .bind(day_end)
            .fetch_all(pool)
            .await?
        });
        let mut last_case = String::new();
        for (case, unit, recorded_at, order_no, served_at, end_date, ended_on) in seized {
            let recorded_on = local_date(recorded_at);
            let in_force_until = ended_on.map_or(end_date, |e| e.min(end_date));
            if served_at < recorded_at && recorded_on <= in_force_until && case != last_case {
                let detail = format!(
                    "case {case} was recorded on {recorded_on} on unit {} while seizure {order_no} was in force",
                    unit.unwrap_or_default()
                );
                found.push((kind::RECORDED_ON_SEIZED_UNIT, "registry".to_owned(), case.clone(), detail));
                last_case = case;
            }
        }

        let mut tx = self.begin().await?;
        let mut new = 0;
        for (kind, partner, subject, detail) in &found {
            let inserted = on_tx!(tx, conn => {
                sqlx::query(
                    "INSERT INTO anomalies (kind, partner, subject, detail, detected_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (kind, subject) DO NOTHING",
                )
                .bind(*kind)
                .bind(partner)
                .bind(subject)
                .bind(detail)
                .bind(now)
                .execute(conn)
                .await?
                .rows_affected()
            });
            new += usize::try_from(inserted).unwrap_or(0);
        }

        let mut partners: Vec<Reconciliation> = on_tx!(tx, conn => {
            sqlx::query_as(
                "SELECT $1 AS day, l.source AS partner, COUNT(*) AS submitted, \
                 COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM cases c WHERE c.loan_ref = l.external_id AND c.recorded_at IS NOT NULL) THEN 1 ELSE 0 END), 0) AS registered, \
                 COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM cases c WHERE c.loan_ref = l.external_id AND c.status IN ('BYSL', 'CH')) THEN 1 ELSE 0 END), 0) AS refused, \
                 COALESCE(SUM(CASE WHEN l.applied_at < $3 AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.loan_ref = l.external_id) THEN 1 ELSE 0 END), 0) AS missing \
                 FROM loan_applications l WHERE l.applied_at < $2 GROUP BY l.source \
                 UNION ALL \
                 SELECT $1, f.source, COUNT(*), \
                 COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM cases c WHERE c.filing_no = f.filing_no AND c.recorded_at IS NOT NULL) THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM cases c WHERE c.filing_no = f.filing_no AND c.status IN ('BYSL', 'CH')) THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN f.filed_at < $3 AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.filing_no = f.filing_no) THEN 1 ELSE 0 END), 0) \
                 FROM contract_filings f WHERE f.filed_at < $2 GROUP BY f.source \
                 UNION ALL \
                 SELECT $1, o.partner_id, COUNT(*), \
                 COALESCE(SUM(CASE WHEN o.result IN (1, 2) THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN o.result = 3 THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN o.acked_at IS NULL THEN 1 ELSE 0 END), 0) \
                 FROM court_feedback_outbox o WHERE o.created_at < $2 GROUP BY o.partner_id",
            )
            .bind(day)
            .bind(day_end)
            .bind(cutoff)
            .fetch_all(conn)
            .await?
        });
        partners.sort_by(|a, b| a.partner.cmp(&b.partner));
        for r in &partners {
            on_tx!(tx, conn => {
                sqlx::query(
                    "INSERT INTO reconciliation (day, partner, submitted, registered, refused, missing, computed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (day, partner) DO UPDATE SET \
                     submitted = excluded.submitted, registered = excluded.registered, refused = excluded.refused, \
                     missing = excluded.missing, computed_at = excluded.computed_at",
                )
                .bind(r.day)
                .bind(&r.partner)
                .bind(r.submitted)
                .bind(r.registered)
                .bind(r.refused)
                .bind(r.missing)
                .bind(now)
                .execute(conn)
                .await?;
            });
        }
        tx.commit().await?;
        Ok(ReconcileReport { found: found.len(), new, partners })
    }

    /// Recorded anomalies, by kind and subject; `kind` filters.
    pub async fn anomalies(&self, kind: Option<&str>) -> StoreResult<Vec<Anomaly>> {
        let rows: Vec<Anomaly> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT kind, partner, subject, detail, detected_at FROM anomalies \
                 WHERE ($1 IS NULL OR kind = $1) ORDER BY kind, subject",
            )
            .bind(kind)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
