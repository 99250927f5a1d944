//! Replaying a quarantined record: the record (as kept, or as fixed by an
//! operator) is validated again by its partner's parser and, if it now
//! passes, written exactly as the poll loop would have written it, with the
//! quarantine entry marked replayed in the same transaction. A record that
//! still fails stays in quarantine, with the new reason returned.

use chrono::{DateTime, Utc};
use domain::seizure::SeizureRules;
use store::quarantine::QuarantineEntry;
use store::{Store, StoreError, UpsertOutcome};

use crate::court_platform::{self, PARTNER_ID};
use crate::lenders::{Bank, parse_gjj_loan};
use crate::poll::{CourtRequest, Record, write_records};
use crate::registry::{RowError, parse_case, parse_evaluation, parse_qc_finding};
use crate::{housing, xmlrows};

/// Why a replay did not write anything.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No such entry.
    #[error("no quarantine entry {0}")]
    NotFound(i64),
    /// It was replayed before.
    #[error("quarantine entry {0} was already replayed")]
    AlreadyReplayed(i64),
    /// The connector it came from has no replay.
    #[error("records from {0:?} cannot be replayed here")]
    UnknownSource(String),
    /// The record still fails validation.
    #[error("the record still fails: {reason_code}: {reason}")]
    StillBad {
        /// Machine-readable reason.
        reason_code: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn still_bad((reason_code, reason): RowError) -> ReplayError {
    ReplayError::StillBad { reason_code, reason }
}

fn json(payload: &[u8]) -> Result<serde_json::Value, ReplayError> {
    serde_json::from_slice(payload).map_err(|e| still_bad(("malformed", format!("not JSON: {e}"))))
}

fn xml_row(payload: &[u8], list: &str, row: &str) -> Result<xmlrows::Fields, ReplayError> {
    let text = std::str::from_utf8(payload).map_err(|_| still_bad(("undecodable", "not UTF-8".into())))?;
    let wrapped = format!("<{list}>{text}</{list}>");
    let parsed = xmlrows::split(&wrapped, list, row).map_err(|e| still_bad(("malformed", e.to_string())))?;
    match parsed.rows.into_iter().next() {
        Some(r) => r.fields.map_err(|e| still_bad(("malformed", e.to_string()))),
        None => Err(still_bad(("malformed", format!("no <{row}> element")))),
    }
}

/// Validates a quarantined record again, as its connector would.
pub fn revalidate(entry: &QuarantineEntry, payload: &[u8]) -> Result<Record, ReplayError> {
    let source = entry.source.as_str();
    match source {
        "registry" => parse_case(&json(payload)?).map(|(c, flaws)| Record::Case(Box::new(c), flaws)).map_err(still_bad),
        "registry-qc" => parse_qc_finding(&json(payload)?).map(|(q, flaws)| Record::Qc(q, flaws)).map_err(still_bad),
        "registry-evaluations" => {
            parse_evaluation(&json(payload)?).map(|(e, flaws)| Record::Evaluation(e, flaws)).map_err(still_bad)
        }
        "housing" => {
            let line = encoding_rs::GBK
                .decode_without_bom_handling_and_without_replacement(payload)
                .or_else(|| std::str::from_utf8(payload).ok().map(std::borrow::Cow::Borrowed))
                .ok_or_else(|| still_bad(("undecodable", "the line is neither GBK nor UTF-8".into())))?;
            // The file name, then where in it: `export-20240101.csv 第 2 行` (or `line 2`, as kept before).
            let file = entry.position.split_whitespace().next().unwrap_or_default();
            housing::parse_filing(&line, file).map(|(f, flaws)| Record::Filing(f, flaws)).map_err(still_bad)
        }
        "provident_fund" => {
            parse_gjj_loan(&xml_row(payload, "LoanList", "Loan")?).map(|(l, f)| Record::Loan(l, f)).map_err(still_bad)
        }
        "court_platform" => {
            let fields = xml_row(payload, "KZQQList", "KZQQ")?;
            let order = court_platform::parse_request(&fields).map_err(still_bad)?;
            let seq = fields.get("@seq").and_then(|s| s.parse().ok()).unwrap_or(0);
            Ok(Record::Court(Box::new(CourtRequest {
                partner_id: PARTNER_ID.to_owned(),
                order,
                content_sha256: court_platform::content_hash(&fields),
                raw: payload.to_vec(),
                seq,
            })))
        }
        bank if bank.starts_with("bank:") => {
            let id = &bank["bank:".len()..];
            Bank::new(id, "", "").parse_item(&json(payload)?).map(|(l, f)| Record::Loan(l, f)).map_err(still_bad)
        }
        other => match crate::partner::mapping_of(other) {
            // A configured partner's row (kept as the JSON of its columns or record).
            Some(mapping) => mapping.record(&json(payload)?).map_err(still_bad),
            None => Err(ReplayError::UnknownSource(other.to_owned())),
        },
    }
}

/// Validates raw bytes as one record of `source` (`registry`, `registry-qc`,
/// `registry-evaluations`, `housing`, `provident_fund`, `court_platform`,
/// `bank:ID`), exactly as a replay would: the entry point of the partner
/// decoders for fuzzing and property tests.
pub fn validate_record(source: &str, payload: &[u8]) -> Result<Record, ReplayError> {
    let entry = QuarantineEntry {
        id: 0,
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        source: source.to_owned(),
        position: "export-20240101.csv 第 2 行".to_owned(),
        reason_code: String::new(),
        reason: String::new(),
        payload: Vec::new(),
        replayed_at: None,
        replay_outcome: None,
    };
    revalidate(&entry, payload)
}

/// Replays entry `id`, with `fixed` in place of the kept record if given.
pub async fn replay(
    store: &Store,
    id: i64,
    fixed: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<UpsertOutcome, ReplayError> {
    let entry = store.get_quarantine(id).await?.ok_or(ReplayError::NotFound(id))?;
    if entry.replayed_at.is_some() {
        return Err(ReplayError::AlreadyReplayed(id));
    }
    let record = revalidate(&entry, fixed.unwrap_or(&entry.payload))?;
    let mut tx = store.begin().await?;
    let outcomes = write_records(&mut tx, &[&record], SeizureRules::default(), now).await?;
    let outcome = outcomes.into_iter().next().unwrap_or(UpsertOutcome::Unchanged);
    let label = match outcome {
        UpsertOutcome::Inserted => "inserted",
        UpsertOutcome::Updated => "updated",
        UpsertOutcome::Unchanged => "unchanged",
        UpsertOutcome::Stale => "stale",
    };
    let note = if fixed.is_some() { format!("{label} (fixed record)") } else { label.to_owned() };
    tx.mark_replayed(id, &note, now).await?;
    tx.commit().await?;
    Ok(outcome)
}
