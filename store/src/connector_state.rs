//! Connector state: the cursor and the health counters of each connector.
//!
//! The cursor is saved through the same [`StoreTx`] as the batch it covers,
//! so it can never run ahead of the data (nor behind it).

use chrono::{DateTime, Utc};

use crate::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// A connector's persisted state.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectorState {
    /// Connector name.
    pub connector: String,
    /// Opaque cursor: where the next run resumes.
    pub cursor: Option<String>,
    /// `never_run`, `ok` or `degraded`.
    pub status: String,
    /// Start of the last run.
    pub last_run_at: Option<DateTime<Utc>>,
    /// End of the last successful run.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last error, if the last run failed.
    pub last_error: Option<String>,
    /// The source's newest change time covered by the cursor.
    pub source_watermark: Option<DateTime<Utc>>,
    /// Records written, all runs.
    pub records_total: i64,
    /// Failed runs, all time.
    pub errors_total: i64,
    /// Records quarantined, all runs.
    pub quarantined_total: i64,
    /// Rows read by the last run, good and bad.
    pub last_run_rows: i64,
    /// How long the last run took, in milliseconds.
    pub last_run_millis: i64,
}

impl ConnectorState {
    /// Rows per second of the last run (0 when it read nothing).
    pub fn last_run_rate(&self) -> f64 {
        if self.last_run_millis <= 0 {
            return 0.0;
        }
        self.last_run_rows as f64 * 1000.0 / self.last_run_millis as f64
    }

    /// How far the data lags behind `now`: the age of the newest change
    /// covered by the cursor (`None` before the first record).
    pub fn lag(&self, now: DateTime<Utc>) -> Option<chrono::TimeDelta> {
        self.source_watermark.map(|w| now - w)
    }
}

impl ConnectorState {
    /// The state of a connector that has never run.
    pub fn new(connector: &str) -> Self {
        Self {
            connector: connector.to_owned(),
            cursor: None,
            status: "never_run".to_owned(),
            last_run_at: None,
            last_success_at: None,
            last_error: None,
            source_watermark: None,
            records_total: 0,
            errors_total: 0,
            quarantined_total: 0,
            last_run_rows: 0,
            last_run_millis: 0,
        }
    }
}

/// The state columns, named as [`ConnectorState`]'s fields, followed by `$tail`.
macro_rules! select_state {
    ($tail:literal) => {
        concat!(
            "SELECT connector, cursor, status, last_run_at, last_success_at, last_error, source_watermark, ",
            "records_total, errors_total, quarantined_total, last_run_rows, last_run_millis FROM connector_state",
            $tail
        )
    };
}

impl StoreTx {
    /// Writes a connector's state (insert or replace) as part of this transaction.
    pub async fn save_connector_state(&mut self, s: &ConnectorState, now: DateTime<Utc>) -> StoreResult<()> {
        on_tx!(self, conn => {
            sqlx::query(
                "INSERT INTO connector_state (connector, cursor, status, last_run_at, last_success_at, last_error, \
                 source_watermark, records_total, errors_total, quarantined_total, last_run_rows, last_run_millis, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (connector) DO UPDATE SET cursor = excluded.cursor, status = excluded.status, \
                 last_run_at = excluded.last_run_at, last_success_at = excluded.last_success_at, \
                 last_error = excluded.last_error, source_watermark = excluded.source_watermark, \
                 records_total = excluded.records_total, errors_total = excluded.errors_total, \
                 quarantined_total = excluded.quarantined_total, last_run_rows = excluded.last_run_rows, \
                 last_run_millis = excluded.last_run_millis, updated_at = excluded.updated_at",
            )
            .bind(&s.connector)
            .bind(&s.cursor)
            .bind(&s.status)
            .bind(s.last_run_at)
            .bind(s.last_success_at)
            .bind(&s.last_error)
            .bind(s.source_watermark)
            .bind(s.records_total)
            .bind(s.errors_total)
            .bind(s.quarantined_total)
            .bind(s.last_run_rows)
            .bind(s.last_run_millis)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// A connector's saved cursor, locking its state row until this
    /// transaction ends (so two runs of one connector cannot both write
    /// after the same cursor). `None` before the first page.
    pub async fn lock_connector_cursor(&mut self, connector: &str) -> StoreResult<Option<String>> {
        let row: Option<(Option<String>,)> = on_tx!(self, conn => {
            sqlx::query_as("UPDATE connector_state SET updated_at = updated_at WHERE connector = $1 RETURNING cursor")
                .bind(connector)
                .fetch_optional(conn)
                .await?
        });
        Ok(row.and_then(|(cursor,)| cursor))
    }

    /// A connector's state read inside this transaction.
    pub async fn connector_state(&mut self, connector: &str) -> StoreResult<ConnectorState> {
        let row: Option<ConnectorState> = on_tx!(self, conn => {
            sqlx::query_as(select_state!(" WHERE connector = $1")).bind(connector).fetch_optional(conn).await?
        });
        Ok(row.unwrap_or_else(|| ConnectorState::new(connector)))
    }
}

impl Store {
    /// A connector's state (a fresh one if it never ran).
    pub async fn connector_state(&self, connector: &str) -> StoreResult<ConnectorState> {
        let row: Option<ConnectorState> = on_pool!(self, pool => {
            sqlx::query_as(select_state!(" WHERE connector = $1")).bind(connector).fetch_optional(pool).await?
        });
        Ok(row.unwrap_or_else(|| ConnectorState::new(connector)))
    }

    /// Every connector's state, by name.
    pub async fn all_connector_states(&self) -> StoreResult<Vec<ConnectorState>> {
        let rows: Vec<ConnectorState> = on_pool!(self, pool => {
            sqlx::query_as(select_state!(" ORDER BY connector")).fetch_all(pool).await?
        });
        Ok(rows)
    }
}

impl StoreTx {
    /// Adds new changes to a connector's arrival history: (hour start, records).
    pub async fn add_arrivals(&mut self, connector: &str, hours: &[(DateTime<Utc>, i64)]) -> StoreResult<()> {
        for (hour, records) in hours {
            on_tx!(self, conn => {
                sqlx::query(
                    "INSERT INTO connector_arrivals (connector, hour_start, records) VALUES ($1, $2, $3) \
                     ON CONFLICT (connector, hour_start) DO UPDATE SET records = connector_arrivals.records + excluded.records",
                )
                .bind(connector)
                .bind(*hour)
                .bind(*records)
                .execute(conn)
                .await?;
            });
        }
        Ok(())
    }
}

impl Store {
    /// The hour of a connector's first recorded arrival (how long its history is).
    pub async fn first_arrival(&self, connector: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let row: Option<(DateTime<Utc>,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT hour_start FROM connector_arrivals WHERE connector = $1 ORDER BY hour_start LIMIT 1")
                .bind(connector)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(at,)| at))
    }

    /// A connector's arrival history from `since` on: (hour start, new changes), oldest first.
    pub async fn arrivals_since(
        &self,
        connector: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(DateTime<Utc>, i64)>> {
        let rows: Vec<(DateTime<Utc>, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT hour_start, records FROM connector_arrivals WHERE connector = $1 AND hour_start >= $2 ORDER BY hour_start",
            )
            .bind(connector)
            .bind(since)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
