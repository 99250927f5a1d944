//! The warehouse over the PostgreSQL wire protocol (version 3.0), so that
//! analysts reach it from psql, DBeaver, Excel, Python and FineBI as they
//! reach any PostgreSQL database, under the rules of the SQL console:
//!
//! - **Before login**, nothing a client does holds the port: connections are
//!   counted at accept (in all, and not yet logged in per address), one
//!   deadline covers the whole pre-login phase, and pre-login messages are
//!   a few KiB at most.
//! - **Login** with a dashboard account of role `qc` or `leadership` by
//!   SCRAM-SHA-256 against the verifier kept with the account's password
//!   (crate `scram`), under the store's one login policy, the login page's:
//!   nothing about an account is said before a right password, wrong ones
//!   count toward the lockout. TLS from the server's own rustls
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
//! - **Snapshots**: a prepared statement is planned again when the
//!   warehouse's snapshot changes; an open portal or cursor pins its own.
//! - **Audit**: every statement is recorded (`warehouse.sql`, target
//!   `pgwire`) before its first row leaves, and again when it ends with the
//!   rows sent and milliseconds.
//!
//! Simple and extended query protocol (named statements and portals,
//! parameters in text or binary, `Execute` with a row count and
//! `PortalSuspended`), cursors (`DECLARE … CURSOR FOR`, `FETCH`, `CLOSE`),
//! cancel requests, and enough `pg_catalog` for clients' metadata queries
//! ([`catalog`]).
//!
//! # Layout
//!
//! - this file: the listener, admission at accept and the pre-login deadline, startup.
//! - [`wire`]: the protocol's messages.
//! - `login`: the SASL exchange and the store's login policy.
//! - `params`: the server's parameters (reported at login, answered by `SHOW`).
//! - `session`: one connection after login: the protocol's state machine,
//!   statements and portals by snapshot, the audit.
//! - `commands`: the statements answered by the front end itself, read from their text.
//! - `rows`: a query's rows streamed to the client under the limits.
//! - `cancel`: cancel requests.
//! - [`types`]: Arrow types as PostgreSQL types, values in text and binary.
//! - [`catalog`]: `pg_catalog`, the functions clients call, catalog-query rewrites.

mod cancel;
pub mod catalog;
mod commands;
mod login;
mod params;
mod rows;
mod session;
pub mod types;
pub mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::wire::{Out, Startup, WireError};

/// How long a client may take from connecting to being logged in: one
/// deadline over the whole pre-login phase (encryption requests, the TLS
/// handshake, the startup packet and the SASL exchange).
pub const PRELOGIN_LIMIT: Duration = Duration::from_secs(10);

/// Connections that have not logged in yet, from all addresses; more are
/// refused at accept.
pub const MAX_PRELOGIN: usize = 128;

/// Connections that have not logged in yet from one address; more from it
/// are refused at accept, so one host cannot hold the pre-login slots.
pub const MAX_PRELOGIN_PER_ADDRESS: usize = 64;

/// What the front end reads: the accounts (in the store), the warehouse, the
/// analysts' limits and the clock. (Not the dashboards' state: the front end
/// knows nothing of HTTP.)
#[derive(Clone)]
pub struct Sources {
    /// The store: accounts, the login policy, the audit log.
    pub store: store::Store,
    /// The warehouse's snapshots and the analysts' shared memory pool.
    pub kpis: warehouse::kpi::KpiService,
    /// The analysts' time limit and pool size (as the SQL console's).
    pub sql_limits: warehouse::console::Limits,
    /// The time of logins and audit entries.
    pub clock: domain::Clock,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").field("store", &self.store).field("kpis", &self.kpis).finish_non_exhaustive()
    }
}

