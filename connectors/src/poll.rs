//! The shared poll loop. A partner hook ([`Source`]) turns one page of its
//! feed into records and bad rows; [`poll_once`] does everything else the
//! same way for every partner: each page is written in one transaction with
//! the cursor that follows it (so the cursor never runs ahead of the data,
//! nor behind it), bad rows go to quarantine with the raw record and their
//! position and the rest of the page goes on, and a failed fetch leaves the
//! cursor where it was and marks the connector degraded.

use std::future::Future;

use chrono::{DateTime, Utc};
use store::cases::CaseRecord;
use store::connector_state::ConnectorState;
use store::quarantine::NewQuarantine;
use store::records::{Evaluation, QcFinding};
use store::{Store, StoreError, UpsertOutcome};

use crate::fetch::FetchError;

/// A record a partner delivered, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A registration case.
    Case(Box<CaseRecord>),
    /// A QC finding.
    Qc(QcFinding),
    /// A satisfaction evaluation.
    Evaluation(Evaluation),
}

impl Record {
    fn updated_at(&self) -> DateTime<Utc> {
        match self {
            Self::Case(c) => c.source_updated_at,
            Self::Qc(q) => q.source_updated_at,
            Self::Evaluation(e) => e.source_updated_at,
        }
    }
}

/// A row that could not be taken, kept for inspection and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Where it was in the source (cursor and index).
    pub position: String,
    /// `missing_field`, `bad_identifier`, `unknown_code`, `malformed`, `undecodable` …
    pub reason_code: &'static str,
    /// What is wrong, naming the field.
    pub reason: String,
    /// The row as received.
    pub raw: Vec<u8>,
}

/// One page of a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Its rows, in feed order.
    pub rows: Vec<Result<Record, BadRow>>,
    /// Where the next page starts.
    pub next_cursor: String,
    /// Whether more pages follow now.
    pub has_more: bool,
}

/// Why a page could not be read at all (the cursor stays where it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// The partner could not be reached or refused.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The page arrived but is not a page (broken JSON, a missing envelope field).
    #[error("unreadable page: {0}")]
    Unreadable(String),
}

/// A partner hook: fetches and validates one page after `cursor`.
pub trait Source: Send + Sync {
    /// The connector's name (its state and quarantine entries carry it).
    fn name(&self) -> &str;
    /// The page after `cursor` (`None`: the start of the feed).
    fn fetch_page(&self, cursor: Option<&str>) -> impl Future<Output = Result<Page, PageError>> + Send;
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Pages written.
    pub pages: u64,
    /// New rows.
    pub inserted: u64,
    /// Rows replaced by a newer version.
    pub updated: u64,
    /// Re-deliveries of a version already held.
    pub unchanged: u64,
    /// Older versions arriving after newer ones (ignored).
    pub stale: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// The fetch error that ended the run early, if any (the connector is then degraded).
    pub error: Option<String>,
}

impl Outcome {
    /// Rows read, good and bad.
    pub fn rows(&self) -> u64 {
        self.inserted + self.updated + self.unchanged + self.stale + self.quarantined
    }
}

/// Runs the connector once, from its saved cursor to the end of the feed as it
/// was when the run started (at most `max_pages` pages). Store errors end the
/// run with an error; fetch errors end it with [`Outcome::error`] set and the
/// connector marked degraded, the cursor left at the last committed page.
pub async fn poll_once(
    source: &impl Source,
    store: &Store,
    now: DateTime<Utc>,
    max_pages: u64,
) -> Result<Outcome, StoreError> {
    let name = source.name().to_owned();
    let mut state: ConnectorState = store.connector_state(&name).await?;
    state.last_run_at = Some(now);
    let mut outcome = Outcome::default();
    while outcome.pages < max_pages {
        let page = match source.fetch_page(state.cursor.as_deref()).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(message = "connector degraded", connector = %name, %error);
                state.status = "degraded".into();
                state.last_error = Some(error.to_string());
                state.errors_total += 1;
                let mut tx = store.begin().await?;
                tx.save_connector_state(&state, now).await?;
                tx.commit().await?;
                outcome.error = Some(error.to_string());
                return Ok(outcome);
            }
        };
        let mut tx = store.begin().await?;
        for row in &page.rows {
            match row {
                Ok(record) => {
                    let result = match record {
                        Record::Case(c) => tx.upsert_case(c, now).await?,
                        Record::Qc(q) => tx.upsert_qc_finding(q, now).await?,
                        Record::Evaluation(e) => tx.upsert_evaluation(e, now).await?,
                    };
                    match result {
                        UpsertOutcome::Inserted => outcome.inserted += 1,
                        UpsertOutcome::Updated => outcome.updated += 1,
                        UpsertOutcome::Unchanged => outcome.unchanged += 1,
                        UpsertOutcome::Stale => outcome.stale += 1,
                    }
                    let updated = record.updated_at();
                    if state.source_watermark.is_none_or(|w| updated > w) {
                        state.source_watermark = Some(updated);
                    }
                    state.records_total += 1;
                }
                Err(bad) => {
                    let entry = NewQuarantine {
                        source: &name,
                        position: &bad.position,
                        reason_code: bad.reason_code,
                        reason: &bad.reason,
                        payload: &bad.raw,
                    };
                    tx.quarantine(&entry, now).await?;
                    outcome.quarantined += 1;
                    state.quarantined_total += 1;
                }
            }
        }
        state.cursor = Some(page.next_cursor.clone());
        tx.save_connector_state(&state, now).await?;
        tx.commit().await?;
        outcome.pages += 1;
        if !page.has_more {
            break;
        }
    }
    state.status = "ok".into();
    state.last_error = None;
    state.last_success_at = Some(now);
    let mut tx = store.begin().await?;
    tx.save_connector_state(&state, now).await?;
    tx.commit().await?;
    Ok(outcome)
}
