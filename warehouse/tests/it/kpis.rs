//! Golden KPI results for a fixed simulator seed, an independent
//! recomputation on the store, incremental refresh equal to a full rebuild,
//! and the read-only console's refusals and limits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::{BusinessType, Calendar, Catalogue};
use simulator::caseflow::{Flow, FlowParams, generate};
use store::{Store, both_backends};
use warehouse::console::{self, Limits};
use warehouse::datafusion::arrow::array::{RecordBatch, TimestampMicrosecondArray};
use warehouse::datafusion::arrow::compute::cast;
use warehouse::datafusion::arrow::datatypes::{DataType, Field, Schema};
use warehouse::datafusion::parquet::arrow::ArrowWriter;
use warehouse::datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use warehouse::export::{RefreshOptions, refresh};
use warehouse::kpi::{self, Dim, Kpi, KpiQuery, KpiRequest};
use warehouse::session::{register_snapshot, session_with_limit};

pub(crate) fn flow() -> Flow {
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 7);
    params.yearly_volume = 6000;
    generate(&params)
}

pub(crate) fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().expect("time")
}

pub(crate) fn options(now: DateTime<Utc>, full: bool) -> RefreshOptions {
    RefreshOptions {
        now,
        key: b"test-key".to_vec(),
        calendar: Calendar::builtin(),
        catalogue: Catalogue::builtin(),
        full,
    }
}

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wangban_test_wh_{name}_{}_{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Loads the flow up to `until` as the registry's feed shows it, through the
/// registry connector's decoders (not over HTTP: that path is
/// `kpis_through_the_connectors_equal_the_golden_files`).
pub(crate) async fn load(store: &Store, flow: &Flow, until: DateTime<Utc>, now: DateTime<Utc>) {
    use connectors::registry::{parse_case, parse_evaluation, parse_qc_finding};
    use simulator::servers::registry::{case_json, evaluation_json, qc_json};
    let mut tx = store.begin().await.expect("begin");
    let cases: Vec<_> = flow
        .cases
        .iter()
        .filter(|c| c.submitted_at < until)
        .map(|c| parse_case(&case_json(c, c.source_updated_at)).expect("a case decodes").0)
        .collect();
    tx.upsert_cases(&cases, now).await.expect("cases");
    let qc: Vec<_> = flow
        .qc_findings
        .iter()
        .filter(|q| q.found_at < until)
        .map(|q| parse_qc_finding(&qc_json(q)).expect("a finding decodes").0)
        .collect();
    tx.upsert_qc_findings(&qc, now).await.expect("qc");
    let evaluations: Vec<_> = flow
        .evaluations
        .iter()
        .filter(|e| e.evaluated_at < until)
        .map(|e| parse_evaluation(&evaluation_json(e)).expect("an evaluation decodes").0)
        .collect();
    tx.upsert_evaluations(&evaluations, now).await.expect("evaluations");
    tx.commit().await.expect("commit");
}

/// A case of the simulated world as the store should hold it, field by field
/// (written here, not through any decoder: the expectation of the end-to-end test).
fn as_stored(c: &simulator::world::Case) -> store::cases::CaseRecord {
    store::cases::CaseRecord {
        source: c.source.clone(),
        external_id: c.external_id.clone(),
        case_no: c.case_no.clone(),
        vendor_code: c.vendor_code,
        channel: c.channel,
        delivery: c.delivery,
        applicant_kind: c.applicant_kind,
        agent_kind: c.agent_kind,
        agent_id: c.agent_id.clone(),
        applicant_name: c.applicant_name.clone(),
        applicant_id_no: c.applicant_id_no.clone(),
        district: c.district.clone(),
        unit_no: c.unit_no.clone(),
        status: c.status,
        submitted_at: c.submitted_at,
        accepted_at: c.accepted_at,
        verified_at: c.verified_at,
        recorded_at: c.recorded_at,
        cert_prepared_at: c.cert_prepared_at,
        issued_at: c.issued_at,
        archived_at: c.archived_at,
        closed_at: c.closed_at,
        correction_count: Some(c.correction_count),
        filing_no: c.filing_no.clone(),
        loan_ref: c.loan_ref.clone(),
        handler: c.handler.clone(),
        source_updated_at: c.source_updated_at,
    }
}

pub(crate) async fn kpi_json(root: &Path, name: &str, by: &[&str], as_of: DateTime<Utc>) -> serde_json::Value {
    let ctx = session_with_limit(Some(2), None).expect("session");
    register_snapshot(&ctx, root).await.expect("snapshot");
    let query = KpiQuery {
        from: NaiveDate::from_ymd_opt(2024, 1, 1).expect("date"),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"),
        by: dims(by),
        as_of,
        filters: Vec::new(),
    };
    kpi::run(&ctx, kpi_named(name), &query).await.expect("kpi").to_json()
}

/// The KPI called `name`.
pub(crate) fn kpi_named(name: &str) -> Kpi {
    Kpi::from_name(name).expect("a known KPI")
}

/// The dimensions called `names`.
pub(crate) fn dims(names: &[&str]) -> Vec<Dim> {
    names.iter().map(|n| Dim::from_name(n).expect("a known dimension")).collect()
}

/// The test flow loaded up to 2025-01-02 and refreshed into a new warehouse
/// directory `name`: (flow, now, directory, refresh report).
async fn loaded_snapshot(
    store: &Store,
    name: &str,
) -> (Flow, DateTime<Utc>, PathBuf, warehouse::export::RefreshReport) {
    let flow = flow();
    let now = at(2025, 1, 2);
    load(store, &flow, now, now).await;
    let root = temp_dir(name);
    let report = refresh(store, &root, &options(now, false)).await.expect("refresh");
    (flow, now, root, report)
}

/// The KPIs pinned by golden files: (KPI, breakdown).
pub(crate) const GOLDEN: &[(&str, &[&str])] = &[
    ("online-rate", &["business_type"]),
    ("online-rate", &["month"]),
    ("end-to-end-rate", &["business_type"]),
    ("on-time-rate", &["business_type"]),
    ("first-time-right", &["phase"]),
    ("e-certificate-rate", &["channel"]),
    ("qc-errors", &["category"]),
    ("qc-errors", &[]),
    ("satisfaction", &["evaluation_channel"]),
    ("durations", &[]),
    ("durations", &["business_type"]),
    ("seizures", &[]),
    ("anomalies", &[]),
];

async fn kpis_match_their_golden_files(store: Store) {
    let (flow, now, root, report) = loaded_snapshot(&store, "golden").await;
    assert_eq!(report.manifest.case_rows(), flow.cases.len());
    check_goldens(&root, now, std::env::var_os("WANGBAN_UPDATE_GOLDEN").is_some()).await;
    let _ = std::fs::remove_dir_all(root);
}

/// Every KPI of [`GOLDEN`] on the snapshot at `root` equals its golden file
/// (or, with `update`, rewrites it).
async fn check_goldens(root: &Path, now: DateTime<Utc>, update: bool) {
    let golden_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for (name, by) in GOLDEN {
        let value = kpi_json(root, name, by, now).await;
        let file = golden_dir.join(format!("{name}{}{}.json", if by.is_empty() { "" } else { "-by-" }, by.join("-")));
        let text = serde_json::to_string_pretty(&value).expect("json") + "\n";
        if update {
            std::fs::write(&file, &text).expect("write golden");
        } else {
            let expected = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("{} missing: run with WANGBAN_UPDATE_GOLDEN=1", file.display()));
            assert_eq!(text, expected, "{name} by {by:?} differs from {}", file.display());
        }
    }
}

