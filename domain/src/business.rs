//! The business-type catalogue: the ten types of the plan, their vendor
//! codes, online scope, rollout phase and go-live date, and their statutory
//! and committed time limits.
//!
//! The built-in values are defaults: a centre changes a limit or a go-live
//! date with a TOML file ([`Catalogue::with_overrides_toml`]) instead of a
//! new build. Limits marked *unverified* in `DOMAIN.md` (the committed
//! limits) are set locally by each centre.

use chrono::NaiveDate;

/// One of the ten business types of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BusinessType {
    /// 预售商品房买卖预告登记
    PresaleNotice,
    /// 预购商品房抵押权预告登记
    PreNoticeMortgage,
    /// 预告转现登记 (双预告转现)
    NoticeToActual,
    /// 一手房转移登记
    FirstHandTransfer,
    /// 二手房转移登记
    SecondHandTransfer,
    /// 变更登记
    Change,
    /// 注销登记
    Cancellation,
    /// 抵押登记 (现房/期房)
    Mortgage,
    /// 查解封登记
    SeizureRelease,
    /// 信息查询
    InformationQuery,
}

/// Whether a type is fully online or the applicant chooses (plan §三).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnlineScope {
    /// 全部纳入“互联网+”全程网办.
    Full,
    /// 选择性网办: online or counter, as the applicant chooses.
    Optional,
}

/// A rollout phase of the plan (实施时间).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// 第一期 2024-04-26: high-frequency agent business fully online.
    One,
    /// 第二期 2024-06-01: second-hand transfer, online trial.
    Two,
    /// 第三期 2024-08-01: mortgage, expanded online.
    Three,
    /// 第四期 2024-10-01: seizure and release, online trial.
    Four,
}

impl Phase {
    /// All phases in order.
    pub const ALL: [Phase; 4] = [Self::One, Self::Two, Self::Three, Self::Four];

    /// 1 to 4.
    pub fn number(self) -> u8 {
        match self {
            Self::One => 1,
            Self::Two => 2,
            Self::Three => 3,
            Self::Four => 4,
        }
    }

    /// Go-live date as issued in the plan.
    pub fn go_live(self) -> NaiveDate {
        let (m, d) = match self {
            Self::One => (4, 26),
            Self::Two => (6, 1),
            Self::Three => (8, 1),
            Self::Four => (10, 1),
        };
        NaiveDate::from_ymd_opt(2024, m, d).unwrap_or(NaiveDate::MIN)
    }

    /// What goes online, in Simplified Chinese.
    pub fn description_zh(self) -> &'static str {
        match self {
            Self::One => "第一期：高频代办业务全程网办",
            Self::Two => "第二期：二手房转移登记试行网办",
            Self::Three => "第三期：抵押登记扩大网办",
            Self::Four => "第四期：查解封登记试行网办",
        }
    }
}

/// The unit a time limit is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitUnit {
    /// 工作日, on the official calendar.
    WorkingDays,
    /// 工作小时, within office hours on working days.
    WorkingHours,
}

/// A time limit: `amount` working days or hours after acceptance.
/// Zero working days means "the same day" (by the end of the acceptance day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// How many units.
    pub amount: u32,
    /// Days or hours.
    pub unit: LimitUnit,
}

impl Limit {
    /// `n` working days.
    pub const fn working_days(n: u32) -> Self {
        Self { amount: n, unit: LimitUnit::WorkingDays }
    }

    /// `n` working hours.
    pub const fn working_hours(n: u32) -> Self {
        Self { amount: n, unit: LimitUnit::WorkingHours }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.unit {
            LimitUnit::WorkingDays => write!(f, "{} 个工作日", self.amount),
            LimitUnit::WorkingHours => write!(f, "{} 个工作小时", self.amount),
        }
    }
}

