//! A court's order about a unit (查封、续封、解封), validated: the form every
//! court order takes past the edge, whether pushed to the gateway or pulled
//! from the courts' control platform.

use chrono::{DateTime, NaiveDate, Utc};

use crate::ident::{CaseNo, CertificateNo, UnitNo};

/// What the court orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CourtAction {
    /// 查封 (or 轮候查封 if the unit is already seized) for `start..=end`.
    Seize { start: NaiveDate, end: NaiveDate },
    /// 续封 of the seizure made by `original_order_no`, for `start..=end`.
    Renew { original_order_no: String, start: NaiveDate, end: NaiveDate },
    /// 解封 of the seizure made by `original_order_no`.
    Release { original_order_no: String },
}

impl CourtAction {
    /// `SEIZE`, `RENEW` or `RELEASE`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Seize { .. } => "SEIZE",
            Self::Renew { .. } => "RENEW",
            Self::Release { .. } => "RELEASE",
        }
    }
}

/// A validated court order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourtOrder {
    /// The court's order (request) number; unique per court.
    pub order_no: String,
    /// Court code, e.g. `湘0405`.
    pub court_code: String,
    /// Court name.
    pub court_name: String,
    /// Case number.
    pub case_no: CaseNo,
    /// What is ordered.
    pub action: CourtAction,
    /// The unit concerned.
    pub unit_no: UnitNo,
    /// The certificate concerned, if given.
    pub cert_no: Option<CertificateNo>,
    /// Person or enterprise subject to enforcement (被执行人).
    pub respondent_name: String,
    /// Their ID number or credit code (kept for matching, shown masked).
    pub respondent_id_no: String,
    /// Ruling document number (裁定书文号).
    pub ruling_no: String,
    /// Judge in charge (承办人).
    pub judge: String,
    /// When the notice was served (送达时间): orders queued seizures.
    pub served_at: DateTime<Utc>,
}

impl CourtOrder {
    /// The original order referred to by a renewal or release.
    pub fn original_order_no(&self) -> Option<&str> {
        match &self.action {
            CourtAction::Seize { .. } => None,
            CourtAction::Renew { original_order_no, .. } | CourtAction::Release { original_order_no } => {
                Some(original_order_no)
            }
        }
    }

    /// Start and end dates, for seizures and renewals.
    pub fn period(&self) -> Option<(NaiveDate, NaiveDate)> {
        match &self.action {
            CourtAction::Seize { start, end } | CourtAction::Renew { start, end, .. } => Some((*start, *end)),
            CourtAction::Release { .. } => None,
        }
    }
}
