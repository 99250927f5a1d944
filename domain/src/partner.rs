//! The kinds of partner system the registry exchanges data with.

/// A partner system's kind. The set is closed: a new kind is a new connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartnerKind {
    /// The registry's own business system (登记业务系统).
    Registry,
    /// The housing authority (住建, contract filings 合同备案).
    Housing,
    /// A bank (金融机构).
    Bank,
    /// The housing provident fund (公积金中心).
    ProvidentFund,
    /// A court, or the courts' control platform (法院 / 执行查控平台).
    Court,
}

impl PartnerKind {
    /// Every kind.
    pub const ALL: [PartnerKind; 5] = [Self::Registry, Self::Housing, Self::Bank, Self::ProvidentFund, Self::Court];

    /// Stable code used in storage, configuration and the CLI.
    pub fn code(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Housing => "housing",
            Self::Bank => "bank",
            Self::ProvidentFund => "provident_fund",
            Self::Court => "court",
        }
    }

    /// The kind for a code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Simplified Chinese label.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Registry => "登记业务系统",
            Self::Housing => "住建部门",
            Self::Bank => "银行",
            Self::ProvidentFund => "公积金中心",
            Self::Court => "法院",
        }
    }
}
