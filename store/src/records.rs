//! Partner records other than cases: QC findings, satisfaction evaluations,
//! housing contract filings and loan applications (banks and the provident
//! fund). Each is keyed by its source and the source's own id, and upserted
//! by version (`source_updated_at`): re-deliveries change nothing and an
//! older snapshot never overwrites a newer one.

use crate::upsert::Row;
use crate::{StoreResult, StoreTx, UpsertOutcome};
use chrono::{DateTime, Utc};

/// A quality-control finding (质检差错) on a case.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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

impl QcFinding {
    fn to_row(&self) -> Row {
        vec![
            ("source", self.source.as_str().into()),
            ("external_id", self.external_id.as_str().into()),
            ("case_source", self.case_source.as_str().into()),
            ("case_external_id", self.case_external_id.as_str().into()),
            ("category", self.category.as_str().into()),
            ("severity", self.severity.as_str().into()),
            ("section", self.section.as_str().into()),
            ("description", self.description.as_str().into()),
            ("found_at", self.found_at.into()),
            ("corrected_at", self.corrected_at.into()),
            ("source_updated_at", self.source_updated_at.into()),
        ]
    }
}

impl Evaluation {
    fn to_row(&self) -> Row {
        vec![
            ("source", self.source.as_str().into()),
            ("external_id", self.external_id.as_str().into()),
            ("case_source", self.case_source.as_str().into()),
            ("case_external_id", self.case_external_id.as_str().into()),
            ("level", self.level.into()),
            ("channel", self.channel.as_str().into()),
            ("comment", self.comment.as_str().into()),
            ("evaluated_at", self.evaluated_at.into()),
            ("rectified_at", self.rectified_at.into()),
            ("source_updated_at", self.source_updated_at.into()),
        ]
    }
}

impl ContractFiling {
    fn to_row(&self) -> Row {
        vec![
            ("source", self.source.as_str().into()),
            ("filing_no", self.filing_no.as_str().into()),
            ("developer_name", self.developer_name.as_str().into()),
            ("developer_credit_code", self.developer_credit_code.as_str().into()),
            ("buyer_name", self.buyer_name.as_str().into()),
            ("buyer_id_no", self.buyer_id_no.as_str().into()),
            ("unit_no", self.unit_no.as_str().into()),
            ("price_cents", self.price_cents.into()),
            ("filed_at", self.filed_at.into()),
            ("status", self.status.as_str().into()),
            ("source_file", self.source_file.clone().into()),
            ("source_updated_at", self.source_updated_at.into()),
        ]
    }
}

impl LoanApplication {
    fn to_row(&self) -> Row {
        vec![
            ("source", self.source.as_str().into()),
            ("external_id", self.external_id.as_str().into()),
            ("lender_kind", self.lender_kind.as_str().into()),
            ("borrower_name", self.borrower_name.as_str().into()),
            ("borrower_id_no", self.borrower_id_no.as_str().into()),
            ("unit_no", self.unit_no.as_str().into()),
            ("amount_cents", self.amount_cents.into()),
            ("applied_at", self.applied_at.into()),
            ("status", self.status.as_str().into()),
            ("registry_case_no", self.registry_case_no.clone().into()),
            ("source_updated_at", self.source_updated_at.into()),
        ]
    }
}

impl StoreTx {
    /// Upserts a QC finding by (source, external_id).
    pub async fn upsert_qc_finding(&mut self, f: &QcFinding, now: DateTime<Utc>) -> StoreResult<UpsertOutcome> {
        self.versioned_upsert("qc_findings", &["source", "external_id"], f.to_row(), now).await
    }

    /// Upserts QC findings by (source, external_id); what happened to each, in order.
    pub async fn upsert_qc_findings(
        &mut self,
        findings: &[QcFinding],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let rows = findings.iter().map(QcFinding::to_row).collect();
        self.versioned_upsert_many("qc_findings", &["source", "external_id"], rows, now).await
    }

    /// Upserts an evaluation by (source, external_id).
    pub async fn upsert_evaluation(&mut self, e: &Evaluation, now: DateTime<Utc>) -> StoreResult<UpsertOutcome> {
        self.versioned_upsert("evaluations", &["source", "external_id"], e.to_row(), now).await
    }

