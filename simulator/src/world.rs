//! The simulated city's own world model: what happened (cases, contract
//! filings, loans, QC findings, evaluations), independent of how wangban
//! stores it. The simulator knows nothing of `store` or `gateway`: its
//! servers turn these into each partner's wire format, and wangban sees them
//! only through its connectors, as a real partner's data would arrive.
//! Domain types (`VendorCode`, `Channel`, …) are shared; they are the code
//! tables of the plan, and `contracts/` pins their wire codes from outside.

use chrono::{DateTime, Utc};
use domain::ident::UnitNo;
use domain::{AgentKind, ApplicantKind, BusinessType, CaseStatus, Channel, Delivery, VendorCode};

/// A registration case as it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The system it lives in (`registry`).
    pub source: String,
    /// The registry's case number (业务号), its key.
    pub external_id: String,
    /// The case number shown to people (the same here).
    pub case_no: String,
    /// Application type.
    pub vendor_code: VendorCode,
    /// How it was applied for.
    pub channel: Channel,
    /// How the certificate is delivered, once chosen.
    pub delivery: Option<Delivery>,
    /// Who applies.
    pub applicant_kind: ApplicantKind,
    /// Who applied on the applicant's behalf, through a partner platform.
    pub agent_kind: Option<AgentKind>,
    /// The agent's partner id (not part of any feed).
    pub agent_id: Option<String>,
    /// Applicant's name.
    pub applicant_name: String,
    /// Applicant's ID number or credit code.
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
    /// Correction requests (补正).
    pub correction_count: i64,
    /// Contract filing it cites (pre-sale notices).
    pub filing_no: Option<String>,
    /// Loan application it cites (mortgages).
    pub loan_ref: Option<String>,
    /// Who handled it at a window or terminal (办理人).
    pub handler: Option<String>,
    /// When the registry last changed it.
    pub source_updated_at: DateTime<Utc>,
}

impl Case {
    /// The business type, from the application type.
    pub fn business_type(&self) -> BusinessType {
        self.vendor_code.business_type()
    }
}

/// A quality-control finding (质检差错) on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QcFinding {
    /// The system it lives in.
    pub source: String,
    /// Its id.
    pub external_id: String,
    /// The case's system.
    pub case_source: String,
    /// The case's number.
    pub case_external_id: String,
    /// Category code (`SQCL`, `QLR`, …).
    pub category: String,
    /// Severity `1`–`3`.
    pub severity: String,
    /// Responsible section.
    pub section: String,
    /// What was found.
    pub description: String,
    /// When it was found.
    pub found_at: DateTime<Utc>,
    /// When it was corrected.
    pub corrected_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub source_updated_at: DateTime<Utc>,
}

/// A satisfaction evaluation (好差评) of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The system it lives in.
    pub source: String,
    /// Its id.
    pub external_id: String,
    /// The case's system.
    pub case_source: String,
    /// The case's number.
    pub case_external_id: String,
    /// 1 非常满意 … 5 非常不满意.
    pub level: i64,
    /// `online` or `onsite`.
    pub channel: String,
    /// Free text.
    pub comment: String,
    /// When it was given.
    pub evaluated_at: DateTime<Utc>,
    /// When a bad review was rectified.
    pub rectified_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub source_updated_at: DateTime<Utc>,
}

/// A contract filing (网签备案) at the housing authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractFiling {
    /// The system it lives in.
    pub source: String,
    /// Filing number.
    pub filing_no: String,
    /// Developer.
    pub developer_name: String,
    /// Developer's credit code.
    pub developer_credit_code: String,
    /// Buyer.
    pub buyer_name: String,
    /// Buyer's ID number.
    pub buyer_id_no: String,
    /// The unit sold.
    pub unit_no: String,
    /// Price in fen.
    pub price_cents: i64,
    /// When it was filed (or cancelled).
    pub filed_at: DateTime<Utc>,
    /// `filed` or `cancelled`.
    pub status: String,
    /// The daily file it appears in, when known.
    pub source_file: Option<String>,
    /// When it last changed.
    pub source_updated_at: DateTime<Utc>,
}

/// A mortgage loan application at a bank or the provident fund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanApplication {
    /// The lender (`bank:icbc`, `provident_fund`).
    pub source: String,
    /// The lender's application id.
    pub external_id: String,
    /// `bank` or `provident_fund`.
    pub lender_kind: String,
    /// Borrower.
    pub borrower_name: String,
    /// Borrower's ID number.
    pub borrower_id_no: String,
    /// The unit pledged.
    pub unit_no: String,
    /// Amount in fen.
    pub amount_cents: i64,
    /// When it was applied for.
    pub applied_at: DateTime<Utc>,
    /// The lender's status.
    pub status: String,
    /// The registry case number once submitted.
    pub registry_case_no: Option<String>,
    /// When it last changed.
    pub source_updated_at: DateTime<Utc>,
}
