//! The case life cycle (申请 → 受理 → 核定 → 登簿 → 缮证 → 发证 → 归档) and its side paths.

/// Where a case stands. Codes are the pinyin abbreviations used by the registry's business system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaseStatus {
    /// SQ 申请: submitted, not yet accepted.
    Submitted,
    /// SL 受理: accepted.
    Accepted,
    /// BZ 补正: waiting for corrected materials.
    Correction,
    /// HD 核定: verified.
    Verified,
    /// DB 登簿: recorded in the register.
    Recorded,
    /// SZ 缮证: certificate prepared.
    CertificatePrepared,
    /// FZ 发证: certificate issued.
    Issued,
    /// GD 归档: archived.
    Archived,
    /// BYSL 不予受理: refused.
    Refused,
    /// CH 撤回: withdrawn by the applicant.
    Withdrawn,
}

impl CaseStatus {
    /// Every status.
    pub const ALL: [CaseStatus; 10] = [
        Self::Submitted,
        Self::Accepted,
        Self::Correction,
        Self::Verified,
        Self::Recorded,
        Self::CertificatePrepared,
        Self::Issued,
        Self::Archived,
        Self::Refused,
        Self::Withdrawn,
    ];

    /// The registry's code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Submitted => "SQ",
            Self::Accepted => "SL",
            Self::Correction => "BZ",
            Self::Verified => "HD",
            Self::Recorded => "DB",
            Self::CertificatePrepared => "SZ",
            Self::Issued => "FZ",
            Self::Archived => "GD",
            Self::Refused => "BYSL",
            Self::Withdrawn => "CH",
        }
    }

    /// The status for a registry code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Simplified Chinese label.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Submitted => "已申请",
            Self::Accepted => "已受理",
            Self::Correction => "补正中",
            Self::Verified => "已核定",
            Self::Recorded => "已登簿",
            Self::CertificatePrepared => "已缮证",
            Self::Issued => "已发证",
            Self::Archived => "已归档",
            Self::Refused => "不予受理",
            Self::Withdrawn => "已撤回",
        }
    }

    /// Refused or withdrawn: out of scope for the online-rate KPI.
    pub fn is_excluded_from_scope(self) -> bool {
        matches!(self, Self::Refused | Self::Withdrawn)
    }

    /// True once the case is in the register (登簿 or later).
    pub fn is_recorded(self) -> bool {
        matches!(self, Self::Recorded | Self::CertificatePrepared | Self::Issued | Self::Archived)
    }
}
