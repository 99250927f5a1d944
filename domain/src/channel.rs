//! Application channels, certificate delivery, applicant and agent kinds, and
//! the one place where "online" and "end-to-end online" are decided.

/// How an application reached the registry (申请渠道). Codes are the ones the partner feeds use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// 1: the public web or mobile portal (互联网+ 门户 / 掌上办).
    WebApp,
    /// 2: a partner's platform: developer, bank, provident fund or agency.
    PartnerPlatform,
    /// 3: the self-service terminals (自助窗口).
    SelfService,
    /// 4: the counter (窗口): offline.
    Counter,
}

impl Channel {
    /// All channels in code order.
    pub const ALL: [Channel; 4] = [Self::WebApp, Self::PartnerPlatform, Self::SelfService, Self::Counter];

    /// The numeric code (1–4).
    pub fn code(self) -> u8 {
        match self {
            Self::WebApp => 1,
            Self::PartnerPlatform => 2,
            Self::SelfService => 3,
            Self::Counter => 4,
        }
    }

    /// The channel for a numeric code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Simplified Chinese label.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::WebApp => "网站/APP",
            Self::PartnerPlatform => "合作方平台",
            Self::SelfService => "自助终端",
            Self::Counter => "窗口",
        }
    }

    /// English label.
    pub fn name_en(self) -> &'static str {
        match self {
            Self::WebApp => "web/app",
            Self::PartnerPlatform => "partner platform",
            Self::SelfService => "self-service terminal",
            Self::Counter => "counter",
        }
    }

    /// The online rule (网办): every channel but the counter is online.
    pub fn is_online(self) -> bool {
        self != Self::Counter
    }
}

/// How the certificate or result reaches the applicant (领证方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Delivery {
    /// 1: electronic certificate (电子证照).
    Electronic,
    /// 2: by post (邮寄).
    Post,
    /// 3: collected at the counter (窗口领取).
    Counter,
}

impl Delivery {
    /// All delivery modes in code order.
    pub const ALL: [Delivery; 3] = [Self::Electronic, Self::Post, Self::Counter];

    /// The numeric code (1–3).
    pub fn code(self) -> u8 {
        match self {
            Self::Electronic => 1,
            Self::Post => 2,
            Self::Counter => 3,
        }
    }

    /// The delivery mode for a numeric code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.code() == code)
    }

    /// Simplified Chinese label.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Electronic => "电子证照",
            Self::Post => "邮寄",
            Self::Counter => "窗口领取",
        }
    }
}

/// Who applies (申请人类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApplicantKind {
    /// 个人
    Individual,
    /// 企业
    Enterprise,
    /// 司法机关
    Judicial,
}

impl ApplicantKind {
    /// All kinds.
    pub const ALL: [ApplicantKind; 3] = [Self::Individual, Self::Enterprise, Self::Judicial];

    /// Stable code used in storage and feeds.
    pub fn code(self) -> &'static str {
        match self {
            Self::Individual => "individual",
            Self::Enterprise => "enterprise",
            Self::Judicial => "judicial",
        }
    }

    /// The kind for a code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Simplified Chinese label.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Individual => "个人",
            Self::Enterprise => "企业",
            Self::Judicial => "司法机关",
        }
    }
}

/// Who applies on the applicant's behalf through a partner platform (代办方).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentKind {
    /// 开发企业
    Developer,
    /// 金融机构
    Bank,
    /// 公积金中心
    ProvidentFund,
    /// 中介公司
    Agency,
}

impl AgentKind {
    /// All kinds.
    pub const ALL: [AgentKind; 4] = [Self::Developer, Self::Bank, Self::ProvidentFund, Self::Agency];

    /// Stable code used in storage and feeds.
    pub fn code(self) -> &'static str {
        match self {
            Self::Developer => "developer",
            Self::Bank => "bank",
            Self::ProvidentFund => "provident_fund",
            Self::Agency => "agency",
        }
    }

    /// The kind for a code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Simplified Chinese label.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Developer => "开发企业",
            Self::Bank => "金融机构",
            Self::ProvidentFund => "公积金",
            Self::Agency => "中介",
        }
    }
}

/// The end-to-end online rule (全程网办, GB/T 37277-2018 §3.3): applied online
/// and nothing collected at the counter. For business that issues no
/// certificate (`issues_certificate == false`) applying online suffices; so it
/// does while the delivery mode is not yet known only if nothing is to be issued.
pub fn is_end_to_end_online(channel: Channel, delivery: Option<Delivery>, issues_certificate: bool) -> bool {
    if !channel.is_online() {
        return false;
    }
    if !issues_certificate {
        return true;
    }
    matches!(delivery, Some(Delivery::Electronic | Delivery::Post))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_counter_is_offline() {
        assert!(Channel::WebApp.is_online());
        assert!(Channel::PartnerPlatform.is_online());
        assert!(Channel::SelfService.is_online());
        assert!(!Channel::Counter.is_online());
    }

    #[test]
    fn end_to_end_online_needs_no_counter_visit() {
        assert!(is_end_to_end_online(Channel::WebApp, Some(Delivery::Electronic), true));
        assert!(is_end_to_end_online(Channel::PartnerPlatform, Some(Delivery::Post), true));
        assert!(!is_end_to_end_online(Channel::WebApp, Some(Delivery::Counter), true));
        assert!(!is_end_to_end_online(Channel::WebApp, None, true));
        assert!(!is_end_to_end_online(Channel::Counter, Some(Delivery::Electronic), true));
        assert!(is_end_to_end_online(Channel::SelfService, None, false));
    }

    #[test]
    fn codes_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::from_code(c.code()), Some(c));
        }
        for d in Delivery::ALL {
            assert_eq!(Delivery::from_code(d.code()), Some(d));
        }
        assert_eq!(Channel::from_code(5), None);
    }
}