/// The front end's settings.
#[derive(Clone)]
pub struct PgSettings {
    /// The server's rustls configuration (`[server.tls]`); none: `SSLRequest` is answered `N`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Refuse connections that did not start TLS.
    pub require_tls: bool,
    /// Rows one statement returns at most (streamed).
    pub max_rows: usize,
    /// Time limits after login.
    pub limits: SessionLimits,
    /// The server's secret (the warehouse key): an unknown name's SCRAM salt
    /// is derived from it, so that it is the same on every attempt.
    pub secret: Vec<u8>,
}

/// Time limits of a logged-in connection, beyond the analysts' statement timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// How long a connection may wait for its next message with a transaction
    /// block, a portal or a cursor open (`idle_in_transaction_session_timeout`):
    /// then its cursors close, their memory returns to the pool, and it ends (`25P03`).
    pub idle_in_transaction: Duration,
    /// How long one message may take to answer, counting the time spent
    /// waiting for the client to read rows: a client that stops reading ends
    /// (`57014`) rather than keep the query's memory.
    pub statement_wall: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits { idle_in_transaction: Duration::from_secs(300), statement_wall: Duration::from_secs(600) }
    }
}

/// Reader pins of the snapshots open cursors read start with this
/// (`warehouse::snapshot::ReaderPin`); the front end removes those left by an
/// earlier process when it binds.
pub const READER_PIN_PREFIX: &str = "pgwire-";

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("tls", &self.tls.is_some())
            .field("require_tls", &self.require_tls)
            .field("max_rows", &self.max_rows)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
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

/// Connections served at once, counted at accept (logged in or not); more
/// are refused (`53300`) at once, before anything is read from them.
pub const MAX_CONNECTIONS: usize = 200;

/// Why a connection is refused at accept.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// [`MAX_CONNECTIONS`] are open.
    Full,
    /// [`MAX_PRELOGIN`] are logging in.
    LoginsFull,
    /// [`MAX_PRELOGIN_PER_ADDRESS`] from this address are logging in.
    AddressFull(IpAddr),
}

impl Refusal {
    fn error(&self) -> PgError {
        match self {
            Refusal::Full => {
                PgError::fatal("53300", format!("sorry, too many clients already ({MAX_CONNECTIONS} connections)"))
            }
            Refusal::LoginsFull => PgError::fatal(
                "53300",
                format!("sorry, too many clients are logging in at once ({MAX_PRELOGIN}); try again in a moment"),
            ),
            Refusal::AddressFull(ip) => PgError::fatal(
                "53300",
                format!("sorry, too many connections from {ip} have not logged in yet ({MAX_PRELOGIN_PER_ADDRESS})"),
            ),
        }
    }
}

