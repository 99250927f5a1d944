//! Fault injection for the partner servers: added latency, a share of 5xx
//! answers (with `Retry-After`), a share of truncated bodies, outage windows
//! (switched on and off while running), and malformed or out-of-order
//! records (decided when the servers start). Seeded, so a test sees the same
//! faults each run.

use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which faults to inject.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Added to every answer.
    pub latency: Duration,
    /// Share of requests answered 503 with `Retry-After: 1`.
    pub error_rate: f64,
    /// Share of answers whose body is cut in half (the declared length is kept, so the client sees the cut).
    pub truncate_rate: f64,
    /// While true, every request gets 503: an outage.
    pub outage: bool,
    /// Share of records served malformed: a missing field (JSON), bytes that
    /// are not GBK (housing CSV), an unclosed element (provident-fund XML).
    /// Fixed when the servers start.
    pub malformed_rate: f64,
    /// Share of registry records followed later in the stream by an older
    /// snapshot of the same case. Fixed when the servers start.
    pub out_of_order_rate: f64,
}

/// Faults and the random source deciding them.
#[derive(Debug)]
pub struct FaultState {
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
}

impl FaultState {
    /// State for `faults`, seeded.
    pub fn new(faults: Faults, seed: u64) -> Self {
        Self { faults: Mutex::new(faults), rng: Mutex::new(StdRng::seed_from_u64(seed)) }
    }

    /// Replaces the request-time faults (latency, errors, truncation, outage).
    pub fn set(&self, faults: Faults) {
        if let Ok(mut current) = self.faults.lock() {
            *current = faults;
        }
    }

    fn roll(&self) -> f64 {
        self.rng.lock().map(|mut r| r.random()).unwrap_or(1.0)
    }
}

/// The middleware.
pub async fn inject(State(state): State<std::sync::Arc<FaultState>>, request: Request, next: Next) -> Response {
    let faults = state.faults.lock().map(|f| f.clone()).unwrap_or_default();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    if faults.outage || (faults.error_rate > 0.0 && state.roll() < faults.error_rate) {
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, "simulated outage").into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    let response = next.run(request).await;
    if faults.truncate_rate > 0.0 && state.roll() < faults.truncate_rate {
        let (mut parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        let half = bytes.slice(..bytes.len() / 2);
        // Declare the whole length and send half: the client sees an incomplete body.
        if let Ok(value) = HeaderValue::from_str(&bytes.len().to_string()) {
            parts.headers.insert(header::CONTENT_LENGTH, value);
        }
        return Response::from_parts(parts, Body::from(half));
    }
    response
}
