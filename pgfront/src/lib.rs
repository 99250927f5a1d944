//! The warehouse over the PostgreSQL wire protocol (version 3.0), so that
//! analysts reach it from psql, DBeaver, Excel, Python and FineBI as they
//! reach any PostgreSQL database, under the rules of the SQL console:
//!
//! - **Login** with a dashboard account of role `qc` or `leadership`
//!   (others are refused, saying why), by SCRAM-SHA-256 against the verifier
//!   kept with the account's password ([`dashboards::scram`]); wrong passwords
//!   count toward the login page's lockout. TLS from the server's own rustls
//!   configuration (`SSLRequest`); with `require_tls` a connection without it
//!   is refused. There is no fallback to plain text when TLS fails.
//! - **Read-only** exactly as the console: every statement is planned with
//!   DataFusion's read-only `SQLOptions` (no DDL, DML, COPY, external tables,
//!   `SET` of the engine's options); harmless session settings clients send
//!   (`SET application_name`, `extra_float_digits`, `DateStyle`, …) are
//!   acknowledged, and `statement_timeout` may only tighten the limit.
//! - **Limits**: the analysts' shared memory pool and time limit, and a row
//!   limit of its own (`max_rows`, larger than the console's, for exports):
//!   results are streamed batch by batch, never held whole.
//! - **Audit**: every statement is recorded (`warehouse.sql`, target
//!   `pgwire`) with the account, the SQL, rows returned and milliseconds.
//!
//! Simple and extended query protocol (named statements and portals,
//! parameters in text or binary, `Execute` with a row count and
//! `PortalSuspended`), cursors (`DECLARE … CURSOR FOR`, `FETCH`, `CLOSE`),
//! cancel requests, and enough `pg_catalog` for clients' metadata queries
//! ([`catalog`]).
//!
//! # Layout
//!
//! - [`wire`]: the protocol's messages.
//! - [`types`]: Arrow types as PostgreSQL types, values in text and binary.
//! - [`catalog`]: `pg_catalog`, the functions clients call, catalog-query rewrites.
//! - `session`: one connection after login: statements, portals, limits, audit.

pub mod catalog;
mod session;
pub mod types;
pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashboards::Dashboards;
use dashboards::auth::{LOCKOUT, MAX_FAILURES, Role};
use dashboards::scram::{Exchange, MECHANISM, ScramError, Verifier};
use rand::Rng as _;
use store::audit::Recorded;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::wire::{Body, Out, Startup, WireError};

/// How long a client may take from connecting to being logged in.
const LOGIN_LIMIT: Duration = Duration::from_secs(30);

/// The front end's settings.
#[derive(Clone)]
pub struct PgSettings {
    /// The server's rustls configuration (`[server.tls]`); none: `SSLRequest` is answered `N`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Refuse connections that did not start TLS.
    pub require_tls: bool,
    /// Rows one statement returns at most (streamed).
    pub max_rows: usize,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("tls", &self.tls.is_some())
            .field("require_tls", &self.require_tls)
            .field("max_rows", &self.max_rows)
            .finish()
    }
}

/// Why the front end cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PgFrontError {
    /// `require_tls` without `[server.tls]`.
    #[error("[analytics] pg_require_tls needs [server.tls] (the certificate the PostgreSQL front end serves)")]
    TlsRequiredWithoutCertificate,
    /// Binding the address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Connections served at once; more are refused (`53300`) before login.
pub const MAX_CONNECTIONS: usize = 200;

impl Inner {
    /// A cancel request: the backend's running statement stops, if the secret matches.
    fn cancel(&self, pid: i32, secret: i32) {
        let backends = self.backends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(backend) = backends.get(&pid).filter(|b| b.secret == secret) {
            backend.cancel.notify_waiters();
        }
    }
}

