//! The shared poll loop. A partner hook ([`Source`]) turns one page of its
//! feed into records and bad rows; [`poll_once`] does everything else the
//! same way for every partner:
//!
//! - each page is written in one transaction with the cursor that follows it
//!   (so the cursor never runs ahead of the data, nor behind it), with a few
//!   multi-row statements per table rather than one per row;
//! - while a page is written the next one is already being fetched;
//! - bad rows go to quarantine with the raw record and their position, and
//!   the rest of the page goes on;
//! - a failed fetch (an outage, a truncated or unreadable body) leaves the
//!   cursor where it was and marks the connector degraded;
//! - the run's upper bound is fixed when it starts: it ends after the page
//!   that reaches records changed after its start, so a busy feed cannot keep
//!   one run going for ever;
//! - court requests go through [`court_orders::apply_in`], the one
//!   path every court order takes, and their feedback is queued in the same
//!   transaction for [`Source::after_run`] to send.

use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, Utc};
use court_orders::{Apply, ApplyOutcome, OrderJob, Payload, Receipt, ReceiptStatus};
use domain::court_order::CourtOrder;
use domain::seizure::SeizureRules;
use domain::time::local_date;
use store::cases::CaseRecord;
use store::connector_state::ConnectorState;
use store::findings::Flaw;
use store::quarantine::NewQuarantine;
use store::records::{ContractFiling, Evaluation, LoanApplication, QcFinding, SourceFile};
use store::{Store, StoreError, StoreTx, UpsertOutcome};

use crate::fetch::FetchError;

/// A court request pulled from the control platform, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourtRequest {
    /// The platform's partner id (court orders are kept per partner).
    pub partner_id: String,
    /// The order it asks for.
    pub order: CourtOrder,
    /// SHA-256 of its content, for idempotency.
    pub content_sha256: String,
    /// The request as received.
    pub raw: Vec<u8>,
    /// Its position in the platform's stream.
    pub seq: i64,
}

/// A record a partner delivered, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A registration case, with the flaws of the fields it was kept despite
    /// (an identifier failing its check, an unknown non-key code): stored as
    /// data-quality findings beside it.
    Case(Box<CaseRecord>, Vec<Flaw>),
    /// A QC finding, with the flaws it was kept despite (an unknown category).
    Qc(QcFinding, Vec<Flaw>),
    /// A satisfaction evaluation, with the flaws it was kept despite (an unknown channel).
    Evaluation(Evaluation, Vec<Flaw>),
    /// A housing contract filing, with the flaws it was kept despite (a buyer's ID failing its check).
    Filing(ContractFiling, Vec<Flaw>),
    /// A bank or provident-fund loan application, with the flaws it was kept
    /// despite (a borrower's ID failing its check).
    Loan(LoanApplication, Vec<Flaw>),
    /// A court request from the control platform.
    Court(Box<CourtRequest>),
}

impl Record {
    /// The source's version (change time) of the record.
    pub fn updated_at(&self) -> DateTime<Utc> {
        match self {
            Self::Case(c, _) => c.source_updated_at,
            Self::Qc(q, _) => q.source_updated_at,
            Self::Evaluation(e, _) => e.source_updated_at,
            Self::Filing(f, _) => f.source_updated_at,
            Self::Loan(l, _) => l.source_updated_at,
            Self::Court(r) => r.order.served_at,
        }
    }
}

/// A row that could not be taken, kept for inspection and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Where it was in the source (cursor and index, file and line).
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
    /// The file the page is, when a feed delivers whole files: recorded with
    /// the page, so a file is loaded exactly once.
    pub file: Option<SourceFile>,
    /// Rows to mark as read at the partner once the page is committed (an
    /// exchange table's sync flag): [`Source::after_page`] gets them.
    pub marks: Vec<Mark>,
    /// Records the partner deleted (an operation column's `D`): written as
    /// ended (withdrawn, cancelled) with the page, and audited in its transaction.
    pub ended: Vec<Ended>,
}

impl Page {
    /// A page of `rows` with the cursor after it.
    pub fn new(rows: Vec<Result<Record, BadRow>>, next_cursor: String, has_more: bool) -> Self {
        Self { rows, next_cursor, has_more, file: None, marks: Vec::new(), ended: Vec::new() }
    }
}

/// A partner row read on a page, to be marked as read (or as refused, with
/// the reason) at the partner after the page is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The row's key, as text.
    pub key: String,
    /// Its version (update time) as read, as text: the mark names it, so a
    /// row the partner re-wrote since is left pending and read again.
    pub version: String,
    /// Why it went to quarantine, if it did.
    pub error: Option<String>,
}

