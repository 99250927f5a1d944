//! The two languages of the pages: Simplified Chinese (default) and English
//! (`?lang=en`), and the names shown for codes (business types, channels,
//! QC categories, sections, statuses, alert kinds, dimensions).

use warehouse::kpi::Dim;

/// Display language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 简体中文, the default.
    #[default]
    Zh,
    /// English, with `?lang=en`.
    En,
}

impl Lang {
    pub(crate) fn pick(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::Zh => zh,
            Self::En => en,
        }
    }

    pub(crate) fn html_lang(self) -> &'static str {
        self.pick("zh-CN", "en")
    }
}

/// Column headers in the page's language, from (Chinese, English) pairs.
pub(crate) fn column_titles(lang: Lang, names: &[(&'static str, &'static str)]) -> Vec<String> {
    names.iter().map(|(zh, en)| lang.pick(zh, en).to_owned()).collect()
}

pub(crate) fn business_type_name(code: &str, lang: Lang) -> String {
    domain::BusinessType::from_code(code)
        .map_or_else(|| code.to_owned(), |t| lang.pick(t.name_zh(), t.name_en()).to_owned())
}

pub(crate) fn channel_name(code: &str, lang: Lang) -> String {
    code.parse::<u8>()
        .ok()
        .and_then(domain::Channel::from_code)
        .map_or_else(|| code.to_owned(), |c| lang.pick(c.name_zh(), c.name_en()).to_owned())
}

pub(crate) fn dim_title(dim: Dim, lang: Lang) -> &'static str {
    match dim {
        Dim::BusinessType => lang.pick("业务类型", "Business type"),
        Dim::Month => lang.pick("月份", "Month"),
        Dim::Week => lang.pick("周", "Week"),
        Dim::Channel => lang.pick("渠道", "Channel"),
        Dim::District => lang.pick("区县", "District"),
        Dim::Phase => lang.pick("期次", "Phase"),
        Dim::ApplicantKind => lang.pick("申请人类型", "Applicant"),
        Dim::Category => lang.pick("差错类别", "Category"),
        Dim::Severity => lang.pick("严重程度", "Severity"),
        Dim::Section => lang.pick("责任科室", "Section"),
        Dim::EvaluationChannel => lang.pick("评价渠道", "Review channel"),
    }
}

/// A QC error category's name (the registry's `cclx` codes, docs/partners.md); unknown codes as they are.
pub(crate) fn qc_category_name(code: &str, lang: Lang) -> String {
    let name = match code {
        "SQCL" => lang.pick("申请材料", "Application materials"),
        "QLR" => lang.pick("权利人信息", "Right-holder data"),
        "FW" => lang.pick("房屋与面积", "Unit and area"),
        "DBNR" => lang.pick("登簿内容", "Register entry"),
        "ZS" => lang.pick("证书内容", "Certificate content"),
        "LC" => lang.pick("程序与时限", "Procedure and time limit"),
        "QT" => lang.pick("其他", "Other"),
        _ => return code.to_owned(),
    };
    format!("{name} ({code})")
}

/// A section's name; unknown codes as they are.
pub(crate) fn section_name(code: &str, lang: Lang) -> String {
    match code {
        "online_approval" => lang.pick("网上审批科", "Online approval"),
        "registration_5" => lang.pick("登记五科", "Registration section 5"),
        "archives" => lang.pick("档案馆", "Archives"),
        "it" => lang.pick("信息科", "IT section"),
        "qc" => lang.pick("质量检查科", "Quality control"),
        _ => return code.to_owned(),
    }
    .to_owned()
}

/// A district by its GB/T 2260 name with the code beside it (`珠晖区 (430405)`),
/// in pages, the report and downloads alike; a code that names no division as it is.
pub(crate) fn district_name(code: &str) -> String {
    domain::ident::Division::label(code)
}

pub(crate) fn dim_value(dim: Dim, v: Option<&str>, lang: Lang) -> String {
    let text = v.unwrap_or_default();
    match dim {
        Dim::BusinessType => business_type_name(text, lang),
        Dim::District => district_name(text),
        Dim::Channel => channel_name(text, lang),
        Dim::Category => qc_category_name(text, lang),
        Dim::Section => section_name(text, lang),
        _ => text.to_owned(),
    }
}

pub(crate) fn alert_kind_name(kind: &str, lang: Lang) -> &'static str {
    match kind {
        warehouse::alerts::ONLINE_RATE => lang.pick("网办率低于进度", "Online rate behind trajectory"),
        warehouse::alerts::SEIZURES_EXPIRING => lang.pick("查封即将到期", "Seizures expiring"),
        warehouse::alerts::CONNECTOR_LAG => lang.pick("连接器滞后", "Connector lagging"),
        _ => lang.pick("其他", "Other"),
    }
}

pub(crate) fn status_name(status: domain::CaseStatus, lang: Lang) -> &'static str {
    use domain::CaseStatus as S;
    match status {
        S::Submitted => lang.pick("已申请", "Submitted"),
        S::Accepted => lang.pick("已受理", "Accepted"),
        S::Correction => lang.pick("补正中", "Correction"),
        S::Verified => lang.pick("已核定", "Verified"),
        S::Recorded => lang.pick("已登簿", "Recorded"),
        S::CertificatePrepared => lang.pick("已缮证", "Certificate prepared"),
        S::Issued => lang.pick("已发证", "Issued"),
        S::Archived => lang.pick("已归档", "Archived"),
        S::Refused => lang.pick("不予受理", "Refused"),
        S::Withdrawn => lang.pick("已撤回", "Withdrawn"),
    }
}
