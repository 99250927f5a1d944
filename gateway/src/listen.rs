//! The HTTP accept loop, with deadlines and bounds on everything a client
//! controls before its request reaches a handler: court pushes, partner
//! APIs and the pages share this listener, so a client that opens sockets
//! and sends nothing (or half a header, or a body at a byte a minute) must
//! not be able to use up the process's file descriptors.
//!
//! - **Connections are counted at accept**, in total and per address; past
//!   either cap a socket is closed at once. The last
//!   [`HttpLimits::reserved_for_partners`] slots of the total take only
//!   addresses that a court partner pushed from successfully before (a
//!   signed `POST /api/court/…` answered 2xx), so a flood from elsewhere
//!   leaves room for the courts.
//! - **The TLS handshake** must finish within [`HttpLimits::handshake`].
//! - **A request's header** must arrive within [`HttpLimits::header_read`]
//!   (hyper's `header_read_timeout`). Hyper starts that clock whenever it
//!   waits for a request head, so an idle keep-alive connection is closed
//!   after the same time.
//! - **A request's body** must arrive within [`HttpLimits::body_read`] of its
//!   header; a body still arriving then fails its handler's read, and the
//!   connection closes.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// The listener's limits (`[server]` in the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time for a request's header to arrive, and for an idle keep-alive connection to send its next.
    pub header_read: Duration,
    /// Time for a request's body to arrive once its header has.
    pub body_read: Duration,
    /// Time for a TLS handshake.
    pub handshake: Duration,
    /// Connections open at once, from everyone.
    pub max_connections: usize,
    /// Connections open at once from one address.
    pub max_connections_per_address: usize,
    /// Slots of `max_connections` kept for addresses that court partners pushed from.
    pub reserved_for_partners: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
            handshake: Duration::from_secs(10),
            max_connections: 4096,
            max_connections_per_address: 256,
            reserved_for_partners: 256,
        }
    }
}

/// Addresses remembered as court partners' at most (the oldest is forgotten first).
const MAX_PARTNER_ADDRESSES: usize = 4096;

/// Open connections by address, and the addresses partners pushed from.
#[derive(Debug, Default)]
struct Table {
    open: usize,
    by_address: HashMap<IpAddr, usize>,
    partners: HashSet<IpAddr>,
    partner_order: std::collections::VecDeque<IpAddr>,
}

/// The listener's connection counts, shared with its connections.
#[derive(Debug, Default)]
pub struct Connections {
    limits: HttpLimits,
    table: Mutex<Table>,
}

/// Why a connection was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Full,
    ReservedForPartners,
    TooManyFrom,
}

/// A connection counted while it lives.
struct Slot {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.connections.lock();
        table.open = table.open.saturating_sub(1);
        if let std::collections::hash_map::Entry::Occupied(mut from) = table.by_address.entry(self.ip) {
            *from.get_mut() -= 1;
            if *from.get() == 0 {
                from.remove();
            }
        }
    }
}

impl Connections {
    /// Counts under `limits`.
    pub fn new(limits: HttpLimits) -> Arc<Self> {
        Arc::new(Connections { limits, table: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut table = self.lock();
        let limits = &self.limits;
        if table.open >= limits.max_connections {
            return Err(Refusal::Full);
        }
        let partner = table.partners.contains(&ip);
        if !partner && table.open >= limits.max_connections.saturating_sub(limits.reserved_for_partners) {
            return Err(Refusal::ReservedForPartners);
        }
        let from = table.by_address.entry(ip).or_default();
        if *from >= limits.max_connections_per_address {
            return Err(Refusal::TooManyFrom);
        }
        *from += 1;
        table.open += 1;
        Ok(Slot { connections: self.clone(), ip })
    }

    /// Remembers `ip` as a court partner's address: it may use the reserved slots.
    pub fn mark_partner(&self, ip: IpAddr) {
        let mut table = self.lock();
        if table.partners.insert(ip) {
            table.partner_order.push_back(ip);
            if table.partner_order.len() > MAX_PARTNER_ADDRESSES
                && let Some(oldest) = table.partner_order.pop_front()
            {
                table.partners.remove(&oldest);
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open
    }
}

/// A request body that fails once `limit` has passed since its header arrived.
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

/// A body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub struct BodyTimedOut(Duration);

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(axum::Error::new)));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(this.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on `listener` (HTTPS with `tls`) under `connections`' limits until
/// `shutdown` completes; then stops accepting, lets requests in flight finish
/// (at most 30 s), and returns. Handlers read the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let tls = tls.map(TlsAcceptor::from);
    let mut running = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(message = "accept failed", %error);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let slot = match connections.admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        tracing::debug!(message = "connection refused at accept", %peer, reason = ?refusal);
                        drop(tcp);
                        continue;
                    }
                };
                let connection = Connection {
                    router: router.clone(),
                    tls: tls.clone(),
                    connections: connections.clone(),
                    stopping: stopping.clone(),
                };
                running.spawn(connection.run(tcp, peer, slot));
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = async { while running.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(30), drained).await.is_err() {
        running.shutdown().await;
    }
    Ok(())
}