/// Counts a connection while it lives.
struct Counted(Arc<Inner>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A logged-in connection that can be cancelled.
#[derive(Debug)]
struct Backend {
    secret: i32,
    cancel: Arc<Notify>,
}

struct Inner {
    dashboards: Dashboards,
    connections: std::sync::atomic::AtomicUsize,
    tls: Option<TlsAcceptor>,
    require_tls: bool,
    max_rows: usize,
    backends: Mutex<HashMap<i32, Backend>>,
}

/// The PostgreSQL front end, bound and ready to serve.
pub struct PgFront {
    inner: Arc<Inner>,
    listener: TcpListener,
}

impl std::fmt::Debug for PgFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFront").field("addr", &self.listener.local_addr().ok()).finish_non_exhaustive()
    }
}

impl PgFront {
    /// Binds `addr` for the warehouse `dashboards` reads, with `settings`.
    pub async fn bind(addr: SocketAddr, dashboards: Dashboards, settings: PgSettings) -> Result<PgFront, PgFrontError> {
        if settings.require_tls && settings.tls.is_none() {
            return Err(PgFrontError::TlsRequiredWithoutCertificate);
        }
        let listener = TcpListener::bind(addr).await.map_err(|source| PgFrontError::Bind { addr, source })?;
        let inner = Inner {
            dashboards,
            connections: std::sync::atomic::AtomicUsize::new(0),
            tls: settings.tls.map(TlsAcceptor::from),
            require_tls: settings.require_tls,
            max_rows: settings.max_rows.max(1),
            backends: Mutex::default(),
        };
        Ok(PgFront { inner: Arc::new(inner), listener })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections until `shutdown` completes; then closes every connection.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let inner = self.inner.clone();
                        connections.spawn(async move {
                            let _ = tcp.set_nodelay(true);
                            if let Err(e) = connection(inner, tcp, peer).await {
                                tracing::debug!(message = "postgres connection ended", %peer, error = %e);
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(message = "postgres accept failed", error = %e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    }
}

/// An error sent to the client (`ErrorResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    /// `ERROR` or `FATAL`.
    pub severity: &'static str,
    /// The SQLSTATE.
    pub code: &'static str,
    /// What happened.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl PgError {
    /// An `ERROR` (the connection goes on).
    pub fn error(code: &'static str, message: impl Into<String>) -> PgError {
        PgError { severity: "ERROR", code, message: message.into(), hint: None }
    }

    /// A `FATAL` (the connection ends).
    pub fn fatal(code: &'static str, message: impl Into<String>) -> PgError {
        PgError { severity: "FATAL", code, message: message.into(), hint: None }
    }

    /// With a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> PgError {
        self.hint = Some(hint.into());
        self
    }

    fn write(&self, out: &mut Out) {
        out.notice_or_error(b'E', self.severity, self.code, &self.message, self.hint.as_deref());
    }
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, out: &mut Out) -> std::io::Result<()> {
    stream.write_all(&out.buf).await?;
    out.buf.clear();
    stream.flush().await
}

async fn connection(inner: Arc<Inner>, mut tcp: TcpStream, peer: SocketAddr) -> Result<(), WireError> {
    let open = inner.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let _counted = Counted(inner.clone());
    let mut startup = tokio::time::timeout(LOGIN_LIMIT, wire::read_startup(&mut tcp))
        .await
        .map_err(|_| WireError::Protocol("no startup message in time".into()))??;
    loop {
        match startup {
            Startup::Ssl => {
                let Some(acceptor) = inner.tls.clone() else {
                    tcp.write_all(b"N").await?;
                    startup = wire::read_startup(&mut tcp).await?;
                    continue;
                };
                tcp.write_all(b"S").await?;
                let mut tls = tokio::time::timeout(LOGIN_LIMIT, acceptor.accept(tcp))
                    .await
                    .map_err(|_| WireError::Protocol("TLS handshake timed out".into()))??;
                let startup = wire::read_startup(&mut tls).await?;
                return start(inner, tls, peer, true, startup, open > MAX_CONNECTIONS).await;
            }
            Startup::GssEnc => {
                tcp.write_all(b"N").await?;
                startup = wire::read_startup(&mut tcp).await?;
            }
            Startup::Cancel { pid, secret } => {
                inner.cancel(pid, secret);
                return Ok(());
            }
            Startup::Start { .. } => return start(inner, tcp, peer, false, startup, open > MAX_CONNECTIONS).await,
        }
    }
}

/// The account a connection logged in as.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    pub(crate) account: store::accounts::Account,
    pub(crate) params: HashMap<String, String>,
}

async fn start<S: AsyncRead + AsyncWrite + Unpin + Send>(
    inner: Arc<Inner>,
    mut stream: S,
    peer: SocketAddr,
    tls: bool,
    startup: Startup,
    too_many: bool,
) -> Result<(), WireError> {
    let mut out = Out::default();
    let (version, params) = match startup {
        Startup::Start { version, params } => (version, params),
        Startup::Cancel { pid, secret } => {
            inner.cancel(pid, secret);
            return Ok(());
        }
        Startup::Ssl | Startup::GssEnc => {
            return Err(WireError::Protocol("an encryption request inside an encrypted connection".into()));
        }
    };
    if version >> 16 != 3 {
        PgError::fatal(
            "0A000",
            format!("protocol version {}.{} is not supported: only 3.0", version >> 16, version & 0xffff),
        )
        .write(&mut out);
        return Ok(send(&mut stream, &mut out).await?);
    }
    if version & 0xffff != 0 {
        // A later 3.x: we speak 3.0 and know none of its protocol options.
        let options: Vec<&str> =
            params.iter().map(|(name, _)| name.as_str()).filter(|name| name.starts_with("_pq_.")).collect();
        out.negotiate_protocol_version(wire::PROTOCOL_3, &options);
    }
    if too_many {
        PgError::fatal("53300", format!("sorry, too many clients already ({MAX_CONNECTIONS} connections)"))
            .write(&mut out);
        return Ok(send(&mut stream, &mut out).await?);
    }
    let params: HashMap<String, String> = params.into_iter().collect();
    let login =
        tokio::time::timeout(LOGIN_LIMIT, authenticate(&inner, &mut stream, &mut out, &params, peer, tls)).await;
    let account = match login {
        Err(_) => return Err(WireError::Protocol("login timed out".into())),
        Ok(Err(LoginFailure::Io(e))) => return Err(e),
        Ok(Err(LoginFailure::Refused(e))) => {
            e.write(&mut out);
            return Ok(send(&mut stream, &mut out).await?);
        }
        Ok(Ok(account)) => account,
    };
    let (pid, secret, cancel) = {
        let mut backends = inner.backends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rng = rand::rng();
        let mut pid: i32 = rng.random_range(1..i32::MAX);
        while backends.contains_key(&pid) {
            pid = rng.random_range(1..i32::MAX);
        }
        let secret: i32 = rng.random();
        let cancel = Arc::new(Notify::new());
        backends.insert(pid, Backend { secret, cancel: cancel.clone() });
        (pid, secret, cancel)
    };
    out.authentication(0, &[]);
    let application_name = params.get("application_name").cloned().unwrap_or_default();
    for (name, value) in [
        ("server_version", catalog::SERVER_VERSION),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("TimeZone", "UTC"),
        ("IntervalStyle", "postgres"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("is_superuser", "off"),
        ("default_transaction_read_only", "on"),
        ("in_hot_standby", "off"),
        ("session_authorization", account.name.as_str()),
        ("application_name", application_name.as_str()),
    ] {
        out.parameter_status(name, value);
    }
    out.backend_key(pid, secret);
    out.ready();
    send(&mut stream, &mut out).await?;
    let login = Login { account, params };
    let result = session::Session::new(&inner, login, pid, cancel).run(&mut stream, out).await;
    inner.backends.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&pid);
    result
}

enum LoginFailure {
    Io(WireError),
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

/// Reads one SASL message (`p`) and its bytes.
async fn sasl_message<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, LoginFailure> {
    match wire::read_message(stream).await? {
        Some(m) if m.tag == b'p' => Ok(m.body),
        Some(m) => Err(LoginFailure::Refused(PgError::fatal(
            "08P01",
            format!("expected a SASL response, got message {:?}", m.tag as char),
        ))),
        None => Err(LoginFailure::Io(WireError::Protocol("closed during login".into()))),
    }
}

async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
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
    let store = &inner.dashboards.store;
    let now = (inner.dashboards.clock)();
    let client = peer.to_string();
    let account = store.account_by_name(&user).await.map_err(internal)?;
    if let Some(account) = &account
        && let Some(until) = account.locked_until.filter(|u| *u > now)
    {
        let minutes = (until - now).num_minutes() + 1;
        return Err(refuse(
            "28000",
            format!("too many wrong passwords: account \"{user}\" is locked; try again in {minutes} minutes"),
        ));
    }
    let verifier = account.as_ref().and_then(|a| a.scram_verifier.as_deref()).and_then(Verifier::parse);
    if let Some(a) = &account
        && verifier.is_none()
        && !a.disabled
    {
        return Err(LoginFailure::Refused(
            PgError::fatal("28000", format!("account \"{user}\" has no password for PostgreSQL clients yet"))
                .hint(format!("its password was set before the PostgreSQL front end existed: set it again (wangban user reset {user})")),
        ));
    }
    // An unknown account runs the exchange against a verifier nobody knows, and fails as a wrong password does.
    let known = verifier.is_some();
    let verifier = verifier.unwrap_or_else(Verifier::unknown);

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
    let (exchange, server_first) = Exchange::start(verifier, &client_first, &dashboards::scram::new_nonce())
        .map_err(|e| refuse("08P01", e.to_string()))?;
    out.authentication(11, server_first.as_bytes());
    send(stream, out).await?;
    let body = sasl_message(stream).await?;
    let client_final = String::from_utf8_lossy(&body).into_owned();
    let outcome = exchange.finish(&client_final);
    let Some(account) = account.filter(|_| known) else {
        let _ = store.record(now, &client, &user, &Recorded::LoginFailed { reason: "unknown account" }).await;
        return Err(wrong_password(&user));
    };
    match outcome {
        Ok(server_final) if !account.disabled => {
            if !matches!(Role::from_code(&account.role), Some(Role::Qc | Role::Leadership)) {
                let _ = store
                    .record(
                        now,
                        &client,
                        &user,
                        &Recorded::LoginFailed { reason: "role not allowed the SQL front end" },
                    )
                    .await;
                return Err(LoginFailure::Refused(
                    PgError::fatal(
                        "28000",
                        format!("account \"{user}\" (role {}) may not use the warehouse's SQL front end", account.role),
                    )
                    .hint("only QC (qc) and leadership (leadership) accounts may"),
                ));
            }
            store.record_pg_login(&account, &client, tls, now).await.map_err(internal)?;
            out.authentication(12, server_final.as_bytes());
            Ok(account)
        }
        Ok(_) => {
            let _ = store
                .record(now, &client, &user, &Recorded::LoginFailed { reason: "wrong password or disabled" })
                .await;
            Err(wrong_password(&user))
        }
        Err(ScramError::WrongProof) => {
            if !account.disabled {
                store.record_login_failure(account.id, MAX_FAILURES, LOCKOUT, now).await.map_err(internal)?;
            }
            let _ = store
                .record(now, &client, &user, &Recorded::LoginFailed { reason: "wrong password or disabled" })
                .await;
            Err(wrong_password(&user))
        }
        Err(e @ ScramError::Malformed(_)) => Err(refuse("08P01", e.to_string())),
    }
}
