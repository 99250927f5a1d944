//! The compliance test every connector passes, on SQLite and PostgreSQL,
//! against the simulated partners: happy path with exact counts; resume
//! after runs cut off mid-page (the store ends identical to an
//! uninterrupted run); outage then recovery with the cursor held; malformed
//! rows to quarantine; truncated bodies never advancing a cursor; and the
//! daily reconciliation finding exactly the anomalies the simulator planted.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use connectors::fetch::RetryPolicy;
use connectors::poll::{Outcome, RunOptions, Source as _};
use connectors::runner::{Connector, Kind, Spec, build};
use domain::ident::{CreditCode, ResidentId};
use simulator::caseflow::{Anomaly, Flow, FlowParams, generate};
use simulator::servers::PartnerServers;
use simulator::servers::faults::Faults;
use store::{Store, both_backends};

fn flow() -> Flow {
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 33);
    params.yearly_volume = 3000;
    params.anomalies.bad_check_digit = 0.01;
    params.anomalies.orphan_loan = 0.05;
    params.anomalies.recorded_on_seized_unit = 0.05;
    generate(&params)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 1, 0, 0).single().expect("time")
}

async fn serve(flow: &Flow, faults: Faults) -> PartnerServers {
    let today = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    simulator::servers::start("127.0.0.1:0".parse().expect("addr"), flow, today, faults, 5).await.expect("servers")
}

/// Every connector of the simulated partners, with fast retries and small pages.
fn connectors(flow: &Flow, servers: &PartnerServers, attempts: u32) -> Vec<Connector> {
    let mut specs = vec![
        Spec { kind: Kind::Registry, base_url: servers.registry_url(), schedule: "0 * * * *".into() },
        Spec { kind: Kind::Housing, base_url: servers.housing_url(), schedule: "0 * * * *".into() },
        Spec { kind: Kind::ProvidentFund, base_url: servers.gjj_url(), schedule: "0 * * * *".into() },
        Spec { kind: Kind::CourtPlatform, base_url: servers.court_url(), schedule: "0 * * * *".into() },
    ];
    for code in simulator::servers::lenders::bank_codes(flow) {
        specs.push(Spec {
            kind: Kind::Bank { id: code.clone(), token: simulator::servers::lenders::bank_token(&code) },
            base_url: servers.bank_url(&code),
            schedule: "0 * * * *".into(),
        });
    }
    let policy = RetryPolicy {
        attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        timeout: Duration::from_secs(5),
    };
    build(&specs)
        .expect("schedules")
        .into_iter()
        .map(|s| match s.connector {
            Connector::Registry(mut c) => {
                c.page_size = 400;
                c.policy = policy.clone();
                Connector::Registry(c)
            }
            Connector::Housing(mut c) => {
                c.policy = policy.clone();
                Connector::Housing(c)
            }
            Connector::Bank(mut c) => {
                c.page_size = 50;
                c.policy = policy.clone();
                Connector::Bank(c)
            }
            Connector::ProvidentFund(mut c) => {
                c.policy = policy.clone();
                Connector::ProvidentFund(c)
            }
            Connector::CourtPlatform(mut c) => {
                c.page_size = 40;
                c.policy = policy.clone();
                Connector::CourtPlatform(c)
            }
            // The registry's feeds and the banks run from their shipped adapters.
            Connector::Partner(p) => {
                let size = if p.name().starts_with("bank:") { ("page_size", "50") } else { ("limit", "400") };
                Connector::Partner(p.with_http(policy.clone(), &[size]))
            }
        })
        .collect()
}

async fn run_all(connectors: &[Connector], store: &Store) -> Vec<(String, Outcome)> {
    let mut outcomes = Vec::new();
    for c in connectors {
        let outcome = c.run(store, RunOptions::new(now())).await.expect("run");
        outcomes.push((c.name().to_owned(), outcome));
    }
    outcomes
}

/// Whether a party's ID passes (a person's resident ID or an enterprise's credit code).
/// A number that is a resident ID but for its check character is not taken
/// for an all-digit credit code.
fn valid_party(id: &str) -> bool {
    match ResidentId::parse(id) {
        Ok(_) => true,
        Err(domain::ident::IdentError::CheckDigit { .. }) => false,
        Err(_) => CreditCode::parse(id).is_ok(),
    }
}