/// A record the partner deleted, ended in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// `case`, `bank_loan` …
    pub kind: &'static str,
    /// The record's key.
    pub key: String,
    /// Where the delete was read (in words).
    pub position: String,
}

/// Why a page could not be read at all (the cursor stays where it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// The partner could not be reached or refused.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The page arrived but is not a page (broken JSON, a missing envelope
    /// field, a file whose hash or row count does not match its listing).
    #[error("unreadable page: {0}")]
    Unreadable(String),
}

impl From<crate::xmlrows::XmlListError> for PageError {
    fn from(error: crate::xmlrows::XmlListError) -> Self {
        Self::Unreadable(error.to_string())
    }
}

impl PageError {
    /// Names where an unreadable page came from (its URL or feed); a fetch error already does.
    pub fn from_where(self, place: &str) -> Self {
        match self {
            Self::Unreadable(why) => Self::Unreadable(format!("{place}: {why}")),
            other => other,
        }
    }
}

/// A partner hook: fetches and validates one page after `cursor`.
pub trait Source: Send + Sync {
    /// The connector's name (its state and quarantine entries carry it).
    fn name(&self) -> &str;

    /// The page after `cursor` (`None`: the start of the feed).
    fn fetch_page(&self, cursor: Option<&str>) -> impl Future<Output = Result<Page, PageError>> + Send;

    /// Rules for court requests (only the court platform delivers any).
    fn seizure_rules(&self) -> SeizureRules {
        SeizureRules::default()
    }

    /// Work after a page is committed (an exchange table's rows marked as
    /// read); an error degrades the connector and ends the run, and the rows
    /// are read again next time, which the versioned upsert makes harmless.
    fn after_page(&self, _marks: &[Mark]) -> impl Future<Output = Result<(), PageError>> + Send {
        async { Ok(()) }
    }

    /// Work after the pages are written (the court platform sends its feedback
    /// outbox); an error here degrades the connector but loses nothing.
    fn after_run(&self, _store: &Store, _now: DateTime<Utc>) -> impl Future<Output = Result<(), AfterRunError>> + Send {
        async { Ok(()) }
    }
}

/// Why the work after a run's pages did not finish (the next run tries again).
#[derive(Debug, thiserror::Error)]
pub enum AfterRunError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The partner did not take what was sent.
    #[error("feedback for {request_no} not delivered: {reason}")]
    NotDelivered {
        /// The request the feedback answers.
        request_no: String,
        /// The HTTP failure or the partner's answer.
        reason: String,
    },
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
    /// The error that ended the run early, if any (the connector is then degraded).
    pub error: Option<String>,
}

impl Outcome {
    /// Rows read, good and bad.
    pub fn rows(&self) -> u64 {
        self.inserted + self.updated + self.unchanged + self.stale + self.quarantined
    }

    fn count(&mut self, outcome: UpsertOutcome) {
        match outcome {
            UpsertOutcome::Inserted => self.inserted += 1,
            UpsertOutcome::Updated => self.updated += 1,
            UpsertOutcome::Unchanged => self.unchanged += 1,
            UpsertOutcome::Stale => self.stale += 1,
        }
    }
}

/// How a run goes.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    /// The run's clock reading: its upper bound and the time it writes.
    pub now: DateTime<Utc>,
    /// Pages at most.
    pub max_pages: u64,
    /// Called after each page is committed, with the run so far.
    pub progress: &'a (dyn Fn(&Outcome) + Sync),
}

impl std::fmt::Debug for RunOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions").field("now", &self.now).field("max_pages", &self.max_pages).finish()
    }
}

impl<'a> RunOptions<'a> {
    /// A run to the end of the feed without progress reports.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self { now, max_pages: u64::MAX, progress: &|_| {} }
    }
}