/// End-to-end truth: the same flow served by the simulator over HTTP and read
/// by the registry connectors (vendor codes, China time, paging, late
/// corrections, duplicate deliveries) gives the flow's cases field by field
/// and the same golden KPIs as the flow loaded straight into the store. A code
/// mapped one way by the simulator and another by the connector fails here.
async fn kpis_through_the_connectors_equal_the_golden_files(store: Store) {
    use connectors::poll::{RunOptions, poll_once};
    use connectors::registry::{Registry, RegistryFeed};

    let flow = flow();
    let now = at(2025, 1, 2);
    let today = NaiveDate::from_ymd_opt(2025, 1, 2).expect("date");
    let servers = simulator::servers::start(
        "127.0.0.1:0".parse().expect("addr"),
        &flow,
        today,
        simulator::servers::faults::Faults::default(),
        7,
    )
    .await
    .expect("servers");
    for (name, feed) in [
        ("registry", RegistryFeed::Cases),
        ("registry-qc", RegistryFeed::QcFindings),
        ("registry-evaluations", RegistryFeed::Evaluations),
    ] {
        let mut source = Registry::new(name, &servers.registry_url(), feed);
        source.page_size = 1000;
        let outcome = poll_once(&source, &store, RunOptions::new(now)).await.expect("poll");
        assert_eq!((outcome.error, outcome.quarantined), (None, 0), "{name}");
    }
    servers.stop().await.expect("stop");

    // Field by field: every case of the flow as the store holds it. Planned
    // differences: an ID number failing its check is kept masked, a late
    // correction's version is its re-delivery's, and the
    // agent's own id is not a field of the registry feed (docs/partners.md §1),
    // so it cannot arrive.
    // A late correction (first delivered with a wrong district) is the
    // snapshot delivered a day later: that version is the one kept.
    let planted = |wanted: fn(&simulator::caseflow::Anomaly) -> Option<&str>| -> std::collections::HashSet<&str> {
        flow.anomalies.iter().filter_map(wanted).collect()
    };
    let corrected = planted(|a| match a {
        simulator::caseflow::Anomaly::LateCorrection { case } => Some(case.as_str()),
        _ => None,
    });
    let bad_check_digits = planted(|a| match a {
        simulator::caseflow::Anomaly::BadCheckDigit { case } => Some(case.as_str()),
        _ => None,
    });
    let mut differences = Vec::new();
    for case in flow.cases.iter().filter(|c| c.submitted_at < now) {
        let stored = store.get_case("registry", &case.external_id).await.expect("get").expect("every case arrives");
        let mut expected = as_stored(case);
        expected.agent_id = None;
        if corrected.contains(case.external_id.as_str()) {
            expected.source_updated_at += chrono::TimeDelta::days(1);
        }
        if bad_check_digits.contains(case.external_id.as_str()) {
            expected.applicant_id_no = domain::ident::mask_id_number(&case.applicant_id_no);
        }
        if stored.record != expected {
            differences.push(format!("{:?}\n  !=\n{:?}", stored.record, expected));
        }
    }
    assert!(differences.is_empty(), "{} cases differ, first: {}", differences.len(), differences[0]);

    let root = temp_dir("through_connectors");
    let report = refresh(&store, &root, &options(now, false)).await.expect("refresh");
    assert_eq!(report.manifest.case_rows(), flow.cases.iter().filter(|c| c.submitted_at < now).count());
    check_goldens(&root, now, false).await;

    // Month by month, the cases the registry delivered (the world's, counted
    // here from the flow) are the cases the store holds, and those are the
    // cases the online rate counts or its definition leaves out.
    let mut world: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for case in flow.cases.iter().filter(|c| c.submitted_at < now) {
        *world.entry(domain::time::china_time(case.submitted_at).format("%Y-%m").to_string()).or_default() += 1;
    }
    let delivered = warehouse::reconcile::Delivered::from_store(&store).await.expect("months");
    assert_eq!(delivered.cases, world, "the store holds every delivered case in its month");
    assert_eq!(
        delivered.flawed.values().sum::<i64>(),
        bad_check_digits.len() as i64,
        "the cases with a bad check digit are kept, flawed"
    );
    let ctx = session_with_limit(Some(2), None).expect("session");
    register_snapshot(&ctx, &root).await.expect("snapshot");
    let checks = warehouse::reconcile::cases_by_month(&ctx, &delivered, now).await.expect("reconcile");
    assert_eq!(checks.len(), world.len());
    let off: Vec<_> = checks.iter().filter(|c| c.difference() != 0).collect();
    assert!(off.is_empty(), "months that do not reconcile: {off:?}");
    // Before the first phase went live (2024-04-26) every case is left out by definition.
    assert!(checks.iter().all(|c| c.month.as_str() < "2024-04" || c.counted > 0), "{checks:?}");
    // A case delivered after the snapshot shows as a difference of one in its month.
    let mut late = store.get_case("registry", &flow.cases[0].external_id).await.expect("get").expect("case").record;
    late.external_id = "LATE-0001".into();
    late.case_no = "LATE-0001".into();
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_cases(&[late.clone()], now).await.expect("upsert");
    tx.commit().await.expect("commit");
    let delivered = warehouse::reconcile::Delivered::from_store(&store).await.expect("months");
    let checks = warehouse::reconcile::cases_by_month(&ctx, &delivered, now).await.expect("reconcile");
    let month = domain::time::china_time(late.submitted_at).format("%Y-%m").to_string();
    let off: Vec<(String, i64)> =
        checks.iter().filter(|c| c.difference() != 0).map(|c| (c.month.clone(), c.difference())).collect();
    assert_eq!(off, [(month, 1)]);
    let _ = std::fs::remove_dir_all(root);
}

