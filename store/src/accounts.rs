//! Dashboard accounts and login sessions.
//!
//! The store keeps what the dashboards decide: the role is opaque text here
//! (the dashboards define the roles), passwords arrive already hashed
//! (argon2 PHC strings) and session tokens as their SHA-256, so nothing in
//! these tables can be used to log in if it leaks.

use chrono::{DateTime, TimeDelta, Utc};

use crate::audit::Recorded;
use crate::{Store, StoreError, StoreResult, on_pool};

/// A dashboard account.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    /// Store id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// Role code (`leadership`, `qc`, `staff`, `operator`, `admin`).
    pub role: String,
    /// The section (or window) the account belongs to, for roles scoped to one.
    pub section: Option<String>,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// SCRAM-SHA-256 verifier (PostgreSQL's form) for the warehouse's
    /// PostgreSQL front end; none for passwords set before it existed.
    pub scram_verifier: Option<String>,
    /// A disabled account cannot log in and its sessions end.
    pub disabled: bool,
    /// Failed logins since the last success.
    pub failed_logins: i32,
    /// Logins are refused until then after too many failures.
    pub locked_until: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Never prints the password hash.
impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("section", &self.section)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Wrong passwords in a row that lock an account, at every door (the login page, the PostgreSQL front end).
pub const MAX_FAILURES: i32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT: TimeDelta = TimeDelta::minutes(15);

/// What a login attempt proved about the password, as the door checked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The password was right.
    Right,
    /// The password was wrong.
    Wrong,
    /// The account keeps nothing this door can check a password against (the
    /// PostgreSQL front end and an account without a SCRAM verifier).
    Unavailable,
}

/// A login attempt at one door, after the door checked the password.
#[derive(Debug)]
pub struct LoginAttempt<'a> {
    /// The name given.
    pub name: &'a str,
    /// Its account, if there is one.
    pub account: Option<Account>,
    /// What the door's check proved.
    pub proof: Proof,
    /// Where it came from (an address), for the audit.
    pub client: &'a str,
    /// When.
    pub now: DateTime<Utc>,
}

/// What a login attempt comes to under the one policy every door applies.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginOutcome {
    /// The password was right and the account may log in (the door may still
    /// refuse its role); the door records the login, which clears the failures.
    Allowed(Account),
    /// The password was right, but too many wrong ones before it locked the account until then.
    Locked {
        /// The lock's end.
        until: DateTime<Utc>,
    },
    /// An unknown name, a wrong password, a disabled account, or nothing to
    /// check the password against: said alike, so that nothing about the
    /// account is told before a right password.
    Refused,
}

/// Roles whose accounts may log in to the warehouse's PostgreSQL front end;
/// only theirs keep a SCRAM verifier (the store writes none for any other).
pub const SQL_FRONT_END_ROLES: &[&str] = &["qc", "leadership"];

/// What the store keeps of a password: never the password itself.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHashes {
    /// Argon2 PHC string (the login page).
    pub phc: String,
    /// SCRAM-SHA-256 verifier (the PostgreSQL front end); kept only for
    /// accounts of [`SQL_FRONT_END_ROLES`].
    pub scram: String,
}

/// Never prints the hashes.
impl std::fmt::Debug for PasswordHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHashes").finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    last_seen_at: DateTime<Utc>,
    #[sqlx(flatten)]
    account: Account,
}

/// The columns of [`Account`], as a literal for `concat!`.
macro_rules! account_columns {
    () => {
        "id, name, role, section, password_hash, scram_verifier, disabled, failed_logins, locked_until, created_at"
    };
}

/// A successful login clears the failure count and any lock.
const CLEAR_FAILURES: &str = "UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = $1";

