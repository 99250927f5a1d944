//! The day reconciliation of configured partners (`connectors::partner::days`):
//! per connector and day, the partner's count, ours before and after a
//! targeted re-read, kept for the connectors page and `warehouse reconcile`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// One day of one connector, reconciled.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DayCheck {
    /// The connector.
    pub connector: String,
    /// The partner's day (`YYYY-MM-DD`, its local time).
    pub day: String,
    /// Keys whose latest version falls on the day, at the partner.
    pub partner_rows: i64,
    /// Ours, before any re-read.
    pub our_rows_before: i64,
    /// Ours, after the re-read (the same when none was needed).
    pub our_rows_after: i64,
    /// Rows the re-read read (0: the day agreed).
    pub reread_rows: i64,
    /// When.
    pub checked_at: DateTime<Utc>,
}

impl DayCheck {
    /// Whether the day still differs after its re-read.
    pub fn differs(&self) -> bool {
        self.partner_rows != self.our_rows_after
    }
}

/// A table a record kind is kept in, for counts by version day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordTable {
    /// `cases`.
    Cases,
    /// `qc_findings`.
    QcFindings,
    /// `evaluations`.
    Evaluations,
    /// `loan_applications`.
    Loans,
    /// `contract_filings`.
    Filings,
}

impl RecordTable {
    fn name(self) -> &'static str {
        match self {
            Self::Cases => "cases",
            Self::QcFindings => "qc_findings",
            Self::Evaluations => "evaluations",
            Self::Loans => "loan_applications",
            Self::Filings => "contract_filings",
        }
    }
}

impl Store {
    /// Records of `source` in `table` by the China-time day of their version,
    /// for versions in `[from, to)`.
    pub async fn count_by_version_day(
        &self,
        table: RecordTable,
        source: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<BTreeMap<NaiveDate, i64>> {
        // The table name is one of five constants.
        let sql = format!(
            "SELECT source_updated_at FROM {} WHERE source = $1 AND source_updated_at >= $2 AND source_updated_at < $3",
            table.name()
        );
        let rows: Vec<(DateTime<Utc>,)> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(source).bind(from).bind(to).fetch_all(pool).await?
        });
        let mut out = BTreeMap::new();
        for (at,) in rows {
            *out.entry(domain::time::local_date(at)).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// The latest day checks, differing days first, then newest (at most `limit`).
    pub async fn day_checks(&self, limit: i64) -> StoreResult<Vec<DayCheck>> {
        let rows: Vec<DayCheck> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT connector, day, partner_rows, our_rows_before, our_rows_after, reread_rows, checked_at \
                 FROM partner_day_checks \
                 ORDER BY CASE WHEN partner_rows <> our_rows_after THEN 0 ELSE 1 END, day DESC, connector LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Saves day checks (replacing those of the same connector and day).
    pub async fn save_day_checks(&self, checks: &[DayCheck]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.save_day_checks(checks).await?;
        tx.commit().await
    }
}

impl StoreTx {
    /// Saves day checks in this transaction.
    pub async fn save_day_checks(&mut self, checks: &[DayCheck]) -> StoreResult<()> {
        for c in checks {
            on_tx!(self, conn => {
                sqlx::query(
                    "INSERT INTO partner_day_checks (connector, day, partner_rows, our_rows_before, our_rows_after, \
                     reread_rows, checked_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (connector, day) DO UPDATE SET partner_rows = excluded.partner_rows, \
                     our_rows_before = excluded.our_rows_before, our_rows_after = excluded.our_rows_after, \
                     reread_rows = excluded.reread_rows, checked_at = excluded.checked_at",
                )
                .bind(&c.connector)
                .bind(&c.day)
                .bind(c.partner_rows)
                .bind(c.our_rows_before)
                .bind(c.our_rows_after)
                .bind(c.reread_rows)
                .bind(c.checked_at)
                .execute(conn)
                .await?;
            });
        }
        Ok(())
    }
}
