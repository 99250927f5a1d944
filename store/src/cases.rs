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

/// A case as the store keeps it. Built by connectors from validated feed rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    /// Feed the case came from (e.g. `registry`).
    pub source: String,
    /// The feed's own id for the case.
    pub external_id: String,
    /// Registry business number (业务号).
    pub case_no: String,
    /// Vendor code of the registration / application type.
    pub vendor_code: VendorCode,
    /// How it was applied for.
    pub channel: Channel,
    /// How the certificate is delivered, once chosen.
    pub delivery: Option<Delivery>,
    /// Who applies.
    pub applicant_kind: ApplicantKind,
    /// Who applied on the applicant's behalf, through a partner platform.
    pub agent_kind: Option<AgentKind>,
    /// The agent's partner id or credit code.
    pub agent_id: Option<String>,
    /// Applicant's name.
    pub applicant_name: String,
    /// Applicant's ID number or credit code: kept for matching, shown only masked.
    pub applicant_id_no: String,
    /// Six-digit division code of the unit's district.
    pub district: String,
    /// The real-estate unit, when the business concerns one.
    pub unit_no: Option<UnitNo>,
    /// Where the case stands.
    pub status: CaseStatus,
    /// 申请
    pub submitted_at: DateTime<Utc>,
    /// 受理
    pub accepted_at: Option<DateTime<Utc>>,
    /// 核定
    pub verified_at: Option<DateTime<Utc>>,
    /// 登簿
    pub recorded_at: Option<DateTime<Utc>>,
    /// 缮证
    pub cert_prepared_at: Option<DateTime<Utc>>,
    /// 发证
    pub issued_at: Option<DateTime<Utc>>,
    /// 归档
    pub archived_at: Option<DateTime<Utc>>,
    /// When it was refused or withdrawn.
    pub closed_at: Option<DateTime<Utc>>,
    /// Number of correction requests (补正); `None` when undetermined (the
    /// registry sent something that is not a whole number: the case is kept
    /// and counted, its first-time-right left undetermined, never read as 0).
    pub correction_count: Option<i64>,
    /// Contract filing it cites (pre-sale notice cases).
    pub filing_no: Option<String>,
    /// Loan application it cites (mortgage cases).
    pub loan_ref: Option<String>,
    /// Who handled it at a counter window or a self-service terminal (the
    /// registry's 办理人 code, e.g. `ZZ03`); none for web and partner-platform cases.
    pub handler: Option<String>,
    /// The source's version of this record.
    pub source_updated_at: DateTime<Utc>,
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

    fn to_row(&self) -> crate::upsert::Row {
        vec![
            ("source", self.source.as_str().into()),
            ("external_id", self.external_id.as_str().into()),
            ("case_no", self.case_no.as_str().into()),
            ("business_type", self.business_type().code().into()),
            ("vendor_code", i64::from(self.vendor_code.code()).into()),
            ("channel", i64::from(self.channel.code()).into()),
            ("delivery", self.delivery.map(|d| i64::from(d.code())).into()),
            ("applicant_kind", self.applicant_kind.code().into()),
            ("agent_kind", self.agent_kind.map(|a| a.code().to_owned()).into()),
            ("agent_id", self.agent_id.clone().into()),
            ("applicant_name", self.applicant_name.as_str().into()),
            ("applicant_id_no", self.applicant_id_no.as_str().into()),
            ("district", self.district.as_str().into()),
            ("unit_no", self.unit_no.as_ref().map(|u| u.as_str().to_owned()).into()),
            ("status", self.status.code().into()),
            ("submitted_at", self.submitted_at.into()),
            ("accepted_at", self.accepted_at.into()),
            ("verified_at", self.verified_at.into()),
            ("recorded_at", self.recorded_at.into()),
            ("cert_prepared_at", self.cert_prepared_at.into()),
            ("issued_at", self.issued_at.into()),
            ("archived_at", self.archived_at.into()),
            ("closed_at", self.closed_at.into()),
            ("correction_count", self.correction_count.into()),
            ("filing_no", self.filing_no.clone().into()),
            ("loan_ref", self.loan_ref.clone().into()),
            ("handler", self.handler.clone().into()),
            ("source_updated_at", self.source_updated_at.into()),
        ]
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

#[derive(sqlx::FromRow)]
struct CaseRow {
    id: i64,
    source: String,
    external_id: String,
    case_no: String,
    vendor_code: i64,
    channel: i64,
    delivery: Option<i64>,
    applicant_kind: String,
    agent_kind: Option<String>,
    agent_id: Option<String>,
    applicant_name: String,
    applicant_id_no: String,
    district: String,
    unit_no: Option<String>,
    status: String,
    submitted_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    verified_at: Option<DateTime<Utc>>,
    recorded_at: Option<DateTime<Utc>>,
    cert_prepared_at: Option<DateTime<Utc>>,
    issued_at: Option<DateTime<Utc>>,
    archived_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    correction_count: Option<i64>,
    filing_no: Option<String>,
    loan_ref: Option<String>,
    handler: Option<String>,
    source_updated_at: DateTime<Utc>,
    ingested_at: DateTime<Utc>,
}

fn corrupt(column: &'static str, value: impl ToString) -> StoreError {
    StoreError::Corrupt { table: "cases", column, value: value.to_string() }
}

impl TryFrom<CaseRow> for StoredCase {
    type Error = StoreError;

    fn try_from(r: CaseRow) -> Result<Self, StoreError> {
        let vendor_code = u16::try_from(r.vendor_code)
            .ok()
            .and_then(VendorCode::from_code)
            .ok_or_else(|| corrupt("vendor_code", r.vendor_code))?;
        let channel =
            u8::try_from(r.channel).ok().and_then(Channel::from_code).ok_or_else(|| corrupt("channel", r.channel))?;
        let delivery = match r.delivery {
            None => None,
            Some(d) => Some(u8::try_from(d).ok().and_then(Delivery::from_code).ok_or_else(|| corrupt("delivery", d))?),
        };
        let applicant_kind =
            ApplicantKind::from_code(&r.applicant_kind).ok_or_else(|| corrupt("applicant_kind", &r.applicant_kind))?;
        let agent_kind = match r.agent_kind {
            None => None,
            Some(a) => Some(AgentKind::from_code(&a).ok_or_else(|| corrupt("agent_kind", &a))?),
        };
        let unit_no = match r.unit_no {
            None => None,
            Some(u) => Some(UnitNo::parse(&u).map_err(|_| corrupt("unit_no", &u))?),
        };
        let status = CaseStatus::from_code(&r.status).ok_or_else(|| corrupt("status", &r.status))?;
        Ok(StoredCase {
            id: r.id,
            ingested_at: r.ingested_at,
            record: CaseRecord {
                source: r.source,
                external_id: r.external_id,
                case_no: r.case_no,
                vendor_code,
                channel,
                delivery,
                applicant_kind,
                agent_kind,
                agent_id: r.agent_id,
                applicant_name: r.applicant_name,
                applicant_id_no: r.applicant_id_no,
                district: r.district,
                unit_no,
                status,
                submitted_at: r.submitted_at,
                accepted_at: r.accepted_at,
                verified_at: r.verified_at,
                recorded_at: r.recorded_at,
                cert_prepared_at: r.cert_prepared_at,
                issued_at: r.issued_at,
                archived_at: r.archived_at,
                closed_at: r.closed_at,
                correction_count: r.correction_count,
                filing_no: r.filing_no,
                loan_ref: r.loan_ref,
                handler: r.handler,
                source_updated_at: r.source_updated_at,
            },
        })
    }
}

const SELECT_CASE: &str = "SELECT id, source, external_id, case_no, vendor_code, channel, delivery, applicant_kind, \
     agent_kind, agent_id, applicant_name, applicant_id_no, district, unit_no, status, submitted_at, accepted_at, \
     verified_at, recorded_at, cert_prepared_at, issued_at, archived_at, closed_at, correction_count, filing_no, \
     loan_ref, handler, source_updated_at, ingested_at FROM cases";

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
