//! Logging in: the SASL exchange (SCRAM-SHA-256, crate `scram`) against the
//! verifier kept with the account, then the store's one login policy
//! (`store::Store::decide_login`, the same as the login page's): nothing about
//! an account is said before a right password, wrong passwords count toward
//! the lockout, and only roles of `store::accounts::SQL_FRONT_END_ROLES` may
//! come in.

use std::collections::HashMap;
use std::net::SocketAddr;

use scram::{Exchange, MECHANISM, ScramError, Verifier};
use store::accounts::{LoginAttempt, LoginOutcome, Proof, SQL_FRONT_END_ROLES};
use store::audit::Recorded;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::wire::{self, Body, Out, WireError};
use crate::{Inner, PgError, catalog, send};

/// Why a login did not complete.
pub(crate) enum LoginFailure {
    /// The connection failed.
    Io(WireError),
    /// Refused, with what to tell the client.
    Refused(PgError),
}

impl From<WireError> for LoginFailure {
    fn from(e: WireError) -> Self {
        LoginFailure::Io(e)
    }
}

impl From<std::io::Error> for LoginFailure {
    fn from(e: std::io::Error) -> Self {
        LoginFailure::Io(e.into())
    }
}

fn wrong_password(user: &str) -> LoginFailure {
    LoginFailure::Refused(PgError::fatal("28P01", format!("password authentication failed for user \"{user}\"")))
}

fn internal(e: impl std::fmt::Display) -> LoginFailure {
    LoginFailure::Refused(PgError::fatal("XX000", format!("the account store failed: {e}")))
}

/// Reads one SASL message (`p`) and its bytes, at most a pre-login message's size.
async fn sasl_message<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, LoginFailure> {
    match wire::read_message_within(stream, wire::MAX_PRELOGIN_MESSAGE).await? {
        Some(m) if m.tag == b'p' => Ok(m.body),
        Some(m) => Err(LoginFailure::Refused(PgError::fatal(
            "08P01",
            format!("expected a SASL response, got message {:?}", m.tag as char),
        ))),
        None => Err(LoginFailure::Io(WireError::Protocol("closed during login".into()))),
    }
}

/// Logs the client in by the startup `params`, or says why not.
pub(crate) async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    inner: &Inner,
    stream: &mut S,
    out: &mut Out,
    params: &HashMap<String, String>,
    peer: SocketAddr,
    tls: bool,
) -> Result<store::accounts::Account, LoginFailure> {
    let refuse = |code: &'static str, message: String| LoginFailure::Refused(PgError::fatal(code, message));
    if inner.require_tls && !tls {
        return Err(LoginFailure::Refused(
            PgError::fatal("28000", "this server accepts only encrypted connections")
                .hint("connect with sslmode=require (psql: \"host=… sslmode=require\")"),
        ));
    }
    let user = params.get("user").cloned().unwrap_or_default();
    if user.is_empty() {
        return Err(refuse("28000", "no user name was given".into()));
    }
    let database = params.get("database").map(String::as_str).unwrap_or(user.as_str());
    if database != catalog::DATABASE {
        return Err(LoginFailure::Refused(
            PgError::fatal("3D000", format!("database \"{database}\" does not exist"))
                .hint(format!("the warehouse is database \"{}\"", catalog::DATABASE)),
        ));
    }
    let store = &inner.sources.store;
    let now = (inner.sources.clock)();
    let client = peer.to_string();
    let account = store.account_by_name(&user).await.map_err(internal)?;
    // Only an account with a verifier can prove its password here. Every other
    // name runs the exchange against a verifier nobody knows, whose salt is as
    // stable as a real one's, and fails as a wrong password does.
    let verifier = account.as_ref().and_then(|a| a.scram_verifier.as_deref()).and_then(Verifier::parse);
    let known = verifier.is_some();
    let verifier = verifier.unwrap_or_else(|| Verifier::unknown(&user, &inner.secret));

    let mut mechanisms = Vec::new();
    mechanisms.extend_from_slice(MECHANISM.as_bytes());
    mechanisms.extend_from_slice(&[0, 0]);
    out.authentication(10, &mechanisms);
    send(stream, out).await?;
    let body = sasl_message(stream).await?;
    let mut b = Body::new(&body);
    let mechanism = b.cstr()?;
    if mechanism != MECHANISM {
        return Err(refuse("28000", format!("SASL mechanism {mechanism} is not offered: use {MECHANISM}")));
    }
    let len = b.i32()?;
    let client_first = String::from_utf8_lossy(if len < 0 { &[] } else { b.rest() }).into_owned();
    let (exchange, server_first) =
        Exchange::start(verifier, &client_first, &scram::new_nonce()).map_err(|e| refuse("08P01", e.to_string()))?;
    out.authentication(11, server_first.as_bytes());
    send(stream, out).await?;
    let body = sasl_message(stream).await?;
    let client_final = String::from_utf8_lossy(&body).into_owned();
    let (proof, server_final) = match exchange.finish(&client_final) {
        Err(e @ ScramError::Malformed(_)) => return Err(refuse("08P01", e.to_string())),
        _ if !known => (Proof::Unavailable, None),
        Ok(server_final) => (Proof::Right, Some(server_final)),
        Err(ScramError::WrongProof) => (Proof::Wrong, None),
    };
    let attempt = LoginAttempt { name: &user, account, proof, client: &client, now };
    let account = match store.decide_login(attempt).await.map_err(internal)? {
        LoginOutcome::Allowed(account) => account,
        LoginOutcome::Refused => return Err(wrong_password(&user)),
        LoginOutcome::Locked { until } => {
            let minutes = (until - now).num_minutes() + 1;
            return Err(refuse(
                "28000",
                format!("too many wrong passwords: account \"{user}\" is locked; try again in {minutes} minutes"),
            ));
        }
    };
    if !SQL_FRONT_END_ROLES.contains(&account.role.as_str()) {
        let reason = "role not allowed the SQL front end";
        let _ = store.record(now, &client, &user, &Recorded::LoginFailed { reason }).await;
        return Err(LoginFailure::Refused(
            PgError::fatal(
                "28000",
                format!("account \"{user}\" (role {}) may not use the warehouse's SQL front end", account.role),
            )
            .hint("only QC (qc) and leadership (leadership) accounts may"),
        ));
    }
    store.record_pg_login(&account, &client, tls, now).await.map_err(internal)?;
    if let Some(server_final) = server_final {
        out.authentication(12, server_final.as_bytes());
    }
    Ok(account)
}
