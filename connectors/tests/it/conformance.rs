//! `partner check` against the simulated partners: every kind passes when the
//! partner keeps its contract (with 503s and their Retry-After thrown in), and
//! a partner serving broken records or an unordered stream fails, with the
//! check and the offending records named.

use std::time::Duration;

use chrono::NaiveDate;
use connectors::conformance::{CheckOptions, PartnerKind, Report, check};
use simulator::caseflow::{Flow, FlowParams, generate};
use simulator::servers::PartnerServers;
use simulator::servers::faults::Faults;

/// A flow whose applicants' ID numbers all pass their check (the simulator
/// plants bad check digits by default; `identifiers` names those).
fn flow() -> Flow {
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 11);
    params.yearly_volume = 2500;
    params.anomalies.bad_check_digit = 0.0;
    generate(&params)
}

async fn serve(flow: &Flow, faults: Faults) -> PartnerServers {
    let today = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    simulator::servers::start("127.0.0.1:0".parse().expect("addr"), flow, today, faults, 11).await.expect("servers")
}

fn options(base_url: &str, token: Option<&str>) -> CheckOptions {
    // Small pages, so both reads cross many page boundaries at different places.
    CheckOptions { page_sizes: (400, 397), max_wait: Duration::from_secs(2), ..CheckOptions::new(base_url, token) }
}

fn failed<'a>(report: &'a Report, id: &str) -> Vec<&'a connectors::conformance::Check> {
    report.checks.iter().filter(|c| c.id == id && !c.passed).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_simulated_partner_passes_its_conformance_check() {
    let flow = flow();
    // 503s with Retry-After: 1 are part of a conforming partner's life.
    let servers = serve(&flow, Faults { error_rate: 0.05, ..Faults::default() }).await;
    let mut kinds = vec![
        (PartnerKind::Registry, servers.registry_url(), None),
        (PartnerKind::Housing, servers.housing_url(), None),
        (PartnerKind::ProvidentFund, servers.gjj_url(), None),
        (PartnerKind::CourtPlatform, servers.court_url(), None),
    ];
    let code = simulator::servers::lenders::bank_codes(&flow).into_iter().next().expect("a bank");
    kinds.push((PartnerKind::Bank, servers.bank_url(&code), Some(simulator::servers::lenders::bank_token(&code))));
    for (kind, url, token) in kinds {
        let report = check(kind, &options(&url, token.as_deref())).await;
        assert!(report.passed(), "{}", report.render(true));
        assert!(report.records > 0, "{kind:?} read nothing");
        // Both languages name every check.
        assert!(report.render(false).contains("全部检查通过"));
        let json = report.to_json();
        assert_eq!(json["passed"], true);
        assert_eq!(json["checks"].as_array().expect("checks").len(), report.checks.len());
    }
    servers.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_serving_broken_records_and_an_unordered_stream_fails_naming_the_fault() {
    let flow = flow();
    let servers = serve(&flow, Faults { malformed_rate: 0.02, out_of_order_rate: 0.02, ..Faults::default() }).await;

    let registry = check(PartnerKind::Registry, &options(&servers.registry_url(), None)).await;
    assert!(!registry.passed());
    assert!(failed(&registry, "identifiers").is_empty(), "no bad check digits planted here");
    let decode = failed(&registry, "decode");
    assert!(
        decode.iter().any(|c| c.feed == "cases" && c.samples.iter().any(|s| s.contains("sqlx"))),
        "{}",
        registry.render(true)
    );
    let order = failed(&registry, "order");
    assert!(order.iter().any(|c| c.feed == "cases" && !c.samples.is_empty()), "{}", registry.render(true));
    assert!(registry.render(false).contains("不通过"));
    servers.stop().await.expect("stop");

    // ID numbers failing their check digit: named with the field and the rule.
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 11);
    params.yearly_volume = 2500;
    params.anomalies.bad_check_digit = 0.01;
    let servers = serve(&generate(&params), Faults::default()).await;
    let flawed = check(PartnerKind::Registry, &options(&servers.registry_url(), None)).await;
    let identifiers = failed(&flawed, "identifiers");
    assert!(
        identifiers.iter().any(|c| c.samples.iter().any(|s| s.contains("sqr[0].zjh: check_digit"))),
        "{}",
        flawed.render(true)
    );
    servers.stop().await.expect("stop");
    let servers = serve(&flow, Faults { malformed_rate: 0.02, ..Faults::default() }).await;

    let gjj = check(PartnerKind::ProvidentFund, &options(&servers.gjj_url(), None)).await;
    assert!(
        failed(&gjj, "decode").iter().any(|c| c.samples.iter().any(|s| s.contains("malformed"))),
        "{}",
        gjj.render(true)
    );

    let housing = check(PartnerKind::Housing, &options(&servers.housing_url(), None)).await;
    assert!(!housing.passed(), "{}", housing.render(true));
    servers.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_partner_fails_every_read_instead_of_passing_on_nothing() {
    let report = check(PartnerKind::Registry, &options("http://127.0.0.1:9/registry/v1", None)).await;
    assert!(!report.passed());
    assert!(
        !failed(&report, "encoding").is_empty() || !failed(&report, "paging").is_empty(),
        "{}",
        report.render(true)
    );
}