    /// Upserts evaluations by (source, external_id); what happened to each, in order.
    pub async fn upsert_evaluations(
        &mut self,
        evaluations: &[Evaluation],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let rows = evaluations.iter().map(Evaluation::to_row).collect();
        self.versioned_upsert_many("evaluations", &["source", "external_id"], rows, now).await
    }

    /// Upserts a contract filing by (source, filing_no).
    pub async fn upsert_contract_filing(
        &mut self,
        c: &ContractFiling,
        now: DateTime<Utc>,
    ) -> StoreResult<UpsertOutcome> {
        self.versioned_upsert("contract_filings", &["source", "filing_no"], c.to_row(), now).await
    }

    /// Upserts contract filings by (source, filing_no); what happened to each, in order.
    pub async fn upsert_contract_filings(
        &mut self,
        filings: &[ContractFiling],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let rows = filings.iter().map(ContractFiling::to_row).collect();
        self.versioned_upsert_many("contract_filings", &["source", "filing_no"], rows, now).await
    }

    /// Upserts a loan application by (source, external_id).
    pub async fn upsert_loan_application(
        &mut self,
        l: &LoanApplication,
        now: DateTime<Utc>,
    ) -> StoreResult<UpsertOutcome> {
        self.versioned_upsert("loan_applications", &["source", "external_id"], l.to_row(), now).await
    }

    /// Upserts loan applications by (source, external_id); what happened to each, in order.
    pub async fn upsert_loan_applications(
        &mut self,
        loans: &[LoanApplication],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let rows = loans.iter().map(LoanApplication::to_row).collect();
        self.versioned_upsert_many("loan_applications", &["source", "external_id"], rows, now).await
    }
}

/// A partner file loaded whole (the housing authority's daily exports).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceFile {
    /// Feed.
    pub source: String,
    /// File name.
    pub file_name: String,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Data rows.
    pub row_count: i64,
}

impl StoreTx {
    /// Records a file as loaded, in the transaction that loads its rows.
    /// Fails with [`crate::StoreError`] on a unique violation if it was loaded before.
    pub async fn record_source_file(&mut self, f: &SourceFile, now: DateTime<Utc>) -> StoreResult<()> {
        crate::on_tx!(self, conn => {
            sqlx::query(
                "INSERT INTO source_files (source, file_name, sha256, row_count, loaded_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&f.source)
            .bind(&f.file_name)
            .bind(&f.sha256)
            .bind(f.row_count)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}

impl crate::Store {
    /// The files of a feed already loaded, by name.
    pub async fn source_files(&self, source: &str) -> StoreResult<Vec<SourceFile>> {
        let rows: Vec<SourceFile> = crate::on_pool!(self, pool => {
            sqlx::query_as("SELECT source, file_name, sha256, row_count FROM source_files WHERE source = $1 ORDER BY file_name")
                .bind(source)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
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

impl crate::Store {
    /// A digest of every record table's keys and versions, for comparing two
    /// stores (a resumed sync against an uninterrupted one).
    pub async fn records_fingerprint(&self) -> StoreResult<String> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for (table, key) in [
            ("cases", "external_id"),
            ("qc_findings", "external_id"),
            ("evaluations", "external_id"),
            ("contract_filings", "filing_no"),
            ("loan_applications", "external_id"),
        ] {
            let sql = format!("SELECT source, {key}, source_updated_at FROM {table} ORDER BY source, {key}");
            let rows: Vec<(String, String, DateTime<Utc>)> = crate::on_pool!(self, pool => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).fetch_all(pool).await?
            });
            for (source, id, version) in rows {
                hasher.update(format!("{table}|{source}|{id}|{}\n", version.to_rfc3339()).as_bytes());
            }
        }
        let seizures: Vec<(String, String, String)> = crate::on_pool!(self, pool => {
            sqlx::query_as("SELECT order_no, unit_no, state FROM seizures ORDER BY partner_id, order_no").fetch_all(pool).await?
        });
        for (order, unit, state) in seizures {
            hasher.update(format!("seizures|{order}|{unit}|{state}\n").as_bytes());
        }
        Ok(hex::encode(hasher.finalize()))
    }
}
