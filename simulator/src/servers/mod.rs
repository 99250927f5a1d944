//! Partner servers on loopback, serving a generated [`Flow`](crate::caseflow::Flow)
//! through the partner contracts of `docs/partners.md`: the registry's
//! business system, the housing authority, the banks, the provident fund and
//! the courts' control platform. Each server can inject
//! faults ([`faults::Faults`]) for connector tests.
//!
//! [`start`] binds one listener (port 0 allowed) and serves every built
//! partner under its own path prefix.

pub mod court_platform;
pub mod faults;
pub mod housing;
pub mod lenders;
pub mod registry;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::caseflow::Flow;

/// Running partner servers.
#[derive(Debug)]
pub struct PartnerServers {
    /// Where they listen.
    pub addr: SocketAddr,
    court: Arc<court_platform::Platform>,
    faults: Arc<faults::FaultState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl PartnerServers {
    /// Base URL of the registry's business system.
    pub fn registry_url(&self) -> String {
        format!("http://{}/registry/v1", self.addr)
    }

    /// Base URL of the housing authority.
    pub fn housing_url(&self) -> String {
        format!("http://{}/housing/v1", self.addr)
    }

    /// Base URL of a bank (its feed is under `/bank/v1/…`).
    pub fn bank_url(&self, code: &str) -> String {
        format!("http://{}/banks/{code}", self.addr)
    }

    /// Base URL of the courts' control platform.
    pub fn court_url(&self) -> String {
        format!("http://{}/court/v1", self.addr)
    }

    /// Changes the request-time faults while serving (e.g. start or end an outage).
    pub fn set_faults(&self, faults: faults::Faults) {
        self.faults.set(faults);
    }

    /// Feedback the control platform has received.
    pub fn court_feedback(&self) -> Vec<court_platform::Feedback> {
        self.court.feedback()
    }

    /// Base URL of the provident fund.
    pub fn gjj_url(&self) -> String {
        format!("http://{}/gjj/v1", self.addr)
    }

    /// Stops serving and waits for in-flight requests.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }
}

/// The router of every partner server over `flow`, with `faults` injected.
/// `published_until` is the simulated "today": housing files are published for the days before it.
pub fn router(
    flow: &Flow,
    published_until: chrono::NaiveDate,
    faults: faults::Faults,
    seed: u64,
    court: Arc<court_platform::Platform>,
) -> (Router, Arc<faults::FaultState>) {
    let data = faults.clone();
    let faults = Arc::new(faults::FaultState::new(faults, seed));
    let router = Router::new()
        .nest("/court/v1", court_platform::router(court))
        .nest("/registry/v1", registry::router(flow, &data, seed))
        .nest("/housing/v1", housing::router(flow, published_until, &data, seed))
        .nest("/gjj/v1", lenders::gjj_router(flow, &data, seed))
        .merge(lenders::banks_router(flow))
        .layer(axum::middleware::from_fn_with_state(faults.clone(), faults::inject));
    (router, faults)
}

/// Binds `listen` and serves the partner servers until [`PartnerServers::stop`].
pub async fn start(
    listen: SocketAddr,
    flow: &Flow,
    published_until: chrono::NaiveDate,
    faults: faults::Faults,
    seed: u64,
) -> std::io::Result<PartnerServers> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let court = court_platform::platform(flow);
    let (app, faults) = router(flow, published_until, faults, seed, court.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(PartnerServers { addr, court, faults, stop: Some(stop), task: Some(task) })
}

/// Helpers for the servers' tests: a small flow, servers on port 0.
#[cfg(test)]
pub(crate) mod testing {
    use chrono::NaiveDate;

    use super::{PartnerServers, faults::Faults, start};
    use crate::caseflow::{Flow, FlowParams, generate};

    /// A flow from 2024-01-01 to `to` at `volume` cases a year.
    pub(crate) fn flow(to: NaiveDate, seed: u64, volume: u32, tweak: impl FnOnce(&mut FlowParams)) -> Flow {
        let mut params = FlowParams::new(to, seed);
        params.yearly_volume = volume;
        tweak(&mut params);
        generate(&params)
    }

    /// GETs `url` (with a bearer token if given) and parses the body as JSON.
    pub(crate) async fn get_json(url: &str, bearer: Option<&str>) -> serde_json::Value {
        let mut request = reqwest::Client::new().get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("send").json().await.expect("json")
    }

    /// The servers over `flow` on a free port, "today" being the day after `to`.
    pub(crate) async fn serve(flow: &Flow, today: NaiveDate, faults: Faults) -> PartnerServers {
        start("127.0.0.1:0".parse().expect("addr"), flow, today, faults, 1).await.expect("start partner servers")
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use sha2::{Digest, Sha256};

    use super::faults::Faults;
    use super::testing;

    #[tokio::test]
    async fn data_faults_reach_every_feed_and_outages_switch_at_run_time() {
        let flow = testing::flow(NaiveDate::from_ymd_opt(2024, 6, 30).expect("date"), 9, 6000, |_| {});
        let faults = Faults { malformed_rate: 0.1, out_of_order_rate: 0.05, ..Faults::default() };
        let servers = testing::serve(&flow, NaiveDate::from_ymd_opt(2024, 7, 1).expect("date"), faults).await;

        let page = testing::get_json(&format!("{}/cases?limit=5000", servers.registry_url()), None).await;
        let records = page["data"].as_array().cloned().unwrap_or_default();
        let malformed = records.iter().filter(|r| r.get("sqlx").is_none()).count();
        assert!(malformed > 0 && malformed * 5 < records.len(), "{malformed} of {}", records.len());
        let mut newest: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let mut out_of_order = 0;
        for r in &records {
            let (ywh, gxsj) =
                (r["ywh"].as_str().unwrap_or_default().to_owned(), r["gxsj"].as_str().unwrap_or_default().to_owned());
            match newest.get(&ywh) {
                Some(seen) if *seen > gxsj => out_of_order += 1,
                _ => {
                    newest.insert(ywh, gxsj);
                }
            }
        }
        assert!(out_of_order > 0, "older snapshots arrive after newer ones");

        let listing = testing::get_json(&format!("{}/exports", servers.housing_url()), None).await;
        let listing = listing.as_array().cloned().unwrap_or_default();
        let mut undecodable = 0;
        for entry in listing.iter().filter(|e| e["rows"].as_u64() > Some(0)) {
            let bytes = reqwest::get(format!(
                "{}/exports/{}",
                servers.housing_url(),
                entry["file"].as_str().unwrap_or_default()
            ))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
            assert_eq!(hex::encode(Sha256::digest(&bytes)), entry["sha256"], "the listing describes the bytes served");
            undecodable += usize::from(super::housing::decode(&bytes).is_none());
        }
        assert!(undecodable > 0, "some files hold rows that are not GBK");

        let gjj = reqwest::get(format!("{}/loans", servers.gjj_url())).await.expect("get").bytes().await.expect("body");
        let (text, _, _) = encoding_rs::GB18030.decode(&gjj);
        assert!(text.matches("<DKBH>").count() > text.matches("</DKBH>").count(), "some loans are broken XML");

        servers.set_faults(Faults { outage: true, ..Faults::default() });
        assert_eq!(reqwest::get(format!("{}/cases", servers.registry_url())).await.expect("get").status(), 503);
        servers.set_faults(Faults::default());
        assert_eq!(reqwest::get(format!("{}/cases", servers.registry_url())).await.expect("get").status(), 200);
        servers.stop().await.expect("stop");
    }
}
