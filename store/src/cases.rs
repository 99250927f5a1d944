//! Registration cases, normalized: one row per (source, external id) with
//! every life-cycle timestamp, channel, delivery, applicant, district, unit,
//! business type and status.

use chrono::{DateTime, Utc};
use domain::ident::{UnitNo, mask_id_number};
use domain::{AgentKind, ApplicantKind, BusinessType, CaseStatus, Channel, Delivery, VendorCode};

/// Joins a constant SELECT and a constant WHERE clause into one `&'static str`.
macro_rules! const_format_where {
    ($select:expr, $rest:literal) => {{
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!("{}{}", $select, $rest));
        SQL.as_str()
    }};
}

use crate::{Store, StoreError, StoreResult, StoreTx, UpsertOutcome, on_pool};

/// The case columns, listed once. Each entry is a field of [`CaseRecord`]
/// (its doc and type), the type its `cases` column is read as, how the
/// value is written from a record (`c`) and how a record's field is read
/// back from the column's value (`v`, `?` refusing a corrupt value). From
/// this one list come the struct, the row read from the database, the
/// SELECT list and the row an upsert writes, so a new case column is one
/// entry here plus its migration (a test holds the list equal to the table
/// on both backends). Columns derived from others (`business_type`) are
/// written only, listed first under `derived`.
macro_rules! case_columns {
    (
        derived {
            $( $derived:ident: |$dc:ident| $dwrite:expr; )*
        }
        $(
            $(#[doc = $doc:literal])*
            $field:ident: $ty:ty as $sql:ty, write |$c:ident| $write:expr, read |$v:ident| $read:expr;
        )*
    ) => {
        /// A case as the store keeps it. Built by connectors from validated feed rows.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct CaseRecord {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        /// The columns of `cases` a record is written to and read from, in order.
        pub const CASE_COLUMNS: &[&str] = &[$( stringify!($field), )* $( stringify!($derived), )*];

        #[derive(sqlx::FromRow)]
        struct CaseRow {
            id: i64,
            $( $field: $sql, )*
            ingested_at: DateTime<Utc>,
        }

        const SELECT_CASE: &str = concat!("SELECT id, ", $( stringify!($field), ", ", )* "ingested_at FROM cases");

        impl CaseRecord {
            fn to_row(&self) -> crate::upsert::Row {
                vec![
                    $( (stringify!($field), { let $c = self; $write }.into()), )*
                    $( (stringify!($derived), { let $dc = self; $dwrite }.into()), )*
                ]
            }
        }

        impl TryFrom<CaseRow> for StoredCase {
            type Error = StoreError;

            fn try_from(r: CaseRow) -> Result<Self, StoreError> {
                Ok(StoredCase {
                    id: r.id,
                    ingested_at: r.ingested_at,
                    record: CaseRecord { $( $field: { let $v = r.$field; $read }, )* },
                })
            }
        }
    };
}

case_columns! {
    derived {
        business_type: |c| c.business_type().code();
    }
    /// Feed the case came from (e.g. `registry`).
    source: String as String, write |c| c.source.as_str(), read |v| v;
    /// The feed's own id for the case.
    external_id: String as String, write |c| c.external_id.as_str(), read |v| v;
    /// Registry business number (业务号).
    case_no: String as String, write |c| c.case_no.as_str(), read |v| v;
    /// Vendor code of the registration / application type.
    vendor_code: VendorCode as i64, write |c| i64::from(c.vendor_code.code()),
        read |v| u16::try_from(v).ok().and_then(VendorCode::from_code).ok_or_else(|| corrupt("vendor_code", v))?;
    /// How it was applied for.
    channel: Channel as i64, write |c| i64::from(c.channel.code()),
        read |v| u8::try_from(v).ok().and_then(Channel::from_code).ok_or_else(|| corrupt("channel", v))?;
    /// How the certificate is delivered, once chosen.
    delivery: Option<Delivery> as Option<i64>, write |c| c.delivery.map(|d| i64::from(d.code())),
        read |v| v.map(|d| u8::try_from(d).ok().and_then(Delivery::from_code).ok_or_else(|| corrupt("delivery", d))).transpose()?;
    /// Who applies.
    applicant_kind: ApplicantKind as String, write |c| c.applicant_kind.code(),
        read |v| ApplicantKind::from_code(&v).ok_or_else(|| corrupt("applicant_kind", &v))?;
    /// Who applied on the applicant's behalf, through a partner platform.
    agent_kind: Option<AgentKind> as Option<String>, write |c| c.agent_kind.map(|a| a.code().to_owned()),
        read |v| v.map(|a| AgentKind::from_code(&a).ok_or_else(|| corrupt("agent_kind", &a))).transpose()?;
    /// The agent's partner id or credit code.
    agent_id: Option<String> as Option<String>, write |c| c.agent_id.clone(), read |v| v;
    /// Applicant's name.
    applicant_name: String as String, write |c| c.applicant_name.as_str(), read |v| v;
    /// Applicant's ID number or credit code: kept for matching, shown only masked.
    applicant_id_no: String as String, write |c| c.applicant_id_no.as_str(), read |v| v;
    /// Six-digit division code of the unit's district.
    district: String as String, write |c| c.district.as_str(), read |v| v;
    /// The real-estate unit, when the business concerns one.
    unit_no: Option<UnitNo> as Option<String>, write |c| c.unit_no.as_ref().map(|u| u.as_str().to_owned()),
        read |v| v.map(|u| UnitNo::parse(&u).map_err(|_| corrupt("unit_no", &u))).transpose()?;
    /// Where the case stands.
    status: CaseStatus as String, write |c| c.status.code(),
        read |v| CaseStatus::from_code(&v).ok_or_else(|| corrupt("status", &v))?;
    /// 申请
    submitted_at: DateTime<Utc> as DateTime<Utc>, write |c| c.submitted_at, read |v| v;
    /// 受理
    accepted_at: Option<DateTime<Utc>> as Option<DateTime<Utc>>, write |c| c.accepted_at, read |v| v;
    /// 核定
    verified_at: Option<DateTime<Utc>> as Option<DateTime<Utc>>, write |c| c.verified_at, read |v| v;
    /// 登簿
    recorded_at: Option<DateTime<Utc>> as Option<DateTime<Utc>>, write |c| c.recorded_at, read |v| v;
    /// 缮证
    cert_prepared_at: Option<DateTime<Utc>> as Option<DateTime<Utc>>, write |c| c.cert_prepared_at, read |v| v;
    /// 发证
    issued_at: Option<DateTime<Utc>> as Option<DateTime<Utc>>, write |c| c.issued_at, read |v| v;
    /// 归档
    archived_at: Option<DateTime<Utc>> as Option<DateTime<Utc>>, write |c| c.archived_at, read |v| v;
    /// When it was refused or withdrawn.
    closed_at: Option<DateTime<Utc>> as Option<DateTime<Utc>>, write |c| c.closed_at, read |v| v;
    /// Number of correction requests (补正); `None` when undetermined (the
    /// registry sent something that is not a whole number: the case is kept
    /// and counted, its first-time-right left undetermined, never read as 0).
    correction_count: Option<i64> as Option<i64>, write |c| c.correction_count, read |v| v;
    /// Contract filing it cites (pre-sale notice cases).
    filing_no: Option<String> as Option<String>, write |c| c.filing_no.clone(), read |v| v;
    /// Loan application it cites (mortgage cases).
    loan_ref: Option<String> as Option<String>, write |c| c.loan_ref.clone(), read |v| v;
    /// Who handled it at a counter window or a self-service terminal (the
    /// registry's 办理人 code, e.g. `ZZ03`); none for web and partner-platform cases.
    handler: Option<String> as Option<String>, write |c| c.handler.clone(), read |v| v;
    /// The source's version of this record.
    source_updated_at: DateTime<Utc> as DateTime<Utc>, write |c| c.source_updated_at, read |v| v;
}

impl CaseRecord {
    /// The business type, from the vendor code.
    pub fn business_type(&self) -> BusinessType {
        self.vendor_code.business_type()
    }

    /// The applicant's ID number as it may be shown.
    pub fn applicant_id_masked(&self) -> String {
        mask_id_number(&self.applicant_id_no)
    }
}

/// A stored case with its store id and ingestion time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCase {
    /// Store id.
    pub id: i64,
    /// The record.
    pub record: CaseRecord,
    /// When the store last wrote it.
    pub ingested_at: DateTime<Utc>,
}