/// The vendor codes partner feeds use for registration and application types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VendorCode {
    /// 7001 预售商品房买卖预告登记
    PresaleNotice,
    /// 7002 预购商品房抵押权预告登记
    PreNoticeMortgage,
    /// 2003 预告转现
    NoticeToActual,
    /// 2001 一手房转移
    FirstHandTransfer,
    /// 2002 二手房转移
    SecondHandTransfer,
    /// 3001 变更
    Change,
    /// 4001 注销
    Cancellation,
    /// 1001 现房抵押
    MortgageExisting,
    /// 1002 期房抵押
    MortgageOffPlan,
    /// 8001 查封
    Seizure,
    /// 8002 解封
    Release,
    /// 8003 续封
    Renewal,
    /// 9001 信息查询
    InformationQuery,
}

impl VendorCode {
    /// Every vendor code.
    pub const ALL: [VendorCode; 13] = [
        Self::PresaleNotice,
        Self::PreNoticeMortgage,
        Self::NoticeToActual,
        Self::FirstHandTransfer,
        Self::SecondHandTransfer,
        Self::Change,
        Self::Cancellation,
        Self::MortgageExisting,
        Self::MortgageOffPlan,
        Self::Seizure,
        Self::Release,
        Self::Renewal,
        Self::InformationQuery,
    ];

    /// The four-digit code.
    pub fn code(self) -> u16 {
        match self {
            Self::PresaleNotice => 7001,
            Self::PreNoticeMortgage => 7002,
            Self::NoticeToActual => 2003,
            Self::FirstHandTransfer => 2001,
            Self::SecondHandTransfer => 2002,
            Self::Change => 3001,
            Self::Cancellation => 4001,
            Self::MortgageExisting => 1001,
            Self::MortgageOffPlan => 1002,
            Self::Seizure => 8001,
            Self::Release => 8002,
            Self::Renewal => 8003,
            Self::InformationQuery => 9001,
        }
    }

    /// The vendor code for a number, if it is one we know.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.code() == code)
    }

    /// The business type this code belongs to.
    pub fn business_type(self) -> BusinessType {
        match self {
            Self::PresaleNotice => BusinessType::PresaleNotice,
            Self::PreNoticeMortgage => BusinessType::PreNoticeMortgage,
            Self::NoticeToActual => BusinessType::NoticeToActual,
            Self::FirstHandTransfer => BusinessType::FirstHandTransfer,
            Self::SecondHandTransfer => BusinessType::SecondHandTransfer,
            Self::Change => BusinessType::Change,
            Self::Cancellation => BusinessType::Cancellation,
            Self::MortgageExisting | Self::MortgageOffPlan => BusinessType::Mortgage,
            Self::Seizure | Self::Release | Self::Renewal => BusinessType::SeizureRelease,
            Self::InformationQuery => BusinessType::InformationQuery,
        }
    }

    /// The registration category (登记类型: 100 首次 … 900 其他) of common vendor systems.
    pub fn registration_category(self) -> u16 {
        self.code() / 1000 * 100
    }
}

impl BusinessType {
    /// The ten types, in catalogue order.
    pub const ALL: [BusinessType; 10] = [
        Self::PresaleNotice,
        Self::PreNoticeMortgage,
        Self::NoticeToActual,
        Self::FirstHandTransfer,
        Self::SecondHandTransfer,
        Self::Change,
        Self::Cancellation,
        Self::Mortgage,
        Self::SeizureRelease,
        Self::InformationQuery,
    ];