async fn online_and_on_time_rates_match_plain_sql_on_the_store(store: Store) {
    let (_, now, root, _) = loaded_snapshot(&store, "recompute").await;
    let catalogue = Catalogue::builtin();
    // The whole year (whole months: the month partitions alone select the period)
    // and a period cut mid-month (the submission times decide at the edges).
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2024, m, d).expect("date");
    for (first, last) in [(day(1, 1), day(12, 31)), (day(3, 15), day(8, 20))] {
        let ctx = session_with_limit(Some(2), None).expect("session");
        register_snapshot(&ctx, &root).await.expect("snapshot");
        let query = KpiQuery { from: first, to: last, by: vec![Dim::BusinessType], as_of: now, filters: Vec::new() };
        let value = kpi::run(&ctx, Kpi::OnlineRate, &query).await.expect("kpi").to_json();
        let (from, to) =
            (domain::time::local_day_end(first.pred_opt().expect("day")), domain::time::local_day_end(last));
        assert!(!value["rows"].as_array().expect("rows").is_empty());
        for row in value["rows"].as_array().expect("rows") {
            let code = row["business_type"].as_str().expect("type");
            let bt = BusinessType::from_code(code).expect("known type");
            let go_live = domain::time::local_day_end(catalogue.get(bt).go_live.pred_opt().expect("day"));
            let scope = format!(
                "FROM cases WHERE business_type = '{code}' AND status NOT IN ('CH', 'BYSL') \
             AND submitted_at >= $1 AND submitted_at < $2 AND submitted_at >= $3"
            );
            let denominator = store::testing::count(&store, &format!("SELECT COUNT(*) {scope}"), &[from, to, go_live])
                .await
                .expect("count");
            let numerator = store::testing::count(
                &store,
                &format!("SELECT COUNT(*) {scope} AND channel IN (1, 2, 3)"),
                &[from, to, go_live],
            )
            .await
            .expect("count");
            assert_eq!(
                (row["numerator"].as_i64(), row["denominator"].as_i64()),
                (Some(numerator), Some(denominator)),
                "{code} {first}..{last}"
            );
        }
    }
    let (from, to) = (at(2023, 12, 31) + chrono::TimeDelta::hours(16), at(2024, 12, 31) + chrono::TimeDelta::hours(16));
    // On time, recomputed from the cases with the calendar, for the whole year.
    let calendar = Calendar::builtin();
    let cases = store.cases_submitted_between(from, to).await.expect("cases");
    let (mut on_time, mut due) = (0i64, 0i64);
    for c in cases.iter().map(|s| &s.record) {
        let info = catalogue.get(c.business_type());
        if c.status.is_excluded_from_scope() || domain::time::local_date(c.submitted_at) < info.go_live {
            continue;
        }
        let Some(accepted) = c.accepted_at else { continue };
        let accepted = domain::time::china_time(accepted).naive_local();
        match c.recorded_at {
            Some(recorded) => {
                due += 1;
                let recorded = domain::time::china_time(recorded).naive_local();
                on_time += i64::from(calendar.is_within_limit(accepted, recorded, info.committed_limit));
            }
            None => {
                let deadline = calendar.deadline(accepted, info.committed_limit);
                due += i64::from(deadline < domain::time::china_time(now).naive_local());
            }
        }
    }
    let overall = kpi_json(&root, "on-time-rate", &[], now).await;
    let row = &overall["rows"][0];
    assert_eq!((row["numerator"].as_i64(), row["denominator"].as_i64()), (Some(on_time), Some(due)));
    let _ = std::fs::remove_dir_all(root);
}