/// Runs the connector once, from its saved cursor to the end of the feed as
/// it was when the run started, at most `max_pages` pages (see the module
/// documentation). Store errors end the run with an error; fetch errors end it
/// with [`Outcome::error`] set and the connector degraded, the cursor left at
/// the last committed page.
pub async fn poll_once(source: &impl Source, store: &Store, options: RunOptions<'_>) -> Result<Outcome, StoreError> {
    let RunOptions { now, max_pages, progress } = options;
    let started = Instant::now();
    let name = source.name().to_owned();
    let mut state: ConnectorState = store.connector_state(&name).await?;
    state.last_run_at = Some(now);
    let mut outcome = Outcome::default();
    let mut fetched = if max_pages > 0 { Some(source.fetch_page(state.cursor.as_deref()).await) } else { None };
    while let Some(result) = fetched.take() {
        let page = match result {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(message = "connector degraded", connector = %name, %error);
                outcome.error = Some(error.to_string());
                break;
            }
        };
        let reached_bound = page.rows.iter().any(|r| matches!(r, Ok(record) if record.updated_at() > now));
        let go_on = page.has_more && !reached_bound && outcome.pages + 1 < max_pages;
        let next_cursor = page.next_cursor.clone();
        let write = write_page(source, store, &page, &mut state, &mut outcome, now);
        let written = if go_on {
            let (written, next) = tokio::join!(write, source.fetch_page(Some(&next_cursor)));
            fetched = Some(next);
            written?
        } else {
            write.await?
        };
        progress(&outcome);
        if written
            && !page.marks.is_empty()
            && let Err(error) = source.after_page(&page.marks).await
        {
            tracing::warn!(message = "connector degraded: rows not marked as read", connector = %name, %error);
            outcome.error = Some(error.to_string());
            fetched = None;
        }
        if !written {
            fetched = None;
            outcome.error =
                Some(format!("another run of {name} moved its cursor; this run stopped without writing its page"));
            tracing::warn!(message = "concurrent run of a connector", connector = %name);
            // The other run's state stands: reload it so this run's final save does not undo it.
            let latest = store.connector_state(&name).await?;
            state = ConnectorState { last_run_at: state.last_run_at, ..latest };
        }
    }
    if outcome.error.is_none()
        && let Err(error) = source.after_run(store, now).await
    {
        tracing::warn!(message = "connector degraded after its pages", connector = %name, %error);
        outcome.error = Some(error.to_string());
    }
    match &outcome.error {
        Some(error) => {
            state.status = "degraded".into();
            state.last_error = Some(error.clone());
            state.errors_total += 1;
        }
        None => {
            state.status = "ok".into();
            state.last_error = None;
            state.last_success_at = Some(now);
        }
    }
    state.last_run_rows = i64::try_from(outcome.rows()).unwrap_or(i64::MAX);
    state.last_run_millis = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX).max(1);
    let mut tx = store.begin().await?;
    tx.save_connector_state(&state, now).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Writes one page and the cursor after it in one transaction; `false` (and
/// nothing written) if the saved cursor is no longer the one the page was
/// fetched after, because another run of the connector moved it.
async fn write_page(
    source: &impl Source,
    store: &Store,
    page: &Page,
    state: &mut ConnectorState,
    outcome: &mut Outcome,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let name = source.name();
    let mut records = Vec::with_capacity(page.rows.len());
    let mut tx = store.begin().await?;
    if tx.lock_connector_cursor(name).await? != state.cursor {
        tx.rollback().await?;
        return Ok(false);
    }
    let mut quarantined = 0;
    // New changes (past the watermark the page started from) by the hour of
    // their change time: the feed's arrival rhythm is learned from them.
    let seen = state.source_watermark;
    let mut arrivals: std::collections::BTreeMap<DateTime<Utc>, i64> = std::collections::BTreeMap::new();
    for row in &page.rows {
        match row {
            Ok(record) => {
                let updated = record.updated_at();
                if updated <= now && seen.is_none_or(|w| updated > w) {
                    let hour = updated.timestamp() - updated.timestamp().rem_euclid(3600);
                    if let Some(hour) = DateTime::from_timestamp(hour, 0) {
                        *arrivals.entry(hour).or_default() += 1;
                    }
                }
                if updated <= now && state.source_watermark.is_none_or(|w| updated > w) {
                    state.source_watermark = Some(updated);
                }
                records.push(record);
            }
            Err(bad) => {
                let entry = NewQuarantine {
                    source: name,
                    position: &bad.position,
                    reason_code: bad.reason_code,
                    reason: &bad.reason,
                    payload: &bad.raw,
                };
                tx.quarantine(&entry, now).await?;
                quarantined += 1;
            }
        }
    }
    let mut counts = Outcome { quarantined, ..Outcome::default() };
    for result in write_records(&mut tx, &records, source.seizure_rules(), now).await? {
        counts.count(result);
    }
    if let Some(file) = &page.file {
        tx.record_source_file(file, now).await?;
    }
    if !arrivals.is_empty() {
        tx.add_arrivals(name, &arrivals.into_iter().collect::<Vec<_>>()).await?;
    }
    for ended in &page.ended {
        let subject = format!("{}:{}", ended.kind, ended.key);
        let detail = format!("the partner deleted it ({}); kept as ended", ended.position);
        tx.append_audit(now, name, "record.ended_by_partner", &subject, &detail).await?;
    }
    let mut next_state = state.clone();
    next_state.cursor = Some(page.next_cursor.clone());
    next_state.records_total += i64::try_from(counts.rows() - counts.quarantined).unwrap_or(0);
    next_state.quarantined_total += i64::try_from(counts.quarantined).unwrap_or(0);
    tx.save_connector_state(&next_state, now).await?;
    tx.commit().await?;
    *state = next_state;
    outcome.pages += 1;
    outcome.inserted += counts.inserted;
    outcome.updated += counts.updated;
    outcome.unchanged += counts.unchanged;
    outcome.stale += counts.stale;
    outcome.quarantined += counts.quarantined;
    Ok(true)
}

/// Writes validated records in `tx`: a multi-row versioned upsert per table,
/// court requests through the seizure rules with their feedback queued.
/// What happened to each record, grouped by table (cases, QC findings,
/// evaluations, filings, loans, court requests).
pub async fn write_records(
    tx: &mut StoreTx,
    records: &[&Record],
    rules: SeizureRules,
    now: DateTime<Utc>,
) -> Result<Vec<UpsertOutcome>, StoreError> {
    let mut cases = Vec::new();
    let mut case_flaws: Vec<&[Flaw]> = Vec::new();
    let mut qc = Vec::new();
    let mut qc_flaws: Vec<&[Flaw]> = Vec::new();
    let mut evaluations = Vec::new();
    let mut evaluation_flaws: Vec<&[Flaw]> = Vec::new();
    let mut filings = Vec::new();
    let mut filing_flaws: Vec<&[Flaw]> = Vec::new();
    let mut loans = Vec::new();
    let mut loan_flaws: Vec<&[Flaw]> = Vec::new();
    let mut court = Vec::new();
    for record in records {
        match record {
            Record::Case(c, flaws) => {
                cases.push(c.as_ref().clone());
                case_flaws.push(flaws);
            }
            Record::Qc(q, flaws) => {
                qc.push(q.clone());
                qc_flaws.push(flaws.as_slice());
            }
            Record::Evaluation(e, flaws) => {
                evaluations.push(e.clone());
                evaluation_flaws.push(flaws.as_slice());
            }
            Record::Filing(f, flaws) => {
                filings.push(f.clone());
                filing_flaws.push(flaws.as_slice());
            }
            Record::Loan(l, flaws) => {
                loans.push(l.clone());
                loan_flaws.push(flaws.as_slice());
            }
            Record::Court(r) => court.push(r.as_ref()),
        }
    }
    let mut outcomes = tx.upsert_cases(&cases, now).await?;
    let keys = cases.iter().map(|c| (c.source.as_str(), c.external_id.as_str()));
    record_findings(tx, keys.zip(case_flaws).zip(&outcomes), now).await?;
    let qc_outcomes = tx.upsert_qc_findings(&qc, now).await?;
    let keys = qc.iter().map(|q| (q.source.as_str(), q.external_id.as_str()));
    record_findings(tx, keys.zip(qc_flaws).zip(&qc_outcomes), now).await?;
    outcomes.extend(qc_outcomes);
    let evaluation_outcomes = tx.upsert_evaluations(&evaluations, now).await?;
    let keys = evaluations.iter().map(|e| (e.source.as_str(), e.external_id.as_str()));
    record_findings(tx, keys.zip(evaluation_flaws).zip(&evaluation_outcomes), now).await?;
    outcomes.extend(evaluation_outcomes);
    let filing_outcomes = tx.upsert_contract_filings(&filings, now).await?;
    let keys = filings.iter().map(|f| (f.source.as_str(), f.filing_no.as_str()));
    record_findings(tx, keys.zip(filing_flaws).zip(&filing_outcomes), now).await?;
    outcomes.extend(filing_outcomes);
    let loan_outcomes = tx.upsert_loan_applications(&loans, now).await?;
    let keys = loans.iter().map(|l| (l.source.as_str(), l.external_id.as_str()));
    record_findings(tx, keys.zip(loan_flaws).zip(&loan_outcomes), now).await?;
    outcomes.extend(loan_outcomes);
    outcomes.extend(apply_court_requests(tx, &court, rules, now).await?);
    Ok(outcomes)
}

/// Replaces the data-quality findings of the records whose version was just
/// written (new or newer), given as ((source, key), flaws) with their upsert
/// outcome: a stale or repeated delivery leaves them as they are.
async fn record_findings<'a>(
    tx: &mut StoreTx,
    records: impl Iterator<Item = (((&'a str, &'a str), &'a [Flaw]), &'a UpsertOutcome)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut by_source: std::collections::BTreeMap<&str, Vec<(&str, &[Flaw])>> = std::collections::BTreeMap::new();
    for (((source, key), flaws), outcome) in records {
        let written = matches!(outcome, UpsertOutcome::Inserted | UpsertOutcome::Updated);
        // A new record has no findings to clear: only flawed ones need a write.
        let clears = matches!(outcome, UpsertOutcome::Updated);
        if written && (clears || !flaws.is_empty()) {
            by_source.entry(source).or_default().push((key, flaws));
        }
    }
    for (source, mut written) in by_source {
        // A key written twice in one page: its last version's flaws stand.
        let mut seen = std::collections::HashSet::new();
        written.reverse();
        written.retain(|(key, _)| seen.insert(*key));
        tx.replace_data_findings(source, &written, now).await?;
    }
    Ok(())
}

/// The feedback a receipt gives the platform: (`JG`, `YY`).
fn feedback_of(receipt: &Receipt) -> (i64, String) {
    match receipt.status {
        ReceiptStatus::Queued => (2, String::new()),
        ReceiptStatus::Rejected => (3, receipt.reason.clone().unwrap_or_default()),
        ReceiptStatus::Seized | ReceiptStatus::Renewed | ReceiptStatus::Released | ReceiptStatus::Lapsed => {
            (1, String::new())
        }
    }
}

/// The receipt text kept for a pulled request: its feedback, so that a
/// re-delivered request (answered with the kept text) queues the same feedback.
fn render_feedback(receipt: &Receipt) -> String {
    let (result, reason) = feedback_of(receipt);
    serde_json::json!({ "jg": result, "yy": reason, "djsj": receipt.recorded_at.to_rfc3339() }).to_string()
}

fn parse_feedback(text: &str) -> Option<(i64, String, DateTime<Utc>)> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let recorded = DateTime::parse_from_rfc3339(value["djsj"].as_str()?).ok()?.with_timezone(&Utc);
    Some((value["jg"].as_i64()?, value["yy"].as_str()?.to_owned(), recorded))
}