    /// Stable code used in storage, configuration and the warehouse.
    pub fn code(self) -> &'static str {
        match self {
            Self::PresaleNotice => "presale_notice",
            Self::PreNoticeMortgage => "pre_notice_mortgage",
            Self::NoticeToActual => "notice_to_actual",
            Self::FirstHandTransfer => "first_hand_transfer",
            Self::SecondHandTransfer => "second_hand_transfer",
            Self::Change => "change",
            Self::Cancellation => "cancellation",
            Self::Mortgage => "mortgage",
            Self::SeizureRelease => "seizure_release",
            Self::InformationQuery => "information_query",
        }
    }

    /// The type for a stable code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The vendor codes that map to this type.
    pub fn vendor_codes(self) -> Vec<VendorCode> {
        VendorCode::ALL.into_iter().filter(|v| v.business_type() == self).collect()
    }

    /// Simplified Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::PresaleNotice => "预售商品房买卖预告登记",
            Self::PreNoticeMortgage => "预购商品房抵押预告登记",
            Self::NoticeToActual => "预告转现登记",
            Self::FirstHandTransfer => "一手房转移登记",
            Self::SecondHandTransfer => "二手房转移登记",
            Self::Change => "变更登记",
            Self::Cancellation => "注销登记",
            Self::Mortgage => "抵押登记",
            Self::SeizureRelease => "查解封登记",
            Self::InformationQuery => "信息查询",
        }
    }

    /// English name.
    pub fn name_en(self) -> &'static str {
        match self {
            Self::PresaleNotice => "pre-sale notice registration",
            Self::PreNoticeMortgage => "pre-notice mortgage registration",
            Self::NoticeToActual => "notice-to-actual conversion",
            Self::FirstHandTransfer => "first-hand transfer registration",
            Self::SecondHandTransfer => "second-hand transfer registration",
            Self::Change => "change registration",
            Self::Cancellation => "cancellation registration",
            Self::Mortgage => "mortgage registration",
            Self::SeizureRelease => "seizure and release registration",
            Self::InformationQuery => "information query",
        }
    }

    /// Whether the business ends with a certificate (证书或证明) to deliver.
    /// Information queries and seizure/release registrations issue none.
    pub fn issues_certificate(self) -> bool {
        !matches!(self, Self::InformationQuery | Self::SeizureRelease)
    }
}

/// What the catalogue knows of one business type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessTypeInfo {
    /// The type.
    pub business_type: BusinessType,
    /// Fully online or applicant's choice.
    pub scope: OnlineScope,
    /// The rollout phase that brought it online; `None` for types the plan
    /// makes optional-online without naming a phase (change, cancellation, query).
    pub phase: Option<Phase>,
    /// From when the type counts as online business (the phase's go-live by default).
    pub go_live: NaiveDate,
    /// 法定期限: the statutory limit.
    pub statutory_limit: Limit,
    /// 承诺期限: the limit the centre commits to (unverified defaults; set locally).
    pub committed_limit: Limit,
}

/// The business-type catalogue in force: built-in defaults plus local overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    entries: Vec<BusinessTypeInfo>,
}

/// Why a catalogue override file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// Not TOML.
    #[error("catalogue overrides are not valid TOML: {0}")]
    Syntax(String),
    /// A type code the catalogue does not know.
    #[error("unknown business type {found:?} in [business_types]; known: {known}")]
    UnknownType { found: String, known: String },
    /// A key or value that does not fit.
    #[error("business_types.{business_type}.{key}: {message}")]
    InvalidValue { business_type: String, key: String, message: String },
}

impl Default for Catalogue {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Catalogue {
    /// The built-in catalogue from the plan and `DOMAIN.md`.
    pub fn builtin() -> Self {
        use BusinessType as T;
        let phase1_date = Phase::One.go_live();
        let entry = |business_type, scope, phase: Option<Phase>, committed| BusinessTypeInfo {
            business_type,
            scope,
            phase,
            go_live: phase.map_or(phase1_date, Phase::go_live),
            statutory_limit: Limit::working_days(30),
            committed_limit: committed,
        };
        let entries = vec![
            entry(T::PresaleNotice, OnlineScope::Full, Some(Phase::One), Limit::working_days(5)),
            entry(T::PreNoticeMortgage, OnlineScope::Full, Some(Phase::One), Limit::working_days(1)),
            entry(T::NoticeToActual, OnlineScope::Full, Some(Phase::One), Limit::working_days(5)),
            entry(T::FirstHandTransfer, OnlineScope::Full, Some(Phase::One), Limit::working_days(5)),
            entry(T::SecondHandTransfer, OnlineScope::Optional, Some(Phase::Two), Limit::working_days(5)),
            entry(T::Change, OnlineScope::Optional, None, Limit::working_days(5)),
            entry(T::Cancellation, OnlineScope::Optional, None, Limit::working_days(5)),
            entry(T::Mortgage, OnlineScope::Optional, Some(Phase::Three), Limit::working_days(1)),
            entry(T::SeizureRelease, OnlineScope::Optional, Some(Phase::Four), Limit::working_days(0)),
            BusinessTypeInfo {
                statutory_limit: Limit::working_days(0),
                ..entry(T::InformationQuery, OnlineScope::Optional, None, Limit::working_days(0))
            },
        ];
        Self { entries }
    }

