//! Alerts: one row per kind and subject holding the state the last evaluation
//! left it in (`firing` or `resolved`), and the state the webhook was last
//! told (`notified_state`). An evaluation ([`Store::record_alert_evaluation`])
//! replaces the state of the kinds it evaluated in one transaction; delivery
//! works like an outbox: every alert whose state the webhook has not yet
//! acknowledged is pending ([`Store::pending_alert_notifications`]) until a
//! delivery succeeds ([`Store::record_alert_delivery`]), so a change is sent at
//! least once, and an alert that stays firing is not sent again.

use chrono::{DateTime, Utc};

use crate::{Store, StoreResult, on_pool, on_tx};

/// Firing or resolved.
pub const FIRING: &str = "firing";
/// No longer firing.
pub const RESOLVED: &str = "resolved";

/// What an evaluation found firing.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The rule (`online_rate_below_trajectory`, `seizures_expiring`, `connector_lag`).
    pub kind: String,
    /// What it is about within the kind (a connector name; empty when the kind has one subject).
    pub subject: String,
    /// `warning` or `critical`.
    pub severity: String,
    /// One line for people, in Simplified Chinese.
    pub summary: String,
    /// The measured value.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Alert {
    /// The rule.
    pub kind: String,
    /// What it is about.
    pub subject: String,
    /// [`FIRING`] or [`RESOLVED`].
    pub state: String,
    /// `warning` or `critical`.
    pub severity: String,
    /// One line for people.
    pub summary: String,
    /// The measured value at the last evaluation that saw it firing.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// The warehouse snapshot of that evaluation.
    pub snapshot_id: Option<String>,
    /// When it entered its state.
    pub since: DateTime<Utc>,
    /// The last evaluation.
    pub evaluated_at: DateTime<Utc>,
    /// The state the webhook last acknowledged.
    pub notified_state: Option<String>,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Why the last delivery failed.
    pub last_error: Option<String>,
}

impl Alert {
    /// True while firing.
    pub fn is_firing(&self) -> bool {
        self.state == FIRING
    }
}

/// What an evaluation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertChanges {
    /// Alerts that started firing (kind, subject).
    pub fired: Vec<(String, String)>,
    /// Alerts that stopped.
    pub resolved: Vec<(String, String)>,
    /// Alerts that were firing and still are.
    pub continuing: usize,
}

/// The columns of [`Alert`], for `concat!` (sqlx takes literal SQL only).
macro_rules! alert_columns {
    () => {
        "kind, subject, state, severity, summary, value, threshold, snapshot_id, since, evaluated_at, notified_state, \
         attempts, last_error"
    };
}

impl Store {
    /// Records one evaluation of the rules `kinds`: every observation fires
    /// (or goes on firing, with its new value and summary), and every alert of
    /// those kinds that was firing and is not observed resolves. Kinds not in
    /// `kinds` are left as they are (a rule that could not be evaluated keeps
    /// its last state).
    pub async fn record_alert_evaluation(
        &self,
        kinds: &[&str],
        observed: &[Observation],
        snapshot_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<AlertChanges> {
        let mut changes = AlertChanges::default();
        let mut tx = self.begin().await?;
        let firing: Vec<(String, String)> = on_tx!(tx, conn => {
            sqlx::query_as("SELECT kind, subject FROM alerts WHERE state = 'firing'").fetch_all(&mut *conn).await?
        });
        for o in observed {
            let key = (o.kind.clone(), o.subject.clone());
            if firing.contains(&key) {
                changes.continuing += 1;
            } else {
                changes.fired.push(key);
            }
            on_tx!(tx, conn => {
                sqlx::query(
                    "INSERT INTO alerts (kind, subject, state, severity, summary, value, threshold, snapshot_id, since, evaluated_at) \
                     VALUES ($1, $2, 'firing', $3, $4, $5, $6, $7, $8, $8) \
                     ON CONFLICT (kind, subject) DO UPDATE SET \
                       since = CASE WHEN alerts.state = 'firing' THEN alerts.since ELSE excluded.since END, \
                       state = 'firing', severity = excluded.severity, summary = excluded.summary, value = excluded.value, \
                       threshold = excluded.threshold, snapshot_id = excluded.snapshot_id, evaluated_at = excluded.evaluated_at",
                )
                .bind(&o.kind)
                .bind(&o.subject)
                .bind(&o.severity)
                .bind(&o.summary)
                .bind(o.value)
                .bind(o.threshold)
                .bind(snapshot_id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            });
        }
        for (kind, subject) in firing {
            let evaluated = kinds.contains(&kind.as_str());
            if !evaluated || observed.iter().any(|o| o.kind == kind && o.subject == subject) {
                continue;
            }
            on_tx!(tx, conn => {
                sqlx::query(
                    "UPDATE alerts SET state = 'resolved', since = $1, evaluated_at = $1, snapshot_id = $2 \
                     WHERE kind = $3 AND subject = $4",
                )
                .bind(now)
                .bind(snapshot_id)
                .bind(&kind)
                .bind(&subject)
                .execute(&mut *conn)
                .await?;
            });
            changes.resolved.push((kind, subject));
        }
        tx.commit().await?;
        Ok(changes)
    }

    /// Every alert, firing ones first, then by kind and subject.
    pub async fn alerts(&self) -> StoreResult<Vec<Alert>> {
        let rows: Vec<Alert> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ", alert_columns!(),
                " FROM alerts ORDER BY CASE WHEN state = 'firing' THEN 0 ELSE 1 END, kind, subject"
            ))
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Alerts whose current state the webhook has not acknowledged: firing
    /// ones never sent or last sent as resolved, and resolved ones last sent
    /// as firing (an alert that fired and resolved between two deliveries is
    /// not worth a message).
    pub async fn pending_alert_notifications(&self) -> StoreResult<Vec<Alert>> {
        let rows: Vec<Alert> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ", alert_columns!(),
                " FROM alerts WHERE (state = 'firing' AND (notified_state IS NULL OR notified_state <> 'firing')) \
                 OR (state = 'resolved' AND notified_state = 'firing') ORDER BY since, kind, subject"
            ))
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Records a delivery attempt of `alerts` (as [`Store::pending_alert_notifications`]
    /// returned them): on success (`error` `None`) each is marked as sent in
    /// the state it was sent in; either way the attempt is counted.
    pub async fn record_alert_delivery(
        &self,
        alerts: &[Alert],
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for a in alerts {
            on_tx!(tx, conn => {
                sqlx::query(
                    "UPDATE alerts SET attempts = attempts + 1, last_attempt_at = $1, last_error = $2, \
                     notified_state = CASE WHEN $3 THEN $4 ELSE notified_state END WHERE kind = $5 AND subject = $6",
                )
                .bind(now)
                .bind(error)
                .bind(error.is_none())
                .bind(&a.state)
                .bind(&a.kind)
                .bind(&a.subject)
                .execute(&mut *conn)
                .await?;
            });
        }
        tx.commit().await
    }
}
