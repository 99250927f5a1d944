//! Partner records other than cases: QC findings, satisfaction evaluations,
//! housing contract filings and loan applications (banks and the provident
//! fund). Each is keyed by its source and the source's own id, and upserted
//! by version (`source_updated_at`): re-deliveries change nothing and an
//! older snapshot never overwrites a newer one.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use crate::value::{Value, bind_values, versioned_upsert_sql};
use crate::{StoreResult, StoreTx, UpsertOutcome, on_tx};

/// A quality-control finding (质检差错) on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QcFinding {
    /// Feed the finding came from.
    pub source: String,
    /// The feed's id for it.
    pub external_id: String,
    /// Source of the case it concerns.
    pub case_source: String,
    /// External id of the case it concerns.
    pub case_external_id: String,
    /// Error category (e.g. `identity`, `materials`, `register_entry`).
    pub category: String,
    /// Severity (`minor`, `major`, `serious`).
    pub severity: String,
    /// Responsible section (e.g. `online_approval`, `registration_5`).
    pub section: String,
    /// What was found.
    pub description: String,
    /// When it was found.
    pub found_at: DateTime<Utc>,
    /// When it was corrected (改正), if it was.
    pub corrected_at: Option<DateTime<Utc>>,
    /// The source's version of this record.
    pub source_updated_at: DateTime<Utc>,
}

/// A satisfaction evaluation (好差评) of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Feed the evaluation came from.
    pub source: String,
    /// The feed's id for it.
    pub external_id: String,
    /// Source of the case it concerns.
    pub case_source: String,
    /// External id of the case it concerns.
    pub case_external_id: String,
    /// 1 非常满意 … 5 非常不满意; 4 and 5 are bad reviews.
    pub level: i64,
    /// Where it was given (`web`, `app`, `sms`, `terminal`, `counter`).
    pub channel: String,
    /// Free text.
    pub comment: String,
    /// When it was given.
    pub evaluated_at: DateTime<Utc>,
    /// When a bad review was rectified (整改).
    pub rectified_at: Option<DateTime<Utc>>,
    /// The source's version of this record.
    pub source_updated_at: DateTime<Utc>,
}

/// A housing-authority contract filing (商品房买卖合同备案).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractFiling {
    /// Feed the filing came from.
    pub source: String,
    /// Filing number (备案号).
    pub filing_no: String,
    /// Developer's name.
    pub developer_name: String,
    /// Developer's unified social credit code.
    pub developer_credit_code: String,
    /// Buyer's name.
    pub buyer_name: String,
    /// Buyer's ID number (kept for matching; display masked).
    pub buyer_id_no: String,
    /// Real-estate unit number.
    pub unit_no: String,
    /// Contract price in fen.
    pub price_cents: i64,
    /// When it was filed.
    pub filed_at: DateTime<Utc>,
    /// Filing status (`filed`, `cancelled`).
    pub status: String,
    /// File it was loaded from, if from a file drop.
    pub source_file: Option<String>,
    /// The source's version of this record.
    pub source_updated_at: DateTime<Utc>,
}

/// A mortgage loan application from a bank or the provident fund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanApplication {
    /// Lender feed (e.g. `bank:icbc`, `provident_fund`).
    pub source: String,
    /// The lender's application id.
    pub external_id: String,
    /// `bank` or `provident_fund`.
    pub lender_kind: String,
    /// Borrower's name.
    pub borrower_name: String,
    /// Borrower's ID number (kept for matching; display masked).
    pub borrower_id_no: String,
    /// Unit pledged.
    pub unit_no: String,
    /// Loan amount in fen.
    pub amount_cents: i64,
    /// When it was applied for.
    pub applied_at: DateTime<Utc>,
    /// Lender's status (`submitted_to_registry`, `accepted`, `registered`, `rejected`, `withdrawn`).
    pub status: String,
    /// The registry case number once submitted.
    pub registry_case_no: Option<String>,
    /// The source's version of this record.
    pub source_updated_at: DateTime<Utc>,
}

