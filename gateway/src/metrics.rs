//! Prometheus metrics at `GET /metrics` (text exposition format 0.0.4):
//!
//! - `wangban_http_requests_total{route,method,status}` and
//!   `wangban_http_request_duration_seconds{route,method}` (histogram), for
//!   every route of the service (dashboards included), labelled by the matched
//!   route pattern so case numbers never become label values;
//! - per connector, read from the store at scrape time: records, errors and
//!   quarantined totals, last-run rows/s, lag behind the source, up (ok or not);
//! - seizures by state.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Upper bounds of the latency buckets, seconds.
pub const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Requests answered, by (route pattern, method, status).
type StatusCounts = BTreeMap<(String, String, u16), u64>;

/// Request counters and latency histograms, shared by every handler.
#[derive(Debug, Default, Clone)]
pub struct HttpMetrics {
    by_status: Arc<Mutex<StatusCounts>>,
    latency: Arc<Mutex<BTreeMap<(String, String), Series>>>,
}

impl HttpMetrics {
    /// Records one answered request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        if let Ok(mut map) = self.by_status.lock() {
            *map.entry((route.to_owned(), method.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut map) = self.latency.lock() {
            let series = map.entry((route.to_owned(), method.to_owned())).or_default();
            series.count += 1;
            series.sum += seconds;
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    series.buckets[i] += 1;
                }
            }
        }
    }

    /// The request metrics in exposition format.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP wangban_http_requests_total HTTP requests answered, by route pattern, method and status.\n",
        );
        out.push_str("# TYPE wangban_http_requests_total counter\n");
        if let Ok(map) = self.by_status.lock() {
            for ((route, method, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "wangban_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP wangban_http_request_duration_seconds Time to answer, by route pattern and method.\n");
        out.push_str("# TYPE wangban_http_request_duration_seconds histogram\n");
        if let Ok(map) = self.latency.lock() {
            for ((route, method), s) in map.iter() {
                let labels = format!("route=\"{}\",method=\"{method}\"", escape(route));
                for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                    let _ =
                        writeln!(out, "wangban_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
                }
                let _ =
                    writeln!(out, "wangban_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", s.count);
                let _ = writeln!(out, "wangban_http_request_duration_seconds_sum{{{labels}}} {}", s.sum);
                let _ = writeln!(out, "wangban_http_request_duration_seconds_count{{{labels}}} {}", s.count);
            }
        }
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Middleware: times every request and counts it under its route pattern.
pub async fn track(metrics: HttpMetrics, mut request: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let id = request_id(request.headers());
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    metrics.observe(&route, &method, status, seconds);
    span.in_scope(|| tracing::info!(message = "answered", status, ms = (seconds * 1000.0 * 10.0).round() / 10.0));
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The response header (and accepted request header) carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// The id of the request being handled, as an extension handlers can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The caller's `x-request-id` when it is short and plain (so a proxy's id
/// follows the request through the logs), else a new random one.
fn request_id(headers: &header::HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(
            || {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                let n = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("{:x}-{n:x}", nanos as u64 & 0xffff_ffff_ffff)
            },
            str::to_owned,
        )
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    state.http_metrics.render(&mut out);
    let now = (state.clock)();
    match state.store.all_connector_states().await {
        Ok(states) => {
            let families: [(&str, &str, &str); 6] = [
                ("wangban_connector_records_total", "counter", "Records written by the connector, all runs."),
                ("wangban_connector_errors_total", "counter", "Failed connector runs."),
                ("wangban_connector_quarantined_total", "counter", "Records the connector quarantined."),
                ("wangban_connector_rows_per_second", "gauge", "Rows per second of the last run."),
                ("wangban_connector_lag_seconds", "gauge", "Time since the newest source change the cursor covers."),
                ("wangban_connector_up", "gauge", "1 when the last run succeeded."),
            ];
            for (name, kind, help) in families {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for s in &states {
                    let value = match name {
                        "wangban_connector_records_total" => s.records_total as f64,
                        "wangban_connector_errors_total" => s.errors_total as f64,
                        "wangban_connector_quarantined_total" => s.quarantined_total as f64,
                        "wangban_connector_rows_per_second" => s.last_run_rate(),
                        "wangban_connector_lag_seconds" => match s.lag(now) {
                            Some(lag) => lag.num_milliseconds() as f64 / 1000.0,
                            None => continue,
                        },
                        _ => f64::from(u8::from(s.status == "ok")),
                    };
                    let _ = writeln!(out, "{name}{{connector=\"{}\"}} {value}", escape(&s.connector));
                }
            }
        }
        Err(e) => tracing::warn!(message = "metrics: connector states unavailable", error = %e),
    }
    match state.store.seizure_counts().await {
        Ok(counts) => {
            out.push_str("# HELP wangban_seizures Seizure register entries by state.\n# TYPE wangban_seizures gauge\n");
            for (seizure_state, n) in counts {
                let _ = writeln!(out, "wangban_seizures{{state=\"{}\"}} {n}", escape(&seizure_state));
            }
        }
        Err(e) => tracing::warn!(message = "metrics: seizure counts unavailable", error = %e),
    }
    for source in &state.extra_metrics {
        out.push_str(&source(now));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_every_bucket_at_or_above_it() {
        let m = HttpMetrics::default();
        m.observe("/api/court/v1/orders", "POST", 200, 0.004);
        m.observe("/api/court/v1/orders", "POST", 422, 2.0);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains(r#"wangban_http_requests_total{route="/api/court/v1/orders",method="POST",status="422"} 1"#)
        );
        assert!(out.contains(r#"le="0.0025"} 0"#));
        assert!(out.contains(r#"le="0.005"} 1"#));
        assert!(out.contains(r#"le="5"} 2"#));
        assert!(
            out.contains(
                r#"wangban_http_request_duration_seconds_count{route="/api/court/v1/orders",method="POST"} 2"#
            )
        );
    }
}