/// Applies a page's court requests and queues their feedback; an upsert-like
/// outcome per request: applied is `Inserted`, a repeat `Unchanged`, refused `Stale`.
async fn apply_court_requests(
    tx: &mut StoreTx,
    requests: &[&CourtRequest],
    rules: SeizureRules,
    now: DateTime<Utc>,
) -> Result<Vec<UpsertOutcome>, StoreError> {
    let Some(first) = requests.first() else { return Ok(Vec::new()) };
    tx.ensure_partner(&first.partner_id, domain::partner::PartnerKind::Court, "法院网络查控平台", now).await?;
    let jobs: Vec<OrderJob<'_>> = requests
        .iter()
        .map(|r| OrderJob {
            partner_id: &r.partner_id,
            order: &r.order,
            content_sha256: &r.content_sha256,
            payload: Payload::New { channel: "court_platform_pull", content_type: "application/xml", bytes: &r.raw },
        })
        .collect();
    let with = Apply { rules, now, today: local_date(now), render: &render_feedback };
    let results = court_orders::apply_in(tx, &jobs, with).await?;
    let mut outcomes = Vec::with_capacity(requests.len());
    for (request, result) in requests.iter().zip(results) {
        let (outcome, (jg, yy, recorded_at)) = match result? {
            ApplyOutcome::Applied { receipt, .. } => {
                let (jg, yy) = feedback_of(&receipt);
                (UpsertOutcome::Inserted, (jg, yy, receipt.recorded_at))
            }
            ApplyOutcome::Refused { receipt, .. } => {
                let (jg, yy) = feedback_of(&receipt);
                (UpsertOutcome::Stale, (jg, yy, receipt.recorded_at))
            }
            ApplyOutcome::Duplicate { receipt_text } => {
                let feedback = parse_feedback(&receipt_text).unwrap_or((1, String::new(), now));
                (UpsertOutcome::Unchanged, feedback)
            }
            ApplyOutcome::Conflict { order_no } => {
                let reason = format!("request number {order_no} was used before for another request");
                (UpsertOutcome::Stale, (3, reason, now))
            }
        };
        tx.queue_feedback(&request.partner_id, &request.order.order_no, jg, &yy, recorded_at, now).await?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