/// What one connection needs.
struct Connection {
    router: Router,
    tls: Option<TlsAcceptor>,
    connections: Arc<Connections>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, tcp: TcpStream, peer: SocketAddr, slot: Slot) {
        let _ = tcp.set_nodelay(true);
        match self.tls.clone() {
            None => self.http(tcp, peer).await,
            Some(acceptor) => match tokio::time::timeout(self.connections.limits.handshake, acceptor.accept(tcp)).await
            {
                Ok(Ok(stream)) => self.http(stream, peer).await,
                Ok(Err(error)) => tracing::info!(message = "TLS handshake refused", %peer, %error),
                Err(_) => tracing::info!(message = "TLS handshake timed out", %peer),
            },
        }
        drop(slot);
    }

    async fn http<S>(self, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection { router, connections, mut stopping, .. } = self;
        let limits = connections.limits;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let router = router.clone();
            let connections = connections.clone();
            request.extensions_mut().insert(ConnectInfo(peer));
            let court_push = request.method() == hyper::Method::POST && request.uri().path().starts_with("/api/court/");
            let request = request.map(|body| {
                let sleep = Box::pin(tokio::time::sleep(limits.body_read));
                Body::new(Deadline { inner: body, sleep, limit: limits.body_read })
            });
            async move {
                let response = router.oneshot(request).await;
                if court_push && response.as_ref().is_ok_and(|r| r.status().is_success()) {
                    connections.mark_partner(peer.ip());
                }
                response
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read).max_buf_size(64 << 10);
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(message = "connection ended", %peer, %error);
                }
                return;
            }
            _ = stopping.wait_for(|stop| *stop) => {}
        }
        connection.as_mut().graceful_shutdown();
        if let Err(error) = connection.await {
            tracing::debug!(message = "connection ended", %peer, %error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_address: usize, reserved: usize) -> HttpLimits {
        HttpLimits {
            max_connections: max,
            max_connections_per_address: per_address,
            reserved_for_partners: reserved,
            ..HttpLimits::default()
        }
    }

    #[test]
    fn connections_are_counted_per_address_and_in_total_with_room_for_partners() {
        let table = Connections::new(limits(10, 4, 3));
        let (a, b, court): (IpAddr, IpAddr, IpAddr) =
            ([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), [10, 0, 0, 9].into());
        let from_a: Vec<Slot> = (0..4).map(|_| table.admit(a).expect("under the per-address cap")).collect();
        assert_eq!(table.admit(a).err(), Some(Refusal::TooManyFrom));
        let from_b: Vec<Slot> = (0..3).map(|_| table.admit(b).expect("under the unreserved slots")).collect();
        assert_eq!(table.open(), 7);
        // 7 of 10 open, 3 reserved: an unknown address is refused, a partner's is not.
        assert_eq!(table.admit(court).err(), Some(Refusal::ReservedForPartners));
        table.mark_partner(court);
        let from_court: Vec<Slot> = (0..3).map(|_| table.admit(court).expect("a reserved slot")).collect();
        assert_eq!(table.admit(court).err(), Some(Refusal::Full));
        drop(from_a);
        assert_eq!(table.open(), 6);
        assert!(table.admit(a).is_ok());
        drop((from_b, from_court));
        assert_eq!(table.open(), 0);
        assert!(table.lock().by_address.is_empty());
    }

    /// Serves a router that echoes a POST's body length, under `limits`, on a free port.
    async fn echo(limits: HttpLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, Arc<Connections>) {
        let router =
            Router::new().route("/echo", axum::routing::post(|body: Bytes| async move { body.len().to_string() }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Connections::new(limits);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let counted = connections.clone();
        tokio::spawn(serve(listener, router, None, connections, async move {
            let _ = stopped.await;
        }));
        (addr, stop, counted)
    }

    /// Reads until the server closes the connection; the time it took.
    async fn until_closed(socket: &mut TcpStream) -> Duration {
        use tokio::io::AsyncReadExt as _;
        let started = std::time::Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return started.elapsed(),
                Ok(Ok(_)) => {}
                Err(_) => return Duration::MAX,
            }
        }
    }

    #[tokio::test]
    async fn slow_headers_slow_bodies_and_idle_keep_alives_are_closed_at_their_deadlines() {
        use tokio::io::AsyncWriteExt as _;
        let limits = HttpLimits {
            header_read: Duration::from_millis(600),
            body_read: Duration::from_millis(600),
            ..HttpLimits::default()
        };
        let (addr, stop, connections) = echo(limits).await;
        // Half a header.
        let mut half = TcpStream::connect(addr).await.expect("connect");
        half.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n").await.expect("write");
        // A whole header and part of its body.
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            .await
            .expect("write");
        // A request answered, then nothing: an idle keep-alive connection.
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        idle.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").await.expect("write");
        for (name, socket) in [("half header", &mut half), ("slow body", &mut slow), ("idle keep-alive", &mut idle)] {
            let took = until_closed(socket).await;
            assert!(took < Duration::from_secs(3), "{name}: closed after {took:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(connections.open(), 0, "every slot is given back");
        // A client that sends at once is served.
        let mut quick = TcpStream::connect(addr).await.expect("connect");
        quick
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
            .await
            .expect("write");
        let mut answer = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut quick, &mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\n5"), "{answer}");
        let _ = stop.send(());
    }

    #[tokio::test]
    async fn one_address_cannot_take_every_slot() {
        let limits = HttpLimits { max_connections_per_address: 5, ..HttpLimits::default() };
        let (addr, stop, connections) = echo(limits).await;
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(TcpStream::connect(addr).await.expect("connect"));
        }
        // The sixth from the same address is closed at once, without a byte read from it.
        let mut sixth = TcpStream::connect(addr).await.expect("connect");
        assert!(until_closed(&mut sixth).await < Duration::from_secs(1));
        assert_eq!(connections.open(), 5);
        drop(held);
        let _ = stop.send(());
    }
}
