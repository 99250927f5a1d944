//! The HTTP port under a slow-socket flood: court pushes, the partner APIs and
//! the pages share `serve`'s listener, so 600 sockets that send half a request
//! header from another host must neither hold file descriptors past the
//! header deadline nor keep a signed court order from its receipt.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{Order, TestApp, both_backends};

both_backends!(half_headers_do_not_keep_court_orders_out);

async fn half_headers_do_not_keep_court_orders_out(app: &TestApp) {
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..600 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::from(([127, 0, 0, 2], 0))).expect("bind 127.0.0.2");
        let mut stream = socket.connect(app.addr).await.expect("connect");
        // A refused socket may be closed before this arrives.
        let _ = stream.write_all(b"POST /api/court/v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n").await;
        slow.push(stream);
    }
    // A signed court order still gets its receipt at once, and /healthz answers.
    let started = Instant::now();
    let (status, receipt) = app.post(&Order::default().document()).await;
    assert_eq!(status, 200, "{receipt}");
    assert!(receipt.contains("SEIZED"), "{receipt}");
    let health = reqwest::get(format!("http://{}/healthz", app.addr)).await.expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "the push and /healthz took {:?}", started.elapsed());

    // Every slow socket is closed within the header deadline (10 s by default).
    let deadline = opened + gateway::listen::HttpLimits::default().header_read + Duration::from_secs(3);
    let mut buf = [0u8; 512];
    for (i, stream) in slow.iter_mut().enumerate() {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) => panic!("slow socket {i} is still open {:?} after it connected", opened.elapsed()),
            }
        }
    }
}
