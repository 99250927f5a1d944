//! The court-push load generator: signed `<CourtOrder>` documents sent to the
//! gateway at a target rate (or as fast as the concurrency allows), with
//! throughput and latency percentiles reported. Orders are deterministic for
//! a seed: seizures spread over many units (so some queue behind others),
//! with a share of releases of earlier orders.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, Utc};
use domain::time::local_date;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use signing::sign;
use tokio::sync::Semaphore;

/// What to send.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Base URL of the gateway, e.g. `http://127.0.0.1:8080`.
    pub target: String,
    /// Court partner id.
    pub partner: String,
    /// The partner's secret.
    pub secret: String,
    /// Orders per second to aim for; `None` sends as fast as `concurrency` allows.
    pub rate: Option<f64>,
    /// Orders to send in all.
    pub count: u64,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Orders per request: 1 sends `<CourtOrder>`, more send `<CourtOrders>` batches.
    pub batch: usize,
    /// Distinct units the seizures are spread over.
    pub units: u32,
    /// Seed for the order stream.
    pub seed: u64,
}

/// What happened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushReport {
    /// Requests sent.
    pub requests: u64,
    /// Orders sent.
    pub orders: u64,
    /// Requests by HTTP status (0 = transport error).
    pub by_status: BTreeMap<u16, u64>,
    /// Wall time.
    pub elapsed: Duration,
    /// Request latencies in microseconds: p50, p90, p99, max.
    pub latency_us: [u64; 4],
}

impl PushReport {
    /// Orders per second over the whole run.
    pub fn orders_per_second(&self) -> f64 {
        self.orders as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let statuses: Vec<String> = self.by_status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        format!(
            "{} orders in {} requests, {:.2} s, {:.0} orders/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; statuses {{{}}}",
            self.orders,
            self.requests,
            self.elapsed.as_secs_f64(),
            self.orders_per_second(),
            self.latency_us[0] as f64 / 1000.0,
            self.latency_us[1] as f64 / 1000.0,
            self.latency_us[2] as f64 / 1000.0,
            self.latency_us[3] as f64 / 1000.0,
            statuses.join(", ")
        )
    }
}

/// One order of the stream: `i` numbers it; releases refer to an earlier seizure.
pub fn order_element(seed: u64, i: u64, units: u32, now: DateTime<Utc>, rng: &mut StdRng) -> String {
    let today = local_date(now);
    let unit = rng.random_range(0..units.max(1));
    let unit_no = format!("4304050010{:02}GB{:05}F0001{:04}", unit / 10_000 % 100, unit % 100_000, unit % 10_000);
    let release = i >= 10 && rng.random_bool(0.1);
    let order_no = format!("P{seed}-{i:08}");
    let served = crate::servers::registry::china(now);
    let body = if release {
        let original = rng.random_range(0..i);
        format!(
            "<Action>RELEASE</Action><UnitNo>{unit_no}</UnitNo><OriginalOrderNo>P{seed}-{original:08}</OriginalOrderNo>"
        )
    } else {
        let end = today + Days::new(rng.random_range(180..1000));
        format!(
            "<Action>SEIZE</Action><UnitNo>{unit_no}</UnitNo><StartDate>{today}</StartDate><EndDate>{end}</EndDate>"
        )
    };
    format!(
        "<CourtOrder><OrderNo>{order_no}</OrderNo><CourtCode>湘0405</CourtCode><CourtName>珠晖区人民法院</CourtName>\
         <CaseNo>(2024)湘0405执{}号</CaseNo>{body}<Respondent><Name>被执行人{}</Name><IdNo>11010519491231002X</IdNo></Respondent>\
         <RulingNo>(2024)湘0405执{}号之一</RulingNo><Judge>承办人</Judge><ServedAt>{}</ServedAt></CourtOrder>",
        i % 9000 + 1,
        i % 1000,
        i % 9000 + 1,
        served
    )
}

/// Why a load could not run.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// `--batch` outside 1 to 500 (the court API's limit).
    #[error("batch must be 1 to 500, not {0}")]
    Batch(usize),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The concurrency limiter closed (it is never closed while a load runs).
    #[error("the request limiter closed")]
    Limiter(#[from] tokio::sync::AcquireError),
    /// A request task panicked.
    #[error("a request task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs the load and reports. `clock` gives the time used in signatures and dates.
pub async fn run(config: &PushConfig, clock: impl Fn() -> DateTime<Utc>) -> Result<PushReport, PushError> {
    if config.batch == 0 || config.batch > 500 {
        return Err(PushError::Batch(config.batch));
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(config.concurrency.max(1)).build()?;
    let url = format!("{}/api/court/v1/orders", config.target.trim_end_matches('/'));
    let semaphore = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut rng = StdRng::seed_from_u64(config.seed);
    let start = Instant::now();
    let mut handles = Vec::new();
    let mut sent = 0u64;
    let mut requests = 0u64;
    while sent < config.count {
        let n = (config.count - sent).min(config.batch as u64);
        if let Some(rate) = config.rate {
            let due = start + Duration::from_secs_f64(sent as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let now = clock();
        let elements: Vec<String> =
            (sent..sent + n).map(|i| order_element(config.seed, i, config.units, now, &mut rng)).collect();
        let body = if config.batch == 1 {
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}", elements.concat())
        } else {
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CourtOrders>{}</CourtOrders>", elements.concat())
        };
        let signature = sign(&config.secret, now.timestamp(), body.as_bytes(), false);
        let permit = semaphore.clone().acquire_owned().await?;
        let request = client
            .post(&url)
            .header("content-type", "application/xml")
            .header("x-partner-id", &config.partner)
            .header("x-signature", signature)
            .body(body);
        handles.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let status = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    status
                }
                Err(_) => 0,
            };
            drop(permit);
            (status, t0.elapsed().as_micros() as u64)
        }));
        sent += n;
        requests += 1;
    }
    let mut by_status = BTreeMap::new();
    let mut latencies = Vec::with_capacity(handles.len());
    for handle in handles {
        let (status, micros) = handle.await?;
        *by_status.entry(status).or_insert(0) += 1;
        latencies.push(micros);
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pick = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    Ok(PushReport {
        requests,
        orders: sent,
        by_status,
        elapsed,
        latency_us: [pick(0.5), pick(0.9), pick(0.99), pick(1.0)],
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_stream_is_deterministic_and_its_orders_are_valid() {
        let now = Utc.with_ymd_and_hms(2024, 10, 8, 1, 0, 0).single().expect("time");
        let a: Vec<String> = {
            let mut rng = StdRng::seed_from_u64(7);
            (0..50).map(|i| order_element(7, i, 100, now, &mut rng)).collect()
        };
        let b: Vec<String> = {
            let mut rng = StdRng::seed_from_u64(7);
            (0..50).map(|i| order_element(7, i, 100, now, &mut rng)).collect()
        };
        assert_eq!(a, b);
        for element in &a {
            let unit = element.split("<UnitNo>").nth(1).and_then(|s| s.split("</UnitNo>").next()).expect("unit");
            assert!(domain::ident::UnitNo::parse(unit).is_ok(), "{unit}");
        }
    }
}