    /// Every entry, in catalogue order.
    pub fn entries(&self) -> &[BusinessTypeInfo] {
        &self.entries
    }

    /// The entry for a type (every type has one).
    pub fn get(&self, business_type: BusinessType) -> &BusinessTypeInfo {
        // The catalogue is built from BusinessType::ALL and overrides never remove entries.
        let index = BusinessType::ALL.iter().position(|t| *t == business_type).unwrap_or(0);
        &self.entries[index]
    }

    /// Applies overrides written as TOML (the text of a file the caller read):
    ///
    /// ```toml
    /// [business_types.mortgage]
    /// committed_limit = { amount = 2, unit = "working_days" }
    /// statutory_limit = { amount = 30, unit = "working_days" }
    /// go_live = 2024-08-01
    /// scope = "optional"          # or "full"
    /// ```
    pub fn with_overrides_toml(mut self, text: &str) -> Result<Self, CatalogueError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| CatalogueError::Syntax(e.to_string()))?;
        let Some(types) = table.get("business_types") else { return Ok(self) };
        let types = types.as_table().ok_or_else(|| CatalogueError::Syntax("business_types must be a table".into()))?;
        for (code, settings) in types {
            let business_type = BusinessType::from_code(code).ok_or_else(|| CatalogueError::UnknownType {
                found: code.clone(),
                known: BusinessType::ALL.map(BusinessType::code).join(", "),
            })?;
            let invalid = |key: &str, message: &str| CatalogueError::InvalidValue {
                business_type: code.clone(),
                key: key.to_owned(),
                message: message.to_owned(),
            };
            let settings = settings.as_table().ok_or_else(|| invalid("", "must be a table"))?;
            let index = BusinessType::ALL.iter().position(|t| *t == business_type).unwrap_or(0);
            let entry = &mut self.entries[index];
            for (key, value) in settings {
                match key.as_str() {
                    "committed_limit" => {
                        entry.committed_limit = parse_limit(value).map_err(|e| invalid(key, &e.to_string()))?
                    }
                    "statutory_limit" => {
                        entry.statutory_limit = parse_limit(value).map_err(|e| invalid(key, &e.to_string()))?
                    }
                    "go_live" => {
                        entry.go_live = match value {
                            toml::Value::Datetime(dt) => dt
                                .date
                                .and_then(|d| {
                                    NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                                })
                                .ok_or_else(|| invalid(key, "expected a date like 2024-08-01"))?,
                            toml::Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                                .map_err(|_| invalid(key, "expected a date like 2024-08-01"))?,
                            _ => return Err(invalid(key, "expected a date like 2024-08-01")),
                        }
                    }
                    "scope" => {
                        entry.scope = match value.as_str() {
                            Some("full") => OnlineScope::Full,
                            Some("optional") => OnlineScope::Optional,
                            _ => return Err(invalid(key, "expected \"full\" or \"optional\"")),
                        }
                    }
                    _ => {
                        return Err(invalid(
                            key,
                            "unknown key; expected committed_limit, statutory_limit, go_live or scope",
                        ));
                    }
                }
            }
        }
        Ok(self)
    }
}