impl Store {
    /// Creates an account; a name already taken is [`StoreError::AlreadyExists`].
    pub async fn create_account(
        &self,
        name: &str,
        role: &str,
        section: Option<&str>,
        password: &PasswordHashes,
        now: DateTime<Utc>,
    ) -> StoreResult<Account> {
        let mut tx = self.begin().await?;
        let taken: Option<i64> = crate::on_tx!(tx, conn => {
            sqlx::query_scalar("SELECT id FROM accounts WHERE name = $1").bind(name).fetch_optional(conn).await?
        });
        if taken.is_some() {
            return Err(StoreError::AlreadyExists { what: "account", key: name.to_owned() });
        }
        crate::on_tx!(tx, conn => {
            sqlx::query(
                "INSERT INTO accounts (name, role, section, password_hash, scram_verifier, created_at, password_changed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(name)
            .bind(role)
            .bind(section)
            .bind(&password.phc)
            .bind(SQL_FRONT_END_ROLES.contains(&role).then_some(&password.scram))
            .bind(now)
            .execute(conn)
            .await?;
        });
        tx.record(now, "cli", name, &Recorded::AccountCreate { role, section }).await?;
        tx.commit().await?;
        self.account_by_name(name).await?.ok_or_else(|| StoreError::NotFound { what: "account", key: name.to_owned() })
    }

    /// The account called `name`.
    pub async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        const SQL: &str = concat!("SELECT ", account_columns!(), " FROM accounts WHERE name = $1");
        Ok(on_pool!(self, pool => sqlx::query_as(SQL).bind(name).fetch_optional(pool).await?))
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> StoreResult<Vec<Account>> {
        const SQL: &str = concat!("SELECT ", account_columns!(), " FROM accounts ORDER BY name");
        Ok(on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await?))
    }

    /// Disables or enables an account; disabling ends its sessions.
    pub async fn set_account_disabled(&self, name: &str, disabled: bool, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let id: Option<i64> = crate::on_tx!(tx, conn => {
            sqlx::query_scalar("UPDATE accounts SET disabled = $1 WHERE name = $2 RETURNING id")
                .bind(disabled)
                .bind(name)
                .fetch_optional(conn)
                .await?
        });
        let id = id.ok_or_else(|| StoreError::NotFound { what: "account", key: name.to_owned() })?;
        if disabled {
            crate::on_tx!(tx, conn => {
                sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(id).execute(conn).await?;
            });
        }
        tx.record(now, "cli", name, &Recorded::AccountStatus { disabled }).await?;
        tx.commit().await
    }

    /// Sets a new password's hashes, clears the lockout and ends the account's sessions.
    pub async fn reset_account_password(
        &self,
        name: &str,
        password: &PasswordHashes,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let id: Option<i64> = crate::on_tx!(tx, conn => {
            sqlx::query_scalar(
                "UPDATE accounts SET password_hash = $1, \
                 scram_verifier = CASE WHEN role IN ('qc', 'leadership') THEN $2 ELSE NULL END, \
                 password_changed_at = $3, failed_logins = 0, locked_until = NULL WHERE name = $4 RETURNING id",
            )
            .bind(&password.phc)
            .bind(&password.scram)
            .bind(now)
            .bind(name)
            .fetch_optional(conn)
            .await?
        });
        let id = id.ok_or_else(|| StoreError::NotFound { what: "account", key: name.to_owned() })?;
        crate::on_tx!(tx, conn => {
            sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(id).execute(conn).await?;
        });
        tx.record(now, "cli", name, &Recorded::AccountReset {}).await?;
        tx.commit().await
    }