impl StoreTx {
    /// Inserts or updates by `keys`, only if the incoming `source_updated_at` is newer.
    pub(crate) async fn versioned_upsert(
        &mut self,
        table: &'static str,
        keys: &[&'static str],
        row: Vec<(&'static str, Value)>,
        now: DateTime<Utc>,
    ) -> StoreResult<UpsertOutcome> {
        let incoming = row.iter().find_map(|(c, v)| match (c, v) {
            (&"source_updated_at", Value::Time(Some(t))) => Some(*t),
            _ => None,
        });
        let key_values: Vec<Value> =
            keys.iter().filter_map(|k| row.iter().find(|(c, _)| c == k).map(|(_, v)| v.clone())).collect();
        let conditions: Vec<String> = keys.iter().enumerate().map(|(i, k)| format!("{k} = ${}", i + 1)).collect();
        let select = format!("SELECT source_updated_at FROM {table} WHERE {}", conditions.join(" AND "));
        let existing: Option<DateTime<Utc>> = on_tx!(self, conn => {
            bind_values!(sqlx::query_scalar(AssertSqlSafe(select)), &key_values).fetch_optional(conn).await?
        });
        let outcome = match (existing, incoming) {
            (None, _) => UpsertOutcome::Inserted,
            (Some(old), Some(new)) if new > old => UpsertOutcome::Updated,
            (Some(old), Some(new)) if new == old => return Ok(UpsertOutcome::Unchanged),
            _ => return Ok(UpsertOutcome::Stale),
        };
        let mut columns: Vec<&'static str> = row.iter().map(|(c, _)| *c).collect();
        let mut values: Vec<Value> = row.into_iter().map(|(_, v)| v).collect();
        columns.push("ingested_at");
        values.push(now.into());
        let sql = versioned_upsert_sql(table, keys, &columns);
        on_tx!(self, conn => {
            bind_values!(sqlx::query(AssertSqlSafe(sql)), &values).execute(conn).await?;
        });
        Ok(outcome)
    }

    /// Upserts a QC finding by (source, external_id).
    pub async fn upsert_qc_finding(&mut self, f: &QcFinding, now: DateTime<Utc>) -> StoreResult<UpsertOutcome> {
        let row: Vec<(&'static str, Value)> = vec![
            ("source", f.source.as_str().into()),
            ("external_id", f.external_id.as_str().into()),
            ("case_source", f.case_source.as_str().into()),
            ("case_external_id", f.case_external_id.as_str().into()),
            ("category", f.category.as_str().into()),
            ("severity", f.severity.as_str().into()),
            ("section", f.section.as_str().into()),
            ("description", f.description.as_str().into()),
            ("found_at", f.found_at.into()),
            ("corrected_at", f.corrected_at.into()),
            ("source_updated_at", f.source_updated_at.into()),
        ];
        self.versioned_upsert("qc_findings", &["source", "external_id"], row, now).await
    }

    /// Upserts an evaluation by (source, external_id).
    pub async fn upsert_evaluation(&mut self, e: &Evaluation, now: DateTime<Utc>) -> StoreResult<UpsertOutcome> {
        let row: Vec<(&'static str, Value)> = vec![
            ("source", e.source.as_str().into()),
            ("external_id", e.external_id.as_str().into()),
            ("case_source", e.case_source.as_str().into()),
            ("case_external_id", e.case_external_id.as_str().into()),
            ("level", e.level.into()),
            ("channel", e.channel.as_str().into()),
            ("comment", e.comment.as_str().into()),
            ("evaluated_at", e.evaluated_at.into()),
            ("rectified_at", e.rectified_at.into()),
            ("source_updated_at", e.source_updated_at.into()),
        ];
        self.versioned_upsert("evaluations", &["source", "external_id"], row, now).await
    }

    /// Upserts a contract filing by (source, filing_no).
    pub async fn upsert_contract_filing(
        &mut self,
        c: &ContractFiling,
        now: DateTime<Utc>,
    ) -> StoreResult<UpsertOutcome> {
        let row: Vec<(&'static str, Value)> = vec![
            ("source", c.source.as_str().into()),
            ("filing_no", c.filing_no.as_str().into()),
            ("developer_name", c.developer_name.as_str().into()),
            ("developer_credit_code", c.developer_credit_code.as_str().into()),
            ("buyer_name", c.buyer_name.as_str().into()),
            ("buyer_id_no", c.buyer_id_no.as_str().into()),
            ("unit_no", c.unit_no.as_str().into()),
            ("price_cents", c.price_cents.into()),
            ("filed_at", c.filed_at.into()),
            ("status", c.status.as_str().into()),
            ("source_file", c.source_file.clone().into()),
            ("source_updated_at", c.source_updated_at.into()),
        ];
        self.versioned_upsert("contract_filings", &["source", "filing_no"], row, now).await
    }

    /// Upserts a loan application by (source, external_id).
    pub async fn upsert_loan_application(
        &mut self,
        l: &LoanApplication,
        now: DateTime<Utc>,
    ) -> StoreResult<UpsertOutcome> {
        let row: Vec<(&'static str, Value)> = vec![
            ("source", l.source.as_str().into()),
            ("external_id", l.external_id.as_str().into()),
            ("lender_kind", l.lender_kind.as_str().into()),
            ("borrower_name", l.borrower_name.as_str().into()),
            ("borrower_id_no", l.borrower_id_no.as_str().into()),
            ("unit_no", l.unit_no.as_str().into()),
            ("amount_cents", l.amount_cents.into()),
            ("applied_at", l.applied_at.into()),
            ("status", l.status.as_str().into()),
            ("registry_case_no", l.registry_case_no.clone().into()),
            ("source_updated_at", l.source_updated_at.into()),
        ];
        self.versioned_upsert("loan_applications", &["source", "external_id"], row, now).await
    }
}

/// Row counts of the record tables, for progress and health pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableCounts {
    /// cases
    pub cases: i64,
    /// qc_findings
    pub qc_findings: i64,
    /// evaluations
    pub evaluations: i64,
    /// contract_filings
    pub contract_filings: i64,
    /// loan_applications
    pub loan_applications: i64,
}

impl crate::Store {
    /// Counts the rows of each record table.
    pub async fn table_counts(&self) -> StoreResult<TableCounts> {
        let (cases, qc_findings, evaluations, contract_filings, loan_applications): (i64, i64, i64, i64, i64) = crate::on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM cases), (SELECT COUNT(*) FROM qc_findings), (SELECT COUNT(*) FROM evaluations), \
                 (SELECT COUNT(*) FROM contract_filings), (SELECT COUNT(*) FROM loan_applications)",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(TableCounts { cases, qc_findings, evaluations, contract_filings, loan_applications })
    }
}