/// Which part of a limit `{ amount, unit }` is wrong.
#[derive(Debug, thiserror::Error)]
enum LimitError {
    #[error("expected {{ amount = N, unit = \"working_days\" | \"working_hours\" }}")]
    NotTable,
    #[error("amount must be a non-negative integer")]
    Amount,
    #[error("unit must be \"working_days\" or \"working_hours\"")]
    Unit,
    #[error("unknown key {0:?}; expected amount and unit")]
    UnknownKey(String),
}

fn parse_limit(value: &toml::Value) -> Result<Limit, LimitError> {
    let table = value.as_table().ok_or(LimitError::NotTable)?;
    let amount = table
        .get("amount")
        .and_then(toml::Value::as_integer)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(LimitError::Amount)?;
    let unit = match table.get("unit").and_then(toml::Value::as_str) {
        Some("working_days") => LimitUnit::WorkingDays,
        Some("working_hours") => LimitUnit::WorkingHours,
        _ => return Err(LimitError::Unit),
    };
    if let Some(extra) = table.keys().find(|k| !matches!(k.as_str(), "amount" | "unit")) {
        return Err(LimitError::UnknownKey(extra.clone()));
    }
    Ok(Limit { amount, unit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendor_code_maps_to_a_type_and_back() {
        for v in VendorCode::ALL {
            assert_eq!(VendorCode::from_code(v.code()), Some(v));
            assert!(v.business_type().vendor_codes().contains(&v));
        }
        assert_eq!(VendorCode::from_code(1002).map(VendorCode::business_type), Some(BusinessType::Mortgage));
        assert_eq!(VendorCode::from_code(8003).map(VendorCode::business_type), Some(BusinessType::SeizureRelease));
        assert_eq!(VendorCode::Seizure.registration_category(), 800);
        assert_eq!(VendorCode::from_code(5001), None);
    }

    #[test]
    fn builtin_catalogue_follows_the_plan() {
        let c = Catalogue::builtin();
        assert_eq!(c.entries().len(), 10);
        assert_eq!(c.get(BusinessType::FirstHandTransfer).scope, OnlineScope::Full);
        assert_eq!(c.get(BusinessType::SecondHandTransfer).go_live, Phase::Two.go_live());
        assert_eq!(c.get(BusinessType::Mortgage).phase, Some(Phase::Three));
        assert_eq!(c.get(BusinessType::SeizureRelease).go_live.to_string(), "2024-10-01");
        assert_eq!(c.get(BusinessType::Change).statutory_limit, Limit::working_days(30));
        for t in BusinessType::ALL {
            assert_eq!(c.get(t).business_type, t);
        }
    }

    #[test]
    fn overrides_change_a_limit_without_a_rebuild() {
        let c = Catalogue::builtin()
            .with_overrides_toml(
                "[business_types.mortgage]\ncommitted_limit = { amount = 4, unit = \"working_hours\" }\ngo_live = 2024-08-05\n",
            )
            .expect("valid overrides");
        assert_eq!(c.get(BusinessType::Mortgage).committed_limit, Limit::working_hours(4));
        assert_eq!(c.get(BusinessType::Mortgage).go_live.to_string(), "2024-08-05");
        assert_eq!(c.get(BusinessType::Change), Catalogue::builtin().get(BusinessType::Change));
    }

    #[test]
    fn bad_overrides_say_where() {
        let err = Catalogue::builtin().with_overrides_toml("[business_types.mortage]\n").expect_err("unknown type");
        assert!(err.to_string().contains("mortage"), "{err}");
        let err = Catalogue::builtin()
            .with_overrides_toml(
                "[business_types.mortgage]\ncommitted_limit = { amount = -1, unit = \"working_days\" }\n",
            )
            .expect_err("negative");
        assert!(err.to_string().contains("business_types.mortgage.committed_limit"), "{err}");
        let err = Catalogue::builtin()
            .with_overrides_toml("[business_types.mortgage]\ncomitted = 1\n")
            .expect_err("unknown key");
        assert!(err.to_string().contains("comitted"), "{err}");
    }
}