/// Connections not yet logged in: in all and by address.
#[derive(Debug, Default)]
struct Waiting {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// A connection admitted at accept: counted while it lives, and as waiting
/// to log in until [`Admitted::logged_in`].
struct Admitted {
    inner: Arc<Inner>,
    waiting: Option<IpAddr>,
}

impl Admitted {
    /// The connection logged in: it no longer counts against the pre-login limits.
    fn logged_in(&mut self) {
        if let Some(ip) = self.waiting.take() {
            self.inner.stop_waiting(ip);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.logged_in();
        self.inner.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Inner {
    /// Admits a connection from `ip` at accept, or says why not.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refusal> {
        let mut waiting = self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = self.connections.load(std::sync::atomic::Ordering::Relaxed);
        if open >= MAX_CONNECTIONS {
            return Err(Refusal::Full);
        }
        if waiting.total >= MAX_PRELOGIN {
            return Err(Refusal::LoginsFull);
        }
        let from = waiting.by_address.entry(ip).or_default();
        if *from >= MAX_PRELOGIN_PER_ADDRESS {
            return Err(Refusal::AddressFull(ip));
        }
        *from += 1;
        waiting.total += 1;
        self.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Admitted { inner: self.clone(), waiting: Some(ip) })
    }

    fn stop_waiting(&self, ip: IpAddr) {
        let mut waiting = self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        waiting.total = waiting.total.saturating_sub(1);
        if let std::collections::hash_map::Entry::Occupied(mut from) = waiting.by_address.entry(ip) {
            *from.get_mut() -= 1;
            if *from.get() == 0 {
                from.remove();
            }
        }
    }

    /// Connections open now, logged in or not (for tests and metrics).
    fn open(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A cancel request: the backend's running statement stops, if the secret matches.
    fn cancel(&self, pid: i32, secret: i32) {
        let backends = self.backends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(backend) = backends.get(&pid).filter(|b| b.secret == secret) {
            backend.cancel.request();
        }
    }
}

/// A logged-in connection that can be cancelled.
#[derive(Debug)]
struct Backend {
    secret: i32,
    cancel: Arc<cancel::Cancel>,
}

struct Inner {
    sources: Sources,
    connections: std::sync::atomic::AtomicUsize,
    waiting: Mutex<Waiting>,
    tls: Option<TlsAcceptor>,
    require_tls: bool,
    max_rows: usize,
    limits: SessionLimits,
    secret: Vec<u8>,
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
    /// Binds `addr` for the accounts and warehouse of `sources`, with `settings`.
    pub async fn bind(addr: SocketAddr, sources: Sources, settings: PgSettings) -> Result<PgFront, PgFrontError> {
        if settings.require_tls && settings.tls.is_none() {
            return Err(PgFrontError::TlsRequiredWithoutCertificate);
        }
        let listener = TcpListener::bind(addr).await.map_err(|source| PgFrontError::Bind { addr, source })?;
        let inner = Inner {
            sources,
            connections: std::sync::atomic::AtomicUsize::new(0),
            waiting: Mutex::default(),
            tls: settings.tls.map(TlsAcceptor::from),
            require_tls: settings.require_tls,
            max_rows: settings.max_rows.max(1),
            limits: settings.limits,
            secret: settings.secret,
            backends: Mutex::default(),
        };
        // Pins of cursors of an earlier process that did not end cleanly.
        if let Err(e) = warehouse::snapshot::ReaderPin::clear(inner.sources.kpis.root(), READER_PIN_PREFIX) {
            tracing::warn!(message = "old reader pins could not be removed", error = %e);
        }
        Ok(PgFront { inner: Arc::new(inner), listener })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that reads how many connections are open, for tests and metrics.
    pub fn gauge(&self) -> Gauge {
        Gauge(self.inner.clone())
    }

    /// Serves connections until `shutdown` completes; then closes every connection.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => match self.inner.admit(peer.ip()) {
                        Ok(admitted) => {
                            let inner = self.inner.clone();
                            connections.spawn(async move {
                                let _ = tcp.set_nodelay(true);
                                if let Err(e) = connection(inner, tcp, peer, admitted).await {
                                    tracing::debug!(message = "postgres connection ended", %peer, error = %e);
                                }
                            });
                        }
                        Err(refusal) => {
                            // Said at once without waiting on the client, and closed: a refused socket costs nothing.
                            tracing::info!(message = "postgres connection refused at accept", %peer, reason = ?refusal);
                            let mut out = Out::default();
                            refusal.error().write(&mut out);
                            let _ = tcp.try_write(&out.buf);
                        }
                    },
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

/// Reads how many connections a [`PgFront`] has open.
#[derive(Clone)]
pub struct Gauge(Arc<Inner>);

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Gauge").field(&self.open()).finish()
    }
}

impl Gauge {
    /// Connections open now, logged in or not.
    pub fn open(&self) -> usize {
        self.0.open()
    }