    /// The login policy, the same at every door: only a right password hears
    /// that an account is locked; wrong passwords count toward the lockout
    /// ([`MAX_FAILURES`] in a row lock it for [`LOCKOUT`]) unless the account
    /// is disabled or already locked; a disabled account is refused as a wrong
    /// password is; every refusal is audited with its real reason.
    pub async fn decide_login(&self, attempt: LoginAttempt<'_>) -> StoreResult<LoginOutcome> {
        let LoginAttempt { name, account, proof, client, now } = attempt;
        let refuse = |reason: &'static str| async move {
            self.record(now, client, name, &Recorded::LoginFailed { reason }).await?;
            Ok(LoginOutcome::Refused)
        };
        let Some(account) = account else { return refuse("unknown account").await };
        let locked_until = account.locked_until.filter(|until| *until > now);
        match proof {
            Proof::Unavailable => {
                refuse("no password this door can check (a role that may not use it, or set before it existed)").await
            }
            Proof::Wrong => {
                if !account.disabled && locked_until.is_none() {
                    self.record_login_failure(account.id, MAX_FAILURES, LOCKOUT, now).await?;
                }
                refuse("wrong password or disabled").await
            }
            Proof::Right if account.disabled => refuse("wrong password or disabled").await,
            Proof::Right => match locked_until {
                Some(until) => {
                    self.record(now, client, name, &Recorded::LoginFailed { reason: "locked" }).await?;
                    Ok(LoginOutcome::Locked { until })
                }
                None => Ok(LoginOutcome::Allowed(account)),
            },
        }
    }

    /// Counts a failed login; at `max_failures` the account is locked for `lock_for`.
    /// Returns the lock's end when this failure locked it.
    pub async fn record_login_failure(
        &self,
        id: i64,
        max_failures: i32,
        lock_for: TimeDelta,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let until = now + lock_for;
        let failures: i32 = on_pool!(self, pool => {
            sqlx::query_scalar("UPDATE accounts SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
                .bind(id)
                .fetch_one(pool)
                .await?
        });
        if failures < max_failures {
            return Ok(None);
        }
        on_pool!(self, pool => {
            sqlx::query("UPDATE accounts SET locked_until = $1, failed_logins = 0 WHERE id = $2")
                .bind(until)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(Some(until))
    }

    /// Opens a session after a successful login: clears the failure count,
    /// stores the token's hash and audits the login.
    pub async fn open_session(
        &self,
        account: &Account,
        token_hash: &str,
        client: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        crate::on_tx!(tx, conn => {
            sqlx::query(CLEAR_FAILURES)
                .bind(account.id)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, account_id, created_at, last_seen_at, client) VALUES ($1, $2, $3, $3, $4)",
            )
            .bind(token_hash)
            .bind(account.id)
            .bind(now)
            .bind(client)
            .execute(conn)
            .await?;
        });
        tx.record(now, &account.name, &account.name, &Recorded::Login { client }).await?;
        tx.commit().await
    }

    /// A login to the warehouse's PostgreSQL front end: clears the failure
    /// count and audits it (no web session is opened).
    pub async fn record_pg_login(
        &self,
        account: &Account,
        client: &str,
        tls: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        crate::on_tx!(tx, conn => {
            sqlx::query(CLEAR_FAILURES)
                .bind(account.id)
                .execute(conn)
                .await?;
        });
        tx.record(now, &account.name, &account.name, &Recorded::PgLogin { client, tls }).await?;
        tx.commit().await
    }

    /// The account of a live session and marks it seen at `now`. A session idle
    /// longer than `idle` (or whose account is disabled) is deleted and `None` returned.
    pub async fn touch_session(
        &self,
        token_hash: &str,
        idle: TimeDelta,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Account>> {
        const SQL: &str = concat!(
            "SELECT s.last_seen_at, a.* FROM sessions s JOIN (SELECT ",
            account_columns!(),
            " FROM accounts) a ON a.id = s.account_id WHERE s.token_hash = $1"
        );
        let found: Option<SessionRow> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(token_hash).fetch_optional(pool).await?);
        let Some(SessionRow { last_seen_at: last_seen, account }) = found else { return Ok(None) };
        let live = !account.disabled && now - last_seen <= idle;
        if !live {
            self.close_session(token_hash).await?;
            return Ok(None);
        }
        // Write the time at most once a minute: a page view is a read.
        if now - last_seen >= TimeDelta::minutes(1) {
            on_pool!(self, pool => {
                sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                    .bind(now)
                    .bind(token_hash)
                    .execute(pool)
                    .await?;
            });
        }
        Ok(Some(account))
    }

    /// Ends a session (logout); unknown tokens are ignored.
    pub async fn close_session(&self, token_hash: &str) -> StoreResult<()> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(pool).await?;
        });
        Ok(())
    }
}
