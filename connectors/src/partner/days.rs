//! Day reconciliation with a targeted re-read: for an exchange table, the
//! partner's count of keys per day (by the day of their latest version)
//! against ours; a day that differs is read again whole through the same
//! mapping and versioned upsert, and counted again. Kafka Connect's answer
//! to late commits is "use CDC"; ours is to prove, day by day, that nothing
//! was missed, and to fetch what was.
//!
//! Versions within the settle delay (newer than the partner's clock minus
//! `settle_seconds`) are left out on both sides, as a pass leaves them.
//! The comparison assumes the record's version (`gxsj`, `updatedAt` …) is
//! mapped from the day column (its default: the version or cursor column),
//! in China time; rows the re-read still cannot take stay in quarantine and
//! the day stays marked as differing, naming the counts.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use store::Store;
use store::day_checks::{DayCheck, RecordTable};

use super::Partner;
use super::mapping::RecordKind;
use crate::poll::{PageError, Record, write_records};

/// Why a day reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaysError {
    /// The partner's table could not be read.
    #[error(transparent)]
    Partner(#[from] PageError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Not an exchange table.
    #[error("{0} is not an exchange table: day reconciliation reads tables")]
    NotATable(String),
}

fn table_of(kind: RecordKind) -> RecordTable {
    match kind {
        RecordKind::Case => RecordTable::Cases,
        RecordKind::QcFinding => RecordTable::QcFindings,
        RecordKind::Evaluation => RecordTable::Evaluations,
        RecordKind::BankLoan | RecordKind::ProvidentFundLoan => RecordTable::Loans,
    }
}

/// Reconciles the `days` days up to and including `today` (China time): the
/// checks, saved in the store, differing days read again.
pub async fn reconcile_days(
    partner: &Partner,
    store: &Store,
    today: NaiveDate,
    days: u32,
    now: DateTime<Utc>,
) -> Result<Vec<DayCheck>, DaysError> {
    use crate::poll::Source as _;
    let name = partner.name().to_owned();
    let table = partner.table().ok_or_else(|| DaysError::NotATable(name.clone()))?;
    let first = today - TimeDelta::days(i64::from(days.max(1)) - 1);
    let lower = first.and_time(NaiveTime::MIN);
    // Versions within the settle delay are not compared: a pass has not read
    // them yet by design, and a transaction may still be committing them.
    let settle = TimeDelta::seconds(i64::try_from(table.config().settle_seconds).unwrap_or(0));
    let settled = table.clock().await? - settle;
    let upper = (today + TimeDelta::days(1)).and_time(NaiveTime::MIN).min(settled);
    let settled_utc = domain::time::from_china(settled);
    let theirs = table.day_counts(lower, upper).await?;
    let source = partner.mapping().source.clone();
    let kind_table = table_of(partner.mapping().kind);
    let ours_between = |from: NaiveDate, to: NaiveDate| {
        let store = store.clone();
        let source = source.clone();
        async move {
            store
                .count_by_version_day(
                    kind_table,
                    &source,
                    domain::time::from_china(from.and_time(NaiveTime::MIN)),
                    domain::time::from_china(to.and_time(NaiveTime::MIN)).min(settled_utc),
                )
                .await
        }
    };
    let ours = ours_between(first, today + TimeDelta::days(1)).await?;
    let mut checks = Vec::new();
    let mut day = first;
    while day <= today {
        let key = day.format("%Y-%m-%d").to_string();
        let partner_rows = theirs.get(&key).copied().unwrap_or(0);
        let before = ours.get(&day).copied().unwrap_or(0);
        let (mut after, mut reread) = (before, 0);
        if partner_rows != before {
            reread = reread_day(partner, store, day, upper, now).await?;
            after = ours_between(day, day + TimeDelta::days(1)).await?.get(&day).copied().unwrap_or(0);
            tracing::warn!(
                message = "day reconciliation: a day differed and was read again",
                connector = %name, day = %key, partner_rows, ours_before = before, ours_after = after, reread
            );
        }
        checks.push(DayCheck {
            connector: name.clone(),
            day: key,
            partner_rows,
            our_rows_before: before,
            our_rows_after: after,
            reread_rows: reread,
            checked_at: now,
        });
        day += TimeDelta::days(1);
    }
    store.save_day_checks(&checks).await?;
    Ok(checks)
}

/// Reads one day again whole and writes what maps (rows that still do not
/// map stay where they are: in quarantine from their first read). The rows read.
async fn reread_day(
    partner: &Partner,
    store: &Store,
    day: NaiveDate,
    settled: chrono::NaiveDateTime,
    now: DateTime<Utc>,
) -> Result<i64, DaysError> {
    let Some(table) = partner.table() else { return Ok(0) };
    let Some(day_column) = table.day_column().map(str::to_owned) else { return Ok(0) };
    let lower = day.and_time(NaiveTime::MIN);
    let upper = (day + TimeDelta::days(1)).and_time(NaiveTime::MIN).min(settled);
    let mut after: Option<(String, String)> = None;
    let mut read = 0i64;
    loop {
        let rows = table.read_range(lower, upper, after.as_ref()).await?;
        let full = rows.len() == table.config().page_size as usize;
        if let Some(last) = rows.last() {
            after = Some((table.value(last, &day_column).to_owned(), table.key_of(last)));
        }
        read += rows.len() as i64;
        let mut records: Vec<Record> = Vec::new();
        for row in rows {
            let delete = table.is_delete(&row);
            let value = serde_json::Value::Object(row.columns);
            if let Ok(record) = partner.mapping().record(&value) {
                let record = if delete { super::mapping::ended(record) } else { Some(record) };
                records.extend(record);
            }
        }
        if !records.is_empty() {
            let mut tx = store.begin().await?;
            let refs: Vec<&Record> = records.iter().collect();
            write_records(&mut tx, &refs, domain::seizure::SeizureRules::default(), now).await?;
            tx.commit().await?;
        }
        if !full {
            return Ok(read);
        }
    }
}
