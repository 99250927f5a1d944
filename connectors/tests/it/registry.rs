//! The registry connector pulls the simulated case feed: exact counts, bad
//! rows in quarantine, re-deliveries and older snapshots harmless, faults
//! retried, outages survived with the cursor where it was.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use connectors::fetch::RetryPolicy;
use connectors::poll::{RunOptions, poll_once};
use connectors::registry::{Registry, RegistryFeed};
use simulator::caseflow::{Anomaly, Flow, FlowParams, generate};
use simulator::servers::faults::Faults;
use store::{Store, both_backends};

fn flow() -> Flow {
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 21);
    params.yearly_volume = 2500;
    params.anomalies.bad_check_digit = 0.01;
    params.anomalies.duplicate_delivery = 0.03;
    params.anomalies.late_correction = 0.03;
    generate(&params)
}

fn source(base_url: String) -> Registry {
    Registry {
        name: "registry".into(),
        base_url,
        feed: RegistryFeed::Cases,
        page_size: 300,
        policy: RetryPolicy {
            attempts: 12,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            timeout: Duration::from_secs(5),
        },
        client: reqwest::Client::new(),
    }
}

async fn serve(flow: &Flow, faults: Faults) -> simulator::servers::PartnerServers {
    let today = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    simulator::servers::start("127.0.0.1:0".parse().expect("addr"), flow, today, faults, 3).await.expect("servers")
}

fn bad_check_digits(flow: &Flow) -> HashSet<&str> {
    flow.anomalies
        .iter()
        .filter_map(|a| match a {
            Anomaly::BadCheckDigit { case } => Some(case.as_str()),
            _ => None,
        })
        .collect()
}

async fn pulls_everything_exactly_once_and_quarantines_bad_rows(store: Store) {
    let flow = flow();
    let faults = Faults { error_rate: 0.2, truncate_rate: 0.1, out_of_order_rate: 0.02, ..Faults::default() };
    let servers = serve(&flow, faults).await;
    let source = source(servers.registry_url());
    let now = Utc.with_ymd_and_hms(2025, 1, 1, 1, 0, 0).single().expect("time");
    let outcome = poll_once(&source, &store, RunOptions::new(now)).await.expect("poll");
    assert_eq!(outcome.error, None, "faults are retried through");
    let bad = bad_check_digits(&flow);
    let counts = store.table_counts().await.expect("counts");
    // A case whose applicant's ID number fails its check happened all the
    // same: it is kept (and counted), its flaw recorded as a finding.
    assert_eq!(counts.cases as usize, flow.cases.len(), "every case, once");
    assert_eq!(outcome.quarantined, 0);
    let findings = store.count_data_findings().await.expect("findings");
    let flawed: i64 =
        findings.iter().filter(|f| f.source == "registry" && f.field == "sqr[0].zjh").map(|f| f.records).sum();
    assert_eq!(flawed as usize, bad.len(), "{findings:?}");
    for case in &bad {
        let stored = store.get_case("registry", case).await.expect("get").expect("kept");
        assert!(stored.record.applicant_id_no.contains('*'), "the flawed number is kept masked");
    }
    assert!(outcome.unchanged > 0, "duplicated deliveries change nothing");
    assert!(outcome.stale > 0, "older snapshots after newer ones are ignored");
    for anomaly in &flow.anomalies {
        if let Anomaly::LateCorrection { case } = anomaly {
            let stored = store.get_case("registry", case).await.expect("get").expect("present");
            assert_ne!(stored.record.district, "430400", "the correction wins");
        }
    }
    let state = store.connector_state("registry").await.expect("state");
    assert_eq!(state.status, "ok");
    assert!(state.cursor.is_some());

    // A second run starts from the saved cursor: nothing new.
    let again = poll_once(&source, &store, RunOptions::new(now)).await.expect("poll again");
    assert_eq!(again.rows(), 0);
    assert_eq!(store.table_counts().await.expect("counts").cases, counts.cases);

    // An outage: the run ends degraded, the cursor does not move; afterwards it resumes.
    let cursor = state.cursor.clone();
    servers.set_faults(Faults { outage: true, ..Faults::default() });
    let down = poll_once(&source, &store, RunOptions::new(now)).await.expect("poll during outage");
    assert!(down.error.is_some());
    let degraded = store.connector_state("registry").await.expect("state");
    assert_eq!((degraded.status.as_str(), degraded.cursor.clone()), ("degraded", cursor));
    servers.set_faults(Faults::default());
    let back = poll_once(&source, &store, RunOptions::new(now)).await.expect("poll after outage");
    assert_eq!(back.error, None);
    assert_eq!(store.connector_state("registry").await.expect("state").status, "ok");
    servers.stop().await.expect("stop");
}

async fn malformed_rows_are_quarantined_and_the_page_goes_on(store: Store) {
    let flow = flow();
    let faults = Faults { malformed_rate: 0.05, ..Faults::default() };
    let servers = serve(&flow, faults).await;
    let now = Utc.with_ymd_and_hms(2025, 1, 1, 1, 0, 0).single().expect("time");
    let outcome = poll_once(&source(servers.registry_url()), &store, RunOptions::new(now)).await.expect("poll");
    let missing = store
        .list_quarantine(Some("registry"), true, 10_000)
        .await
        .expect("quarantine")
        .into_iter()
        .filter(|q| q.reason_code == "missing_field" && q.reason.contains("sqlx"))
        .count();
    assert!(missing > 0);
    assert_eq!(
        outcome.rows() as usize,
        flow.cases.len()
            + flow
                .anomalies
                .iter()
                .filter(|a| matches!(a, Anomaly::DuplicateDelivery { .. } | Anomaly::LateCorrection { .. }))
                .count()
    );
    servers.stop().await.expect("stop");
}

both_backends!(
    pulls_everything_exactly_once_and_quarantines_bad_rows,
    malformed_rows_are_quarantined_and_the_page_goes_on
);
