//! Roles, what each may see, passwords and login sessions.
//!
//! Passwords are hashed with argon2id (PHC strings). A session is a random
//! 256-bit token in an `HttpOnly; SameSite=Strict` cookie (`Secure` when the
//! service is behind TLS); the store keeps only its SHA-256. Sessions end after
//! [`IDLE_TIMEOUT`] without a request; [`MAX_FAILURES`] wrong passwords in a row
//! lock the account for [`LOCKOUT`].

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use chrono::TimeDelta;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Idle time after which a session ends.
pub const IDLE_TIMEOUT: TimeDelta = TimeDelta::minutes(15);
/// Wrong passwords in a row that lock an account, and for how long: the
/// store's one login policy ([`store::Store::decide_login`]).
pub use store::accounts::{LOCKOUT, MAX_FAILURES};
/// The session cookie's name.
pub const COOKIE: &str = "wangban_session";
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// 领导: every dashboard, aggregates only (no named case lists).
    Leadership,
    /// 质检员: the QC pages, their case lists and the SQL console.
    Qc,
    /// 科室人员: overview, business types and seizures.
    Staff,
    /// 自助端操作员: only the cases they handle, nothing else.
    Operator,
    /// 管理员: connectors, accounts, partners and the audit log.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [Self::Leadership, Self::Qc, Self::Staff, Self::Operator, Self::Admin];

    /// The code stored and typed on the command line.
    pub fn code(self) -> &'static str {
        match self {
            Self::Leadership => "leadership",
            Self::Qc => "qc",
            Self::Staff => "staff",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// The role of a code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Its name in Simplified Chinese.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Leadership => "领导",
            Self::Qc => "质检员",
            Self::Staff => "科室人员",
            Self::Operator => "自助端操作员",
            Self::Admin => "管理员",
        }
    }
}

/// The dashboard pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/` 总览.
    Overview,
    /// `/types` 业务类型.
    Types,
    /// `/qc` 质检.
    Qc,
    /// `/qc/cases`: the cases behind a QC figure (case-level, masked identities).
    QcCases,
    /// `/seizures` 查解封.
    Seizures,
    /// `/connectors` 数据接入.
    Connectors,
    /// `/sql` SQL 控制台.
    Sql,
    /// `/audit` 审计.
    Audit,
    /// `/sandbox` 接入沙箱: sandbox partners' last requests and what was wrong.
    Sandbox,
    /// `/my/cases` 我经办的案件: an operator's own cases, nothing else.
    MyCases,
    /// `/cases` 案件清单: the cases behind a figure (drill-down; masked identities).
    Cases,
    /// `/reports` 月报: the kept monthly reports, to download or print.
    Reports,
}

impl Page {
    /// Every page, in menu order.
    pub const ALL: [Page; 12] = [
        Self::Overview,
        Self::Types,
        Self::Qc,
        Self::QcCases,
        Self::Seizures,
        Self::Connectors,
        Self::Sql,
        Self::Audit,
        Self::Sandbox,
        Self::MyCases,
        Self::Cases,
        Self::Reports,
    ];