fn corrupt(column: &'static str, value: impl ToString) -> StoreError {
    StoreError::Corrupt { table: "cases", column, value: value.to_string() }
}

impl StoreTx {
    /// Upserts a case by (source, external_id), only if its version is newer than the stored one.
    pub async fn upsert_case(&mut self, case: &CaseRecord, now: DateTime<Utc>) -> StoreResult<UpsertOutcome> {
        self.versioned_upsert("cases", &["source", "external_id"], case.to_row(), now).await
    }

    /// Upserts cases by (source, external_id); what happened to each, in order.
    pub async fn upsert_cases(&mut self, cases: &[CaseRecord], now: DateTime<Utc>) -> StoreResult<Vec<UpsertOutcome>> {
        let rows = cases.iter().map(CaseRecord::to_row).collect();
        self.versioned_upsert_many("cases", &["source", "external_id"], rows, now).await
    }
}

impl Store {
    /// Upserts one case in its own transaction.
    pub async fn upsert_case(&self, case: &CaseRecord, now: DateTime<Utc>) -> StoreResult<UpsertOutcome> {
        let mut tx = self.begin().await?;
        let outcome = tx.upsert_case(case, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// One case by its source key.
    pub async fn get_case(&self, source: &str, external_id: &str) -> StoreResult<Option<StoredCase>> {
        let row: Option<CaseRow> = on_pool!(self, pool => {
            sqlx::query_as(const_format_where!(SELECT_CASE, " WHERE source = $1 AND external_id = $2"))
                .bind(source)
                .bind(external_id)
                .fetch_optional(pool)
                .await?
        });
        row.map(StoredCase::try_from).transpose()
    }

    /// Cases on a unit, oldest submission first.
    pub async fn cases_on_unit(&self, unit_no: &UnitNo) -> StoreResult<Vec<StoredCase>> {
        let rows: Vec<CaseRow> = on_pool!(self, pool => {
            sqlx::query_as(const_format_where!(SELECT_CASE, " WHERE unit_no = $1 ORDER BY submitted_at, id"))
                .bind(unit_no.as_str())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredCase::try_from).collect()
    }

    /// The latest `limit` cases `handler` handled that were submitted in `[from, to)`, newest first.
    pub async fn cases_handled_by(
        &self,
        handler: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<StoredCase>> {
        let rows: Vec<CaseRow> = on_pool!(self, pool => {
            sqlx::query_as(const_format_where!(SELECT_CASE, " WHERE handler = $1 AND submitted_at >= $2 AND submitted_at < $3 ORDER BY submitted_at DESC, id DESC LIMIT $4"))
                .bind(handler)
                .bind(from)
                .bind(to)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredCase::try_from).collect()
    }

    /// How many cases the store holds per China-time month of submission
    /// (`YYYY-MM`): what the registry delivered and the connector kept, flawed
    /// or not, for the month-by-month reconciliation with the KPIs.
    pub async fn case_counts_by_month(&self) -> StoreResult<std::collections::BTreeMap<String, i64>> {
        let times: Vec<(DateTime<Utc>,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT submitted_at FROM cases").fetch_all(pool).await?
        });
        Ok(by_china_month(times))
    }

    /// [`Store::case_counts_by_month`] and [`Store::flawed_case_counts_by_month`]
    /// for the cases submitted in `[from, to)` only (read through the
    /// submission-time index): what a refresh reconciles for the months it rewrote.
    pub async fn case_counts_by_month_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<(std::collections::BTreeMap<String, i64>, std::collections::BTreeMap<String, i64>)> {
        let rows: Vec<(DateTime<Utc>, bool)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT c.submitted_at, EXISTS \
                 (SELECT 1 FROM data_findings f WHERE f.source = c.source AND f.record_key = c.external_id) \
                 FROM cases c WHERE c.submitted_at >= $1 AND c.submitted_at < $2",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        let flawed = rows.iter().filter(|(_, flawed)| *flawed).map(|(t, _)| (*t,)).collect();
        Ok((by_china_month(rows.into_iter().map(|(t, _)| (t,)).collect()), by_china_month(flawed)))
    }

    /// Of [`Store::case_counts_by_month`], the cases kept with a data-quality
    /// finding (a flawed field), per China-time month of submission.
    pub async fn flawed_case_counts_by_month(&self) -> StoreResult<std::collections::BTreeMap<String, i64>> {
        let times: Vec<(DateTime<Utc>,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT c.submitted_at FROM cases c WHERE EXISTS \
                 (SELECT 1 FROM data_findings f WHERE f.source = c.source AND f.record_key = c.external_id)",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(by_china_month(times))
    }

    /// Cases submitted in `[from, to)`, by submission time.
    pub async fn cases_submitted_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<StoredCase>> {
        let rows: Vec<CaseRow> = on_pool!(self, pool => {
            sqlx::query_as(const_format_where!(SELECT_CASE, " WHERE submitted_at >= $1 AND submitted_at < $2 ORDER BY submitted_at, id"))
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredCase::try_from).collect()
    }

    /// Cases written at or after `since` ("at or after" for the reason given at
    /// [`Store::case_submissions_changed_since`]), by submission time: what an
    /// incremental warehouse refresh merges into the months it carries over.
    pub async fn cases_ingested_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<StoredCase>> {
        let rows: Vec<CaseRow> = on_pool!(self, pool => {
            sqlx::query_as(const_format_where!(SELECT_CASE, " WHERE ingested_at >= $1 ORDER BY submitted_at, id"))
                .bind(since)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredCase::try_from).collect()
    }
}

/// Counts instants per China-time month (`YYYY-MM`).
fn by_china_month(times: Vec<(DateTime<Utc>,)>) -> std::collections::BTreeMap<String, i64> {
    let mut months = std::collections::BTreeMap::new();
    for (t,) in times {
        *months.entry(domain::time::china_time(t).format("%Y-%m").to_string()).or_insert(0) += 1;
    }
    months
}