async fn every_connector_pulls_everything_exactly_once(store: Store) {
    let flow = flow();
    let servers = serve(&flow, Faults { error_rate: 0.1, truncate_rate: 0.05, ..Faults::default() }).await;
    let all = connectors(&flow, &servers, 12);
    for (name, outcome) in run_all(&all, &store).await {
        assert_eq!(outcome.error, None, "{name}: faults are retried through");
        assert_eq!(store.connector_state(&name).await.expect("state").status, "ok", "{name}");
    }
    let counts = store.table_counts().await.expect("counts");
    let bad: HashSet<&str> = flow
        .anomalies
        .iter()
        .filter_map(|a| match a {
            Anomaly::BadCheckDigit { case } => Some(case.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(counts.cases as usize, flow.cases.len(), "flawed cases are kept too");
    let findings = store.count_data_findings().await.expect("findings");
    let flawed = |source: &dyn Fn(&str) -> bool| -> usize {
        findings.iter().filter(|f| source(&f.source)).map(|f| f.records as usize).sum()
    };
    assert_eq!(flawed(&|s| s == "registry"), bad.len());
    // A loan or a filing whose party's ID fails its check is kept and flagged, like a case.
    let bad_borrowers = flow.loans.iter().filter(|l| !valid_party(&l.borrower_id_no)).count();
    assert_eq!(flawed(&|s| s.starts_with("bank:") || s == "provident_fund"), bad_borrowers);
    let bad_buyers = flow.filings.iter().filter(|f| !valid_party(&f.buyer_id_no)).count();
    assert_eq!(flawed(&|s| s == "housing"), bad_buyers);
    assert_eq!(counts.qc_findings as usize, flow.qc_findings.len());
    assert_eq!(counts.evaluations as usize, flow.evaluations.len());
    let filings: BTreeSet<&str> = flow.filings.iter().map(|f| f.filing_no.as_str()).collect();
    assert_eq!(counts.contract_filings as usize, filings.len(), "filings with a flawed buyer ID are kept too");
    assert_eq!(counts.loan_applications as usize, flow.loans.len(), "loans with a flawed borrower ID are kept too");
    assert_eq!(store.source_files("housing").await.expect("files").len(), {
        let days = flow.filings.iter().map(|f| domain::time::local_date(f.filed_at));
        let first = days.min().expect("some filings");
        usize::try_from((NaiveDate::from_ymd_opt(2025, 1, 1).expect("date") - first).num_days()).expect("days")
    });

    // Every court request answered to the platform, acknowledged.
    let requests: BTreeSet<String> = flow.court_requests.iter().map(|r| r.request_no.clone()).collect();
    let sent: BTreeSet<String> = servers.court_feedback().iter().map(|f| f.request_no.clone()).collect();
    assert_eq!(sent, requests, "feedback for every request");
    assert!(store.pending_feedback("court-platform", 10).await.expect("outbox").is_empty(), "all acknowledged");

    // A second pass finds nothing new anywhere, and sends nothing again.
    let feedback_before = servers.court_feedback().len();
    for (name, outcome) in run_all(&all, &store).await {
        assert_eq!((outcome.rows(), outcome.error), (0, None), "{name}: nothing new");
    }
    assert_eq!(store.table_counts().await.expect("counts"), counts);
    assert_eq!(servers.court_feedback().len(), feedback_before);

    // Reconciliation: exactly the planted orphan loans (old enough) and transfers/mortgages on seized units.
    let cutoff = Utc.with_ymd_and_hms(2024, 12, 20, 16, 0, 0).single().expect("time");
    let report =
        store.reconcile(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), cutoff, now()).await.expect("reconcile");
    let found: BTreeSet<(String, String)> =
        store.anomalies(None).await.expect("anomalies").into_iter().map(|a| (a.kind, a.subject)).collect();
    let loans_by_id: std::collections::HashMap<&str, _> =
        flow.loans.iter().map(|l| (l.external_id.as_str(), l)).collect();
    let planted: BTreeSet<(String, String)> = flow
        .anomalies
        .iter()
        .filter_map(|a| match a {
            Anomaly::OrphanLoan { loan } => {
                let l = loans_by_id[loan.as_str()];
                (l.applied_at < cutoff).then(|| ("orphan_loan".to_owned(), loan.clone()))
            }
            Anomaly::RecordedOnSeizedUnit { case, .. } => Some(("recorded_on_seized_unit".to_owned(), case.clone())),
            _ => None,
        })
        // A loan or filing with a broken ID number is kept and flagged now, so a
        // case citing it finds it: no unknown_loan or unknown_filing is planted.
        .collect();
    assert!(planted.iter().any(|(k, _)| k == "orphan_loan"));
    assert!(planted.iter().any(|(k, _)| k == "recorded_on_seized_unit"));
    assert_eq!(found, planted, "exactly the planted anomalies");
    assert_eq!(report.found, planted.len());
    assert!(report.partners.iter().any(|p| p.partner == "housing" && p.submitted > 0));
    servers.stop().await.expect("stop");
}

async fn cut_off_runs_resume_to_the_same_store(store: Store) {
    let flow = flow();
    let servers = serve(&flow, Faults::default()).await;
    let all = connectors(&flow, &servers, 3);
    // The reference: one uninterrupted run on a separate database of the same backend.
    let reference = store::testing::TestDatabase::like(&store).await.expect("reference db");
    run_all(&all, &reference.store).await;
    let expected = reference.store.records_fingerprint().await.expect("fingerprint");
    // Runs cut off at growing moments (futures dropped mid-page, as a kill would),
    // then resumed until each connector completes.
    for c in &all {
        let mut budget = Duration::from_millis(3);
        loop {
            match tokio::time::timeout(budget, c.run(&store, RunOptions::new(now()))).await {
                Ok(result) => {
                    let outcome = result.expect("run");
                    if outcome.error.is_none() && outcome.rows() == 0 {
                        break;
                    }
                }
                Err(_) => budget = budget.mul_f64(1.5),
            }
        }
    }
    assert_eq!(store.records_fingerprint().await.expect("fingerprint"), expected);
    assert_eq!(store.table_counts().await.expect("counts"), reference.store.table_counts().await.expect("counts"));
    reference.drop_database().await.expect("drop");
    servers.stop().await.expect("stop");
}

async fn outages_and_truncated_bodies_hold_the_cursor(store: Store) {
    let flow = flow();
    let servers = serve(&flow, Faults::default()).await;
    let all = connectors(&flow, &servers, 2);
    // Half the feeds in, then the partners go down.
    for c in &all {
        let options = RunOptions { now: now(), max_pages: 1, progress: &|_| {} };
        c.run(&store, options).await.expect("first page");
    }
    let before: Vec<_> = {
        let mut v = Vec::new();
        for c in &all {
            v.push(store.connector_state(c.name()).await.expect("state").cursor);
        }
        v
    };
    for faults in [Faults { outage: true, ..Faults::default() }, Faults { truncate_rate: 1.0, ..Faults::default() }] {
        servers.set_faults(faults);
        for (c, cursor) in all.iter().zip(&before) {
            let outcome = c.run(&store, RunOptions::new(now())).await.expect("run");
            assert!(outcome.error.is_some(), "{}: the fault is reported", c.name());
            let state = store.connector_state(c.name()).await.expect("state");
            assert_eq!(state.status, "degraded", "{}", c.name());
            assert_eq!(&state.cursor, cursor, "{}: the cursor holds", c.name());
        }
    }
    servers.set_faults(Faults::default());
    for (name, outcome) in run_all(&all, &store).await {
        assert_eq!(outcome.error, None, "{name} recovers");
        assert_eq!(store.connector_state(&name).await.expect("state").status, "ok");
    }
    servers.stop().await.expect("stop");
}

async fn malformed_rows_of_every_feed_go_to_quarantine(store: Store) {
    let flow = flow();
    let servers = serve(&flow, Faults { malformed_rate: 0.05, ..Faults::default() }).await;
    let all = connectors(&flow, &servers, 3);
    for (name, outcome) in run_all(&all, &store).await {
        assert_eq!(outcome.error, None, "{name}: the pages go on");
    }
    let reasons = |source: &'static str| {
        let store = store.clone();
        async move {
            store
                .list_quarantine(Some(source), true, 100_000)
                .await
                .expect("quarantine")
                .into_iter()
                .map(|q| q.reason_code)
                .collect::<BTreeSet<_>>()
        }
    };
    assert!(reasons("registry").await.contains("missing_field"));
    assert!(reasons("housing").await.contains("undecodable"), "a non-GBK line is kept, not guessed");
    assert!(reasons("provident_fund").await.contains("malformed"), "an unclosed element is one bad row");

    // A quarantined registry case, fixed by an operator, replays into the store.
    let entry = store
        .list_quarantine(Some("registry"), true, 100_000)
        .await
        .expect("quarantine")
        .into_iter()
        .find(|q| q.reason.contains("sqlx"))
        .expect("a case without sqlx");
    let mut fixed: serde_json::Value = serde_json::from_slice(&entry.payload).expect("json");
    assert!(connectors::replay::replay(&store, entry.id, None, now()).await.is_err(), "still bad as kept");
    fixed["sqlx"] = "2002".into();
    let bytes = fixed.to_string().into_bytes();
    connectors::replay::replay(&store, entry.id, Some(&bytes), now()).await.expect("replayed");
    let case = fixed["ywh"].as_str().expect("ywh");
    assert!(store.get_case("registry", case).await.expect("get").is_some());
    let again = connectors::replay::replay(&store, entry.id, Some(&bytes), now()).await;
    assert!(matches!(again, Err(connectors::replay::ReplayError::AlreadyReplayed(_))));
    servers.stop().await.expect("stop");
}

both_backends!(
    every_connector_pulls_everything_exactly_once,
    cut_off_runs_resume_to_the_same_store,
    outages_and_truncated_bodies_hold_the_cursor,
    malformed_rows_of_every_feed_go_to_quarantine,
);