    /// Its path.
    pub fn path(self) -> &'static str {
        match self {
            Self::Overview => "/",
            Self::Types => "/types",
            Self::Qc => "/qc",
            Self::QcCases => "/qc/cases",
            Self::Seizures => "/seizures",
            Self::Connectors => "/connectors",
            Self::Sql => "/sql",
            Self::Audit => "/audit",
            Self::Sandbox => "/sandbox",
            Self::MyCases => "/my/cases",
            Self::Cases => "/cases",
            Self::Reports => "/reports",
        }
    }

    /// Its title: Simplified Chinese, English.
    pub fn title(self) -> (&'static str, &'static str) {
        match self {
            Self::Overview => ("总览", "Overview"),
            Self::Types => ("业务类型", "Business types"),
            Self::Qc => ("质检", "Quality control"),
            Self::QcCases => ("质检案件", "QC cases"),
            Self::Seizures => ("查解封", "Seizures"),
            Self::Connectors => ("数据接入", "Connectors"),
            Self::Sql => ("SQL 控制台", "SQL console"),
            Self::Audit => ("审计", "Audit log"),
            Self::Sandbox => ("接入沙箱", "Partner sandbox"),
            Self::MyCases => ("我经办的案件", "My cases"),
            Self::Cases => ("案件清单", "Cases"),
            Self::Reports => ("月报", "Monthly reports"),
        }
    }

    /// Whether the page is in the menu (case lists are reached by drilling down).
    pub fn in_menu(self) -> bool {
        !matches!(self, Self::QcCases | Self::Cases)
    }

    /// Whether `role` may see the page. This table is the whole access policy.
    pub fn allows(self, role: Role) -> bool {
        use Role::{Admin, Leadership, Operator, Qc, Staff};
        match self {
            Self::Overview | Self::Types => matches!(role, Leadership | Qc | Staff),
            Self::Qc | Self::Reports => matches!(role, Leadership | Qc),
            Self::QcCases | Self::Sql => matches!(role, Qc),
            // Staff see the cases at their section's step (see `section_statuses`).
            Self::Cases => matches!(role, Qc | Staff),
            Self::Seizures => matches!(role, Leadership | Staff),
            Self::Connectors => matches!(role, Leadership | Admin),
            Self::Audit | Self::Sandbox => matches!(role, Admin),
            // The self-service window rules: an operator sees the cases they handle and nothing else.
            Self::MyCases => matches!(role, Operator),
        }
    }

    /// The first page `role` may see, where a login lands.
    pub fn home(role: Role) -> Option<Page> {
        Self::ALL.into_iter().find(|p| p.in_menu() && p.allows(role))
    }
}

/// The case statuses that are a section's work: a staff account sees only
/// cases standing at its section's step of the life cycle. `None` for a
/// section code that is not one of these.
pub fn section_statuses(section: &str) -> Option<&'static [&'static str]> {
    match section {
        // 网上审批科: acceptance, verification, recording in the register, corrections.
        "online_approval" => Some(&["SQ", "SL", "BZ", "HD"]),
        // 登记五科: certificate preparation and issue.
        "registration_5" => Some(&["DB", "SZ"]),
        // 档案馆: archiving what was issued.
        "archives" => Some(&["FZ"]),
        _ => None,
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_CHARS`].
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// argon2 refused (it does not, for a valid salt and a sane length).
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Hashes a password with argon2id and a random salt (the login page), and
/// makes its SCRAM-SHA-256 verifier (the warehouse's PostgreSQL front end);
/// refuses short ones.
pub fn hash_password(password: &str) -> Result<store::accounts::PasswordHashes, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError::Hash)?;
    let phc = Argon2::default().hash_password(password.as_bytes(), &salt).map_err(PasswordError::Hash)?.to_string();
    Ok(store::accounts::PasswordHashes { phc, scram: scram::Verifier::new(password).to_string() })
}

/// Whether `password` matches the PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Spends the time of one verification, so an unknown name answers as slowly as a wrong password.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash_password("not-a-real-password").map(|h| h.phc).unwrap_or_default());
    let _ = verify_password(password, phc);
}

/// A new random session token (64 hex digits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The session token in the request's cookies, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", IDLE_TIMEOUT.num_seconds() * 8)
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let phc = hash_password("correct horse battery").expect("hash").phc;
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("x", "not a phc string"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn every_role_has_a_home_and_the_operator_sees_only_their_cases() {
        for role in Role::ALL {
            assert!(Page::home(role).is_some(), "{role:?}");
        }
        assert_eq!(Page::home(Role::Operator), Some(Page::MyCases));
        assert_eq!(Page::ALL.iter().filter(|p| p.allows(Role::Operator)).collect::<Vec<_>>(), [&Page::MyCases]);
        assert!(!Page::QcCases.allows(Role::Leadership), "leadership sees no named case lists");
    }

    #[test]
    fn only_well_formed_tokens_are_read_from_cookies() {
        let token = new_token();
        let mut headers = HeaderMap::new();
        let cookie = format!("other=1; {COOKIE}={token}");
        headers.insert(axum::http::header::COOKIE, cookie.parse().expect("header"));
        assert_eq!(session_token(&headers), Some(token));
        headers.insert(axum::http::header::COOKIE, format!("{COOKIE}=../../etc").parse().expect("header"));
        assert_eq!(session_token(&headers), None);
    }
}