async fn incremental_refresh_equals_a_full_rebuild(store: Store) {
    let flow = flow();
    let first = at(2024, 11, 15);
    load(&store, &flow, first - chrono::TimeDelta::days(1), first - chrono::TimeDelta::days(1)).await;
    load(&store, &flow, first, first).await;
    // An evaluation that arrives before its case: unmatched until the case comes.
    let early = {
        let e = flow
            .evaluations
            .iter()
            .find(|e| {
                flow.cases.iter().any(|c| {
                    c.external_id == e.case_external_id && c.submitted_at > first + chrono::TimeDelta::days(10)
                })
            })
            .expect("an evaluation of a case submitted after the first refresh");
        let mut early = connectors::registry::parse_evaluation(&simulator::servers::registry::evaluation_json(e))
            .expect("an evaluation decodes")
            .0;
        early.external_id = format!("{}-early", early.external_id);
        early
    };
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_evaluation(&early, first).await.expect("early evaluation");
    tx.commit().await.expect("commit");
    let incremental = temp_dir("incremental");
    let one = refresh(&store, &incremental, &options(first, false)).await.expect("first refresh");
    assert!(one.months_written.len() >= 10);
    assert_eq!(one.manifest.month_entry("evaluations", "unmatched").map(|e| e.rows), Some(1), "the early evaluation");
    // Its rollup leaves it out, so the analysts' count of evaluations is not answered from it.
    let count = "SELECT COUNT(*) AS n FROM evaluations";
    assert!(
        table_text_of(&incremental, count).await.contains(&format!("| {} |", one.manifest.month_rows("evaluations")))
    );
    // A day later: the rest of the year, and a correction to a case from March.
    let second = at(2025, 1, 2);
    load(&store, &flow, second, second).await;
    let mut march = as_stored(flow.cases.iter().find(|c| c.submitted_at > at(2024, 3, 10)).expect("a March case"));
    march.correction_count = Some(march.correction_count.unwrap_or(0) + 1);
    march.source_updated_at += chrono::TimeDelta::days(400);
    store.upsert_case(&march, second).await.expect("correction");
    // A QC finding of a May case corrected, and nothing else of May changed:
    // its case month is not written again, its child files are.
    let may = flow
        .qc_findings
        .iter()
        .find(|q| {
            q.corrected_at.is_none()
                && flow.cases.iter().any(|c| {
                    c.external_id == q.case_external_id
                        && c.submitted_at > at(2024, 5, 5)
                        && c.submitted_at < at(2024, 5, 25)
                })
        })
        .expect("an open finding of a May case");
    let mut corrected = connectors::registry::parse_qc_finding(&simulator::servers::registry::qc_json(may))
        .expect("a finding decodes")
        .0;
    corrected.corrected_at = Some(second - chrono::TimeDelta::hours(3));
    corrected.source_updated_at += chrono::TimeDelta::days(400);
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_qc_finding(&corrected, second).await.expect("correction of a finding");
    tx.commit().await.expect("commit");
    let two = refresh(&store, &incremental, &options(second, false)).await.expect("incremental refresh");
    assert!(two.months_kept > 0, "unchanged months are carried over");
    assert!(two.months_written.contains(&"2024-03".to_owned()), "{:?}", two.months_written);
    assert!(!two.months_written.contains(&"2024-05".to_owned()), "{:?}", two.months_written);
    assert_eq!(
        two.manifest.month_entry("evaluations", "unmatched").map_or(0, |e| e.rows),
        0,
        "the early evaluation found its case"
    );
    let full = temp_dir("full");
    let rebuilt = refresh(&store, &full, &options(second, true)).await.expect("full refresh");
    let rollup_rows = |m: &warehouse::snapshot::Manifest| m.rollups.values().map(|e| e.rows).collect::<Vec<_>>();
    assert!(two.manifest.has_rollups());
    assert_eq!(rollup_rows(&two.manifest), rollup_rows(&rebuilt.manifest), "the rollups too");
    for (name, by) in GOLDEN {
        assert_eq!(kpi_json(&incremental, name, by, second).await, kpi_json(&full, name, by, second).await, "{name}");
    }
    // Row for row: the merged months hold what a rebuild reads from the store.
    assert_eq!(table_text(&incremental, "cases").await, table_text(&full, "cases").await);
    assert_eq!(table_text(&incremental, "case_counts").await, table_text(&full, "case_counts").await);
    // The child tables and their rollups, placed only where they changed, equal a rebuild's.
    for table in ["evaluations", "qc_findings", "evaluation_counts", "qc_counts"] {
        assert_eq!(table_text(&incremental, table).await, table_text(&full, table).await, "{table}");
    }
    assert_eq!(two.manifest.by_month, rebuilt.manifest.by_month, "the same files, the same rows");

    // A case whose submission time moves to a month with no other change: the
    // merge would keep its old row, so the refresh notices and starts over in full.
    let mut moved = march.clone();
    moved.submitted_at = at(2024, 1, 20);
    moved.source_updated_at += chrono::TimeDelta::days(1);
    let third = second + chrono::TimeDelta::hours(1);
    store.upsert_case(&moved, third).await.expect("move");
    let three = refresh(&store, &incremental, &options(third, false)).await.expect("refresh after the move");
    assert_eq!(three.months_kept, 0, "{:?}", three.months_written);
    assert_eq!(three.manifest.case_rows(), flow.cases.len());
    let rebuilt = temp_dir("full-after-move");
    refresh(&store, &rebuilt, &options(third, true)).await.expect("full refresh");
    assert_eq!(table_text(&incremental, "cases").await, table_text(&rebuilt, "cases").await);
    for dir in [incremental, full, rebuilt] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A case whose correction count the registry sent malformed (stored as
/// undetermined) leaves first-time-right: out of the numerator and the
/// denominator, into the excluded count, read from the rollup (whole months)
/// and from `cases` (a period cut mid-month) alike.
async fn an_undetermined_correction_count_leaves_first_time_right(store: Store) {
    let flow = flow();
    let now = at(2025, 1, 2);
    load(&store, &flow, now, now).await;
    let root = temp_dir("undetermined");
    refresh(&store, &root, &options(now, false)).await.expect("refresh");
    let catalogue = Catalogue::builtin();
    let case = flow
        .cases
        .iter()
        .find(|c| {
            c.recorded_at.is_some()
                && c.correction_count == 0
                && !c.status.is_excluded_from_scope()
                && c.submitted_at > at(2024, 9, 1)
                && domain::time::local_date(c.submitted_at) >= catalogue.get(c.business_type()).go_live
        })
        .expect("a recorded case without corrections");
    let figures = |root: PathBuf| async move {
        let mut out = Vec::new();
        for to in [NaiveDate::from_ymd_opt(2024, 12, 31), NaiveDate::from_ymd_opt(2024, 12, 30)] {
            let ctx = session_with_limit(Some(2), None).expect("session");
            register_snapshot(&ctx, &root).await.expect("snapshot");
            let query = KpiQuery {
                from: NaiveDate::from_ymd_opt(2024, 1, 1).expect("date"),
                to: to.expect("date"),
                by: Vec::new(),
                as_of: now,
                filters: Vec::new(),
            };
            let result = kpi::run(&ctx, Kpi::FirstTimeRight, &query).await.expect("kpi");
            let row = result.total().expect("a row");
            out.push((row.numerator, row.denominator, result.excluded));
        }
        out
    };
    let before = figures(root.clone()).await;
    let mut flawed = as_stored(case);
    flawed.correction_count = None;
    flawed.source_updated_at += chrono::TimeDelta::days(1);
    store.upsert_case(&flawed, now).await.expect("flawed version");
    refresh(&store, &root, &options(now + chrono::TimeDelta::hours(1), false)).await.expect("refresh");
    let after = figures(root.clone()).await;
    for ((n0, d0, e0), (n1, d1, e1)) in before.into_iter().zip(after) {
        assert_eq!((n1, d1, e1), (n0 - 1, d0 - 1, e0 + 1), "left out, and counted as left out");
    }
    let _ = std::fs::remove_dir_all(root);
}

/// Every row of a snapshot table, sorted, as text.
async fn table_text(root: &Path, table: &str) -> String {
    table_text_of(root, &format!("SELECT * FROM {table}")).await
}

/// The rows of `sql` on the snapshot under `root`, as sorted text.
async fn table_text_of(root: &Path, sql: &str) -> String {
    let ctx = session_with_limit(Some(2), None).expect("session");
    register_snapshot(&ctx, root).await.expect("snapshot");
    let batches = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
    let text = warehouse::datafusion::arrow::util::pretty::pretty_format_batches(&batches).expect("format").to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

/// The count KPIs give the same answer from the `case_counts` rollup (whole
/// months) as from `cases` alone, for every breakdown, periods cut anywhere,
/// and filters; and a snapshot made before rollups gets them at the next refresh.
async fn count_kpis_agree_with_and_without_the_rollup(store: Store) {
    let (flow, now, root, report) = loaded_snapshot(&store, "rollup").await;
    assert!(report.manifest.has_rollups());
    let rollup_rows: usize = report.manifest.rollups.values().map(|e| e.rows).sum();
    assert!(rollup_rows > 0 && rollup_rows < report.manifest.case_rows(), "{rollup_rows} rollup rows");

    let with = session_with_limit(Some(2), None).expect("session");
    register_snapshot(&with, &root).await.expect("snapshot");
    let without = session_with_limit(Some(2), None).expect("session");
    warehouse::session::register_snapshot_without_rollup_rewrite(&without, &root).await.expect("snapshot");
    without.deregister_table(warehouse::session::ROLLUP_TABLE).expect("deregister");
    let day = |y: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(y, m, d).expect("date");
    let periods = [
        (day(2024, 1, 1), day(2024, 12, 31)),
        (day(2024, 3, 15), day(2024, 8, 20)),
        (day(2024, 2, 1), day(2024, 2, 29)),
        (day(2024, 5, 3), day(2024, 5, 27)),
        (day(2024, 6, 1), day(2025, 1, 1)),
    ];
    let breakdowns: &[&[&str]] =
        &[&[], &["business_type"], &["month"], &["week"], &["channel", "district"], &["phase", "applicant_kind"]];
    let district = flow.cases[0].district.clone();
    let filters = [vec![], vec![(Dim::District, district)], vec![(Dim::Channel, "4".to_owned())]];
    let mut compared = 0;
    for name in ["online-rate", "end-to-end-rate", "first-time-right", "e-certificate-rate"] {
        for (from, to) in periods {
            for by in breakdowns {
                for filter in &filters {
                    let query = KpiQuery { from, to, by: dims(by), as_of: now, filters: filter.clone() };
                    let a = kpi::run(&with, kpi_named(name), &query).await.expect("with the rollup").to_json();
                    let b = kpi::run(&without, kpi_named(name), &query).await.expect("without").to_json();
                    assert_eq!(a, b, "{name} {from}..{to} by {by:?} where {filter:?}");
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 4 * 5 * 6 * 3);

    // A snapshot from before rollups: the next refresh writes every month's rollup.
    let warehouse = warehouse::snapshot::Warehouse::open(&root).expect("open");
    let mut old = warehouse.current().expect("read").expect("a snapshot");
    old.rollups.clear();
    let dir = warehouse.snapshot_dir(&old.snapshot_id);
    std::fs::remove_dir_all(dir.join("rollups")).expect("remove the rollups");
    std::fs::write(dir.join("manifest.json"), serde_json::to_string(&old).expect("json")).expect("write");
    let plain = session_with_limit(Some(2), None).expect("session");
    register_snapshot(&plain, &root).await.expect("an old snapshot still opens");
    assert!(!plain.table_exist(warehouse::session::ROLLUP_TABLE).expect("lookup"));
    let upgraded = refresh(&store, &root, &options(now + chrono::TimeDelta::hours(1), false)).await.expect("refresh");
    assert_eq!(upgraded.months_written.len(), upgraded.manifest.cases.len());
    assert!(upgraded.manifest.has_rollups());
    let _ = std::fs::remove_dir_all(root);
}

async fn the_console_is_read_only_and_limited(store: Store) {
    let (_, _, root, _) = loaded_snapshot(&store, "console").await;
    let ctx = session_with_limit(Some(2), Some(64 * 1024 * 1024)).expect("session");
    register_snapshot(&ctx, &root).await.expect("snapshot");
    let limits = Limits { max_rows: 100, timeout: Duration::from_secs(20), memory_bytes: 64 * 1024 * 1024 };
    for sql in [
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO cases SELECT * FROM cases",
        "DROP TABLE cases",
        "SET datafusion.execution.batch_size = 1",
        "COPY cases TO '/tmp/x.parquet'",
        "CREATE VIEW v AS SELECT 1",
    ] {
        let err = console::query(&ctx, sql, limits).await.expect_err(sql);
        assert!(matches!(err, warehouse::WarehouseError::ReadOnly(_)), "{sql}: {err}");
    }
    let answer = console::query(&ctx, "SELECT case_no FROM cases", limits).await.expect("select");
    assert_eq!((answer.rows, answer.truncated), (100, true));
    let explain = console::query(&ctx, "EXPLAIN ANALYZE SELECT COUNT(*) FROM cases WHERE month = '2024-05'", limits)
        .await
        .expect("explain analyze");
    assert!(explain.rows > 0);
    // A runaway query stops at its limits with a clear error.
    let runaway = "SELECT a.case_no, b.case_no, c.case_no FROM cases a, cases b, cases c ORDER BY 1, 2, 3";
    let short = Limits { timeout: Duration::from_secs(2), ..limits };
    let err = console::query(&ctx, runaway, short).await.expect_err("stopped");
    assert!(err.is_limit(), "{err}");

    // Analysts' sessions share one pool and never spill: a query that
    // outgrows it stops at once with "resources exhausted", long before its
    // time limit, and so does a second one run beside it.
    let pool = warehouse::session::console_pool(4 * 1024 * 1024);
    let limits = Limits { max_rows: 100, timeout: Duration::from_secs(60), memory_bytes: 4 * 1024 * 1024 };
    let distinct = "SELECT COUNT(DISTINCT a.case_no || b.case_no) FROM cases a, cases b WHERE a.district = b.district";
    let (one, two) = (
        warehouse::session::console_session(pool.clone()).expect("session"),
        warehouse::session::console_session(pool.clone()).expect("session"),
    );
    register_snapshot(&one, &root).await.expect("snapshot");
    register_snapshot(&two, &root).await.expect("snapshot");
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(console::query(&one, distinct, limits), console::query(&two, distinct, limits));
    for answer in [a, b] {
        let err = answer.expect_err("exhausted");
        assert!(matches!(err, warehouse::WarehouseError::Limit(_)), "{err}");
        assert!(
            err.to_string().starts_with("resources exhausted: the query needs more memory than the 4 MiB"),
            "{err}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(30), "stopped by memory, not by time: {:?}", started.elapsed());
    // The failed plans' other tasks wind down on their own; the pool gets
    // everything back (a leak would starve every later analyst).
    for _ in 0..200 {
        if pool.reserved() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pool.reserved(), 0, "everything given back");
    let fine = console::query(&one, "SELECT COUNT(*) AS n FROM cases", limits).await.expect("a small query still runs");
    assert_eq!(fine.rows, 1);
    let _ = std::fs::remove_dir_all(root);
}

/// Cached results are the results, are computed once per snapshot, and are
/// dropped when a refresh publishes a new snapshot.
async fn cached_results_follow_the_current_snapshot(store: Store) {
    let flow = flow();
    let first = at(2024, 7, 1);
    load(&store, &flow, first, first).await;
    let root = temp_dir("cache");
    refresh(&store, &root, &options(first, true)).await.expect("first refresh");
    let cache = warehouse::cache::SnapshotCache::default();
    // As of the snapshot's time: the answer is the same whenever it is asked.
    let query = KpiRequest::new(
        NaiveDate::from_ymd_opt(2024, 1, 1).expect("date"),
        NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"),
        &[Dim::BusinessType],
    );
    let open = cache.current(&root, 256 << 20, "local").await.expect("open");
    assert_eq!(open.as_of(), first);
    // A time after the snapshot's is refused: the data does not reach it.
    let later = KpiRequest { as_of: Some(at(2030, 1, 1)), ..query.clone() };
    let refused = open.kpi(Kpi::OnlineRate, &later).await.expect_err("after the snapshot");
    assert!(refused.to_string().contains("after the snapshot's time"), "{refused}");
    let a = open.kpi(Kpi::OnlineRate, &query).await.expect("kpi");
    let b =
        cache.current(&root, 256 << 20, "local").await.expect("again").kpi(Kpi::OnlineRate, &query).await.expect("kpi");
    assert!(std::sync::Arc::ptr_eq(&a, &b), "the second ask is served from the cache");
    assert_eq!(open.cached_results(), 1);
    assert_eq!(a.to_json(), kpi_json(&root, "online-rate", &["business_type"], first).await, "cached = computed");

    let second = at(2025, 1, 2);
    load(&store, &flow, second, second).await;
    refresh(&store, &root, &options(second, false)).await.expect("second refresh");
    let reopened = cache.current(&root, 256 << 20, "local").await.expect("reopen");
    assert_ne!(reopened.manifest.snapshot_id, open.manifest.snapshot_id);
    assert_eq!(reopened.cached_results(), 0, "a new snapshot starts with no results");
    let c = reopened.kpi(Kpi::OnlineRate, &query).await.expect("kpi");
    assert_eq!(c.to_json(), kpi_json(&root, "online-rate", &["business_type"], second).await);
    assert_ne!(a.to_json(), c.to_json(), "the new snapshot holds more cases");
    let _ = std::fs::remove_dir_all(root);
}

/// The alert rules: the online-rate rule against the trajectory computed
/// here from the monthly KPI, both ways; the lag rule per connector.
async fn alert_rules_fire_on_the_trajectory_and_on_lag(store: Store) {
    use warehouse::alerts::{self, AlertRules};
    let flow = flow();
    let now = at(2025, 1, 2);
    load(&store, &flow, now, now).await;
    let root = temp_dir("alerts");
    refresh(&store, &root, &options(now, true)).await.expect("refresh");
    let cache = warehouse::cache::SnapshotCache::default();
    let open = cache.current(&root, 256 << 20, "local").await.expect("open");
    let monthly = kpi_json(&root, "online-rate", &["month"], now).await;
    let rate_of = |month: &str| {
        monthly["rows"].as_array().expect("rows").iter().find(|r| r["month"] == month).expect("month")["rate"]
            .as_f64()
            .expect("rate")
    };
    let (may, december) = (rate_of("2024-05"), rate_of("2024-12"));
    assert!(december < 0.9, "the simulated rate stays below the target in 2024: {december}");

    // Due in December: December's rate is measured against 90% itself.
    let due_now = AlertRules { baseline_month: "2024-05".into(), target_month: "2024-12".into(), ..Default::default() };
    let fired = alerts::online_rate(&open, &due_now).await.expect("rule").expect("fires below 90%");
    assert_eq!((fired.value, fired.threshold), (december, 0.9));
    assert!(fired.summary.starts_with("2024-12 网办率"), "{}", fired.summary);

    // Due in ten years: the line from May's rate has barely moved.
    let far = AlertRules { target_month: "2034-05".into(), ..due_now.clone() };
    let expected = may + (0.9 - may) * 7.0 / 120.0;
    let outcome = alerts::online_rate(&open, &far).await.expect("rule");
    match outcome {
        Some(o) => {
            assert!(december < expected, "fires only below the line");
            assert!((o.threshold - expected).abs() < 1e-12);
        }
        None => assert!(december >= expected, "{december} below {expected} must fire"),
    }

    // Lag: one connector behind by two days, one current.
    let mut tx = store.begin().await.expect("begin");
    for (name, watermark) in
        [("registry", now - chrono::TimeDelta::hours(1)), ("housing", now - chrono::TimeDelta::hours(49))]
    {
        let mut state = tx.connector_state(name).await.expect("state");
        state.source_watermark = Some(watermark);
        state.status = "ok".into();
        tx.save_connector_state(&state, now).await.expect("save");
    }
    tx.commit().await.expect("commit");
    // Counted round the clock, housing is 49 hours behind.
    let round_the_clock =
        AlertRules { connector_clock_by: [("housing".to_owned(), alerts::LagClock::Always)].into(), ..due_now.clone() };
    let lagging = alerts::connectors_lagging(&store, &round_the_clock, now).await.expect("lag rule");
    assert_eq!(lagging.iter().map(|o| o.subject.as_str()).collect::<Vec<_>>(), ["housing"]);
    assert!((lagging[0].value - 49.0).abs() < 1e-9);
    // In office hours (the default) it is behind by the office time of those 49 hours.
    let office = alerts::connectors_lagging(&store, &due_now, now).await.expect("lag rule");
    assert_eq!(office.iter().map(|o| o.subject.as_str()).collect::<Vec<_>>(), ["housing"]);
    let expected = alerts::LagClock::Office.elapsed(&due_now.calendar, now - chrono::TimeDelta::hours(49), now);
    assert!((office[0].value - expected.num_seconds() as f64 / 3600.0).abs() < 1e-9);
    assert!(office[0].value < 49.0 && office[0].summary.contains("办公时间"), "{}", office[0].summary);
    // A quiet feed with its own threshold.
    let patient = AlertRules {
        connector_lag_by: [("housing".to_owned(), chrono::TimeDelta::hours(72))].into(),
        ..due_now.clone()
    };
    assert!(alerts::connectors_lagging(&store, &patient, now).await.expect("lag rule").is_empty());

    let (kinds, observed) = alerts::evaluate(Some(&open), &store, &due_now, now).await.expect("evaluate");
    assert_eq!(kinds, alerts::KINDS);
    let changes =
        store.record_alert_evaluation(&kinds, &observed, Some(&open.manifest.snapshot_id), now).await.expect("record");
    assert_eq!(changes.fired.len(), 2, "{observed:?}");
    let _ = std::fs::remove_dir_all(root);
}

/// `compact` turns a snapshot whose months hold several files (here each
/// month's file twice, one written with another time-zone spelling) into one file a
/// month with its rollup counted again: every count doubles, the rollup agrees
/// with `cases`, and a second compact has nothing to do.
async fn compact_makes_one_file_a_month_with_its_rollup(store: Store) {
    let (flow, now, root, report) = loaded_snapshot(&store, "compact").await;
    let before = kpi_json(&root, "online-rate", &["business_type"], now).await;
    let warehouse = warehouse::snapshot::Warehouse::open(&root).expect("open");
    let dir = warehouse.snapshot_dir(&report.manifest.snapshot_id);
    for entry in report.manifest.cases.values() {
        // The copy as another tool writes it: timestamps read back with the zone "+00:00".
        let file = std::fs::File::open(dir.join(&entry.file)).expect("month file");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet").build().expect("reader");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        let zone = |f: &Field| match f.data_type() {
            DataType::Timestamp(unit, Some(_)) => {
                Field::new(f.name(), DataType::Timestamp(*unit, Some("+00:00".into())), f.is_nullable())
            }
            _ => f.clone(),
        };
        let schema = Arc::new(Schema::new(batches[0].schema().fields().iter().map(|f| zone(f)).collect::<Vec<_>>()));
        let copy = std::fs::File::create(dir.join(entry.file.replace("part-0", "part-0-copy2"))).expect("copy");
        let mut writer = ArrowWriter::try_new(copy, schema.clone(), None).expect("writer");
        for batch in &batches {
            let columns = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| cast(c, f.data_type()).expect("cast"))
                .collect();
            writer.write(&RecordBatch::try_new(schema.clone(), columns).expect("batch")).expect("write");
        }
        writer.close().expect("close");
    }
    let compacted = warehouse::export::compact(&root, now + chrono::TimeDelta::hours(1)).await.expect("compact");
    assert_eq!(compacted.months_compacted.len(), report.manifest.cases.len());
    assert_eq!(compacted.manifest.case_rows(), 2 * flow.cases.len());
    assert_eq!(compacted.manifest.tables, report.manifest.tables);
    // The child tables were one file a month already: carried with their rollups.
    assert_eq!(compacted.manifest.by_month.get("evaluations"), report.manifest.by_month.get("evaluations"));
    assert_eq!(compacted.manifest.by_month.get("qc_counts"), report.manifest.by_month.get("qc_counts"));
    let new_dir = warehouse.snapshot_dir(&compacted.manifest.snapshot_id);
    for month in compacted.manifest.cases.keys() {
        let files = std::fs::read_dir(new_dir.join(format!("cases/month={month}"))).expect("month dir").count();
        assert_eq!(files, 1, "{month}");
    }
    let after = kpi_json(&root, "online-rate", &["business_type"], now).await;
    let (rows_before, rows_after) = (before["rows"].as_array().expect("rows"), after["rows"].as_array().expect("rows"));
    assert_eq!(rows_before.len(), rows_after.len());
    for (b, a) in rows_before.iter().zip(rows_after) {
        for key in ["numerator", "denominator"] {
            assert_eq!(a[key].as_i64(), b[key].as_i64().map(|n| 2 * n), "{key} of {b}");
        }
        assert_eq!(a["rate"], b["rate"]);
    }
    // The rollup was counted from the merged rows: the KPI from `cases` alone agrees.
    let plain = session_with_limit(Some(2), None).expect("session");
    warehouse::session::register_snapshot_without_rollup_rewrite(&plain, &root).await.expect("snapshot");
    plain.deregister_table(warehouse::session::ROLLUP_TABLE).expect("deregister");
    let query = KpiQuery {
        from: NaiveDate::from_ymd_opt(2024, 1, 1).expect("date"),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"),
        by: vec![Dim::BusinessType],
        as_of: now,
        filters: Vec::new(),
    };
    assert_eq!(kpi::run(&plain, Kpi::OnlineRate, &query).await.expect("kpi").to_json(), after);
    // Each month's file is sorted by district, business type and submission time, as a refresh writes it.
    let file = std::fs::File::open(new_dir.join("cases/month=2024-03/part-0.parquet")).expect("March");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet").build().expect("reader");
    let mut keys = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let text = |name: &str| {
            let column = cast(batch.column_by_name(name).expect(name), &DataType::Utf8).expect("text");
            let column = column.as_any().downcast_ref::<warehouse::datafusion::arrow::array::StringArray>().cloned();
            column.expect("strings")
        };
        let (district, business_type) = (text("district"), text("business_type"));
        let column = batch.column_by_name("submitted_at").expect("submitted_at");
        let times = column.as_any().downcast_ref::<TimestampMicrosecondArray>().expect("timestamps");
        for i in 0..batch.num_rows() {
            keys.push((district.value(i).to_owned(), business_type.value(i).to_owned(), times.value(i)));
        }
    }
    assert!(keys.len() > 2 && keys.is_sorted(), "{} rows", keys.len());
    assert!(keys.first().map(|k| &k.0) != keys.last().map(|k| &k.0), "one district only: nothing proves the order");
    let again = warehouse::export::compact(&root, now + chrono::TimeDelta::hours(2)).await.expect("compact again");
    assert!(again.months_compacted.is_empty());
    assert_eq!(again.manifest.case_rows(), compacted.manifest.case_rows());
    let _ = std::fs::remove_dir_all(root);
}

/// The durations KPI counts each distinct duration rather than holding every
/// one; its median and p90 equal DataFusion's `median` and
/// `percentile_cont(0.9)` over every duration, for a whole year and a period
/// cut mid-month, with and without breakdowns (one of them nullable).
async fn durations_equal_datafusions_median_and_percentile(store: Store) {
    let (_, now, root, _) = loaded_snapshot(&store, "durations").await;
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2024, m, d).expect("date");
    // China time is UTC+8: a China-time day starts at 16:00 UTC the day before.
    let periods = [
        (
            day(1, 1),
            day(12, 31),
            "c.submitted_at >= TIMESTAMP '2023-12-31T16:00:00Z' AND c.submitted_at < TIMESTAMP '2024-12-31T16:00:00Z'",
        ),
        (
            day(3, 15),
            day(8, 20),
            "c.submitted_at >= TIMESTAMP '2024-03-14T16:00:00Z' AND c.submitted_at < TIMESTAMP '2024-08-20T16:00:00Z'",
        ),
    ];
    let breakdowns: [&[&str]; 4] = [&[], &["business_type"], &["phase"], &["district", "channel"]];
    let as_of = format!("TIMESTAMP '{}'", now.format("%Y-%m-%dT%H:%M:%SZ"));
    let ctx = session_with_limit(Some(2), None).expect("session");
    register_snapshot(&ctx, &root).await.expect("snapshot");
    for (from, to, period) in periods {
        for by in breakdowns {
            let query = KpiQuery { from, to, by: dims(by), as_of: now, filters: Vec::new() };
            let rows = kpi::run(&ctx, Kpi::Durations, &query).await.expect("kpi").rows.to_json();
            let dims: String = by.iter().map(|d| format!(", CAST(c.{d} AS VARCHAR) AS {d}")).collect();
            let group: String = by.iter().map(|d| format!(", {d}")).collect();
            let every: Vec<String> = kpi::DURATION_STEPS
                .iter()
                .map(|(step, a, b)| {
                    format!(
                        "SELECT '{step}' AS step{dims}, (CAST(c.{b} AS BIGINT) - CAST(c.{a} AS BIGINT)) / 3600000000.0 AS hours \
                         FROM cases c WHERE c.in_scope AND c.phase_live AND {period} \
                         AND c.{a} IS NOT NULL AND c.{b} IS NOT NULL AND c.{b} <= {as_of}"
                    )
                })
                .collect();
            let reference = format!(
                "SELECT step{group}, COUNT(*) AS cases, ROUND(median(hours), 3) AS median_hours, \
                 ROUND(percentile_cont(0.9) WITHIN GROUP (ORDER BY hours), 3) AS p90_hours \
                 FROM ({}) GROUP BY step{group} ORDER BY step{group}",
                every.join(" UNION ALL ")
            );
            let batches = ctx.sql(&reference).await.expect("reference").collect().await.expect("collect");
            let expected = kpi::batches_to_rows(&batches);
            assert!(expected.len() >= 5, "{by:?}: {} rows", expected.len());
            assert_eq!(rows, expected, "durations by {by:?} from {from} to {to}");
        }
    }
    let _ = std::fs::remove_dir_all(root);
}

/// Evaluations and QC findings carry their case's dimensions, per the case's
/// month: every row agrees with its case, satisfaction and QC counted from
/// them equal the join over `cases`, and a row whose case the store lacks is
/// kept under `month=unmatched`, counted in no KPI and named.
async fn children_carry_their_case_and_orphans_are_named(store: Store) {
    use connectors::registry::{parse_evaluation, parse_qc_finding};
    use simulator::servers::registry::{evaluation_json, qc_json};
    let flow = flow();
    let now = at(2025, 1, 2);
    load(&store, &flow, now, now).await;
    let mut orphan_evaluation = flow.evaluations[0].clone();
    orphan_evaluation.external_id = "EV-ORPHAN-1".into();
    orphan_evaluation.case_external_id = "NO-SUCH-CASE".into();
    let mut orphan_finding = flow.qc_findings[0].clone();
    orphan_finding.external_id = "QC-ORPHAN-1".into();
    orphan_finding.case_external_id = "NO-SUCH-CASE".into();
    let mut tx = store.begin().await.expect("begin");
    let evaluation = parse_evaluation(&evaluation_json(&orphan_evaluation)).expect("decodes").0;
    tx.upsert_evaluations(&[evaluation], now).await.expect("evaluation");
    let finding = parse_qc_finding(&qc_json(&orphan_finding)).expect("decodes").0;
    tx.upsert_qc_findings(&[finding], now).await.expect("finding");
    tx.commit().await.expect("commit");
    let root = temp_dir("children");
    let report = refresh(&store, &root, &options(now, true)).await.expect("refresh");
    for table in ["evaluations", "qc_findings"] {
        assert_eq!(report.manifest.month_entry(table, "unmatched").map(|e| e.rows), Some(1), "{table}");
        assert!(report.manifest.month_rows(table) > 100, "{table}");
    }
    let ctx = session_with_limit(Some(2), None).expect("session");
    register_snapshot(&ctx, &root).await.expect("snapshot");
    let named = warehouse::reconcile::unmatched_children(&ctx).await.expect("unmatched");
    let named: Vec<(&str, &str, &str)> = named.iter().map(|c| (c.table, c.id.as_str(), c.case_no.as_str())).collect();
    assert_eq!(named.len(), 2, "{named:?}");
    assert!(named.iter().all(|(_, _, case)| case.contains("NO-SUCH-CASE")), "{named:?}");
    async fn count(ctx: &warehouse::datafusion::prelude::SessionContext, sql: &str) -> i64 {
        let batches = ctx.sql(sql).await.expect(sql).collect().await.expect(sql);
        kpi::batches_to_rows(&batches)[0]["n"].as_i64().expect("a count")
    }
    for table in ["evaluations", "qc_findings"] {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {table} e JOIN cases c ON e.case_no = c.case_no \
             WHERE e.district <> c.district OR e.business_type <> c.business_type OR e.case_channel <> c.channel \
             OR e.month <> c.month OR e.in_scope <> c.in_scope OR e.submitted_at <> c.submitted_at"
        );
        assert_eq!(count(&ctx, &sql).await, 0, "{table} rows disagree with their case");
    }
    let query = KpiQuery {
        from: NaiveDate::from_ymd_opt(2024, 1, 1).expect("date"),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"),
        by: Vec::new(),
        as_of: now,
        filters: Vec::new(),
    };
    let satisfaction = kpi::run(&ctx, Kpi::Satisfaction, &query).await.expect("satisfaction");
    let joined = count(
        &ctx,
        "SELECT COUNT(*) AS n FROM evaluations e JOIN cases c ON e.case_no = c.case_no \
         WHERE c.in_scope AND c.month >= '2024-01' AND c.month <= '2024-12'",
    )
    .await;
    assert!(joined > 100);
    assert_eq!(satisfaction.rates()[0].denominator, joined);
    let qc = kpi::run(&ctx, Kpi::QcErrors, &query).await.expect("qc");
    let joined = count(
        &ctx,
        "SELECT COUNT(*) AS n FROM qc_findings f JOIN cases c ON f.case_no = c.case_no \
         WHERE c.in_scope AND c.month >= '2024-01' AND c.month <= '2024-12'",
    )
    .await;
    assert_eq!(qc.rates()[0].numerator, joined);
    let _ = std::fs::remove_dir_all(root);
}

both_backends!(
    an_undetermined_correction_count_leaves_first_time_right,
    children_carry_their_case_and_orphans_are_named,
    compact_makes_one_file_a_month_with_its_rollup,
    durations_equal_datafusions_median_and_percentile,
    alert_rules_fire_on_the_trajectory_and_on_lag,
    cached_results_follow_the_current_snapshot,
    count_kpis_agree_with_and_without_the_rollup,
    kpis_match_their_golden_files,
    kpis_through_the_connectors_equal_the_golden_files,
    online_and_on_time_rates_match_plain_sql_on_the_store,
    incremental_refresh_equals_a_full_rebuild,
    the_console_is_read_only_and_limited,
);

/// The query pins a process of this host left when it died are cleared (at
/// the next publish); a live process's, another host's and other pins stay.
#[test]
fn dead_query_pins_of_this_host_are_cleared() {
    use warehouse::snapshot::{QUERY_PIN_PREFIX, ReaderPin, clear_dead_query_pins, host_name};
    let root = temp_dir("dead-pins");
    let host = host_name();
    // PID 2^22 + 1 is above Linux's largest (pid_max is at most 2^22): no such process.
    let dead = format!("{QUERY_PIN_PREFIX}{host}-4194305-0");
    let live = format!("{QUERY_PIN_PREFIX}{host}-{}-0", std::process::id());
    let elsewhere = format!("{QUERY_PIN_PREFIX}another-host.internal-4194305-0");
    let pins: Vec<ReaderPin> = [dead.as_str(), live.as_str(), elsewhere.as_str(), "pgwire-1", "report-2025-01"]
        .iter()
        .map(|name| ReaderPin::hold(&root, name, "20250101T000000.000000Z").expect("pin"))
        .collect();
    assert_eq!(clear_dead_query_pins(&root).expect("clear"), 1);
    let left: Vec<String> = std::fs::read_dir(root.join("pins"))
        .expect("pins")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!left.contains(&dead), "{left:?}");
    for kept in [&live, &elsewhere, &"pgwire-1".to_owned(), &"report-2025-01".to_owned()] {
        assert!(left.contains(kept), "{kept} kept: {left:?}");
    }
    drop(pins);
    let _ = std::fs::remove_dir_all(root);
}