    /// Connections open now that have not logged in.
    pub fn waiting(&self) -> usize {
        self.0.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).total
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

/// Runs `step` before the pre-login deadline, or fails saying what did not finish in time.
async fn before<T, E: Into<WireError>>(
    deadline: tokio::time::Instant,
    what: &str,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, WireError> {
    match tokio::time::timeout_at(deadline, step).await {
        Ok(done) => done.map_err(Into::into),
        Err(_) => Err(WireError::Protocol(format!(
            "{what}: not logged in within {} s of connecting",
            PRELOGIN_LIMIT.as_secs()
        ))),
    }
}

async fn connection(
    inner: Arc<Inner>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
) -> Result<(), WireError> {
    let deadline = tokio::time::Instant::now() + PRELOGIN_LIMIT;
    let mut startup = before(deadline, "no startup message", wire::read_startup(&mut tcp)).await?;
    loop {
        match startup {
            Startup::Ssl => {
                let Some(acceptor) = inner.tls.clone() else {
                    before(deadline, "answering SSLRequest", tcp.write_all(b"N")).await?;
                    startup = before(deadline, "no startup message", wire::read_startup(&mut tcp)).await?;
                    continue;
                };
                before(deadline, "answering SSLRequest", tcp.write_all(b"S")).await?;
                let mut tls = before(deadline, "TLS handshake", acceptor.accept(tcp)).await?;
                let startup = before(deadline, "no startup message", wire::read_startup(&mut tls)).await?;
                return start(inner, tls, peer, true, startup, admitted, deadline).await;
            }
            Startup::GssEnc => {
                before(deadline, "answering GSSENCRequest", tcp.write_all(b"N")).await?;
                startup = before(deadline, "no startup message", wire::read_startup(&mut tcp)).await?;
            }
            Startup::Cancel { pid, secret } => {
                inner.cancel(pid, secret);
                return Ok(());
            }
            Startup::Start { .. } => return start(inner, tcp, peer, false, startup, admitted, deadline).await,
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
    mut admitted: Admitted,
    deadline: tokio::time::Instant,
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
        return before(deadline, "refusing the protocol version", send(&mut stream, &mut out)).await;
    }
    if version & 0xffff != 0 {
        // A later 3.x: we speak 3.0 and know none of its protocol options.
        let options: Vec<&str> =
            params.iter().map(|(name, _)| name.as_str()).filter(|name| name.starts_with("_pq_.")).collect();
        out.negotiate_protocol_version(wire::PROTOCOL_3, &options);
    }
    let params: HashMap<String, String> = params.into_iter().collect();
    let login =
        tokio::time::timeout_at(deadline, login::authenticate(&inner, &mut stream, &mut out, &params, peer, tls));
    let account = match login.await {
        Err(_) => {
            return Err(WireError::Protocol(format!(
                "login: not logged in within {} s of connecting",
                PRELOGIN_LIMIT.as_secs()
            )));
        }
        Ok(Err(login::LoginFailure::Io(e))) => return Err(e),
        Ok(Err(login::LoginFailure::Refused(e))) => {
            e.write(&mut out);
            return before(deadline, "refusing the login", send(&mut stream, &mut out)).await;
        }
        Ok(Ok(account)) => account,
    };
    admitted.logged_in();
    let (pid, secret, cancel) = {
        let mut backends = inner.backends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rng = rand::rng();
        let mut pid: i32 = rng.random_range(1..i32::MAX);
        while backends.contains_key(&pid) {
            pid = rng.random_range(1..i32::MAX);
        }
        let secret: i32 = rng.random();
        let cancel = Arc::new(cancel::Cancel::default());
        backends.insert(pid, Backend { secret, cancel: cancel.clone() });
        (pid, secret, cancel)
    };
    out.authentication(0, &[]);
    let application_name = params.get("application_name").cloned().unwrap_or_default();
    for name in params::REPORTED {
        let value = match *name {
            "session_authorization" => account.name.as_str(),
            "application_name" => application_name.as_str(),
            other => params::fixed(other).unwrap_or_default(),
        };
        out.parameter_status(name, value);
    }
    out.backend_key(pid, secret);
    out.ready();
    send(&mut stream, &mut out).await?;
    let _admitted = admitted;
    let login = Login { account, params };
    let result = session::Session::new(&inner, login, pid, cancel).run(&mut stream, out).await;
    inner.backends.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&pid);
    result
}
