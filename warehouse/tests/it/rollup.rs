//! The rollup rewrite (`warehouse::rollup`) gives the answers it replaces: a
//! property test runs random aggregates the rollup can answer (groupings,
//! filters and COUNT/SUM over its dimensions) on a session with the rule and
//! on one without, and compares; queries it cannot answer exactly are left
//! on `cases`; `EXPLAIN` shows where it happened.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use warehouse::datafusion::arrow::util::pretty::pretty_format_batches;
use warehouse::datafusion::prelude::SessionContext;
use warehouse::export::refresh;
use warehouse::kpi::{self, Dim, Kpi, KpiQuery};
use warehouse::session::{register_snapshot, register_snapshot_without_rollup_rewrite, session_with_limit};

use crate::kpis::{at, flow, load, options, temp_dir};

const GROUPS: [&str; 9] =
    ["business_type", "channel", "district", "month", "online", "applicant_kind", "phase", "in_scope", "on_time"];

/// A query the rollup can answer: its grouping, filters and aggregates.
#[derive(Debug, Clone)]
struct Question {
    table: &'static str,
    by: Vec<&'static str>,
    filters: Vec<String>,
    aggregates: Vec<&'static str>,
    alias: bool,
}

impl Question {
    fn sql(&self) -> String {
        let t = if self.alias { "c." } else { "" };
        let by: Vec<String> = self
            .by
            .iter()
            .map(|b| b.replace("$", t))
            .map(|b| if b.contains('.') || b.contains(' ') { b } else { format!("{t}{b}") })
            .collect();
        let mut select = by.clone();
        select.extend(self.aggregates.iter().enumerate().map(|(i, a)| format!("{} AS a{i}", a.replace("$", t))));
        let mut sql = format!("SELECT {} FROM {}{}", select.join(", "), self.table, if self.alias { " c" } else { "" });
        if !self.filters.is_empty() {
            let filters: Vec<String> = self.filters.iter().map(|f| f.replace("$", t)).collect();
            sql.push_str(&format!(" WHERE {}", filters.join(" AND ")));
        }
        if !by.is_empty() {
            sql.push_str(&format!(" GROUP BY {}", by.join(", ")));
        }
        sql
    }
}

fn question() -> impl Strategy<Value = Question> {
    let filter = prop_oneof![
        (0usize..12).prop_map(|m| format!("$month = '2024-{:02}'", m + 1)),
        (0usize..12).prop_map(|m| format!("$month >= '2024-{:02}'", m + 1)),
        Just("$online".to_owned()),
        Just("NOT $online".to_owned()),
        Just("$in_scope AND $phase_live".to_owned()),
        (1i64..5).prop_map(|c| format!("$channel = '{c}'")),
        Just("$district IN ('430405', '430408', '430422')".to_owned()),
        Just("$phase IS NULL".to_owned()),
        Just("$business_type <> 'BT01'".to_owned()),
        Just("$on_time".to_owned()),
        Just("$on_time IS NULL".to_owned()),
    ];
    let aggregate = prop_oneof![
        Just("COUNT(*)"),
        Just("COUNT(1)"),
        Just("SUM(CAST($online AS INT))"),
        Just("SUM(CAST($end_to_end AS BIGINT))"),
        Just("COUNT($phase)"),
        Just("SUM($phase)"),
        Just("COUNT($delivery)"),
        Just("COUNT($on_time)"),
    ];
    (
        proptest::sample::subsequence(GROUPS.to_vec(), 0..=3),
        proptest::collection::vec(filter, 0..3),
        proptest::collection::vec(aggregate, 1..4),
        any::<bool>(),
    )
        .prop_map(|(by, filters, aggregates, alias)| Question { table: "cases", by, filters, aggregates, alias })
}

/// A query over `evaluations` or `qc_findings` their rollups can answer.
fn child_question() -> impl Strategy<Value = Question> {
    let case_filter = prop_oneof![
        (0usize..12).prop_map(|m| format!("$month = '2024-{:02}'", m + 1)),
        (0usize..12).prop_map(|m| format!("$month >= '2024-{:02}'", m + 1)),
        Just("$in_scope AND $phase_live".to_owned()),
        (1i64..5).prop_map(|c| format!("$case_channel = '{c}'")),
        Just("$district IN ('430405', '430408', '430422')".to_owned()),
        Just("$phase IS NULL".to_owned()),
        Just("$business_type <> 'BT01'".to_owned()),
    ];
    let evaluation = (
        proptest::sample::subsequence(vec!["district", "month", "channel", "case_channel", "business_type"], 0..=2),
        proptest::collection::vec(prop_oneof![case_filter.clone(), Just("$channel = 'online'".to_owned())], 0..3),
        proptest::collection::vec(
            prop_oneof![
                Just("COUNT(*)"),
                Just("SUM(CAST($good AS INT))"),
                Just("SUM(CASE WHEN $bad THEN 1 ELSE 0 END)"),
                Just("SUM(CAST($rectified_within_15 AS BIGINT))"),
                Just("COUNT($phase)"),
            ],
            1..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(by, filters, aggregates, alias)| Question {
            table: "evaluations",
            by,
            filters,
            aggregates,
            alias,
        });
    let qc = (
        proptest::sample::subsequence(
            vec!["category", "month", "severity", "section", "district", "$corrected_at IS NULL"],
            0..=2,
        ),
        proptest::collection::vec(
            prop_oneof![
                case_filter,
                Just("$corrected_at IS NULL".to_owned()),
                Just("$corrected_at IS NOT NULL".to_owned()),
                Just("$severity = '3'".to_owned()),
            ],
            0..3,
        ),
        proptest::collection::vec(prop_oneof![Just("COUNT(*)"), Just("COUNT(1)"), Just("COUNT($phase)")], 1..3),
        any::<bool>(),
    )
        .prop_map(|(by, filters, aggregates, alias)| Question {
            table: "qc_findings",
            by,
            filters,
            aggregates,
            alias,
        });
    prop_oneof![evaluation, qc]
}

/// A question the rule must leave on `cases`: one the rollup could answer,
/// spoilt by a filter that is volatile or reads a column the rollup lacks.
fn untouchable() -> impl Strategy<Value = Question> {
    let spoiler = prop_oneof![
        Just("random() < 0.5".to_owned()),
        Just("$month = concat('2024-0', CAST(CAST(floor(random() * 9) AS INT) + 1 AS VARCHAR))".to_owned()),
        Just("$submitted_at >= '2024-06-01'".to_owned()),
        Just("$status <> 'x'".to_owned()),
    ];
    (question(), spoiler).prop_map(|(mut q, spoiler)| {
        // No contradictory pair the optimizer could fold to an empty answer that reads no table at all.
        q.filters.retain(|f| !f.starts_with("$month = ") && f != "NOT $online");
        q.filters.push(spoiler);
        q
    })
}

/// The rows of `sql` as sorted text, and whether its plan leaves the raw
/// tables alone (reads a rollup, or nothing when the filters contradict).
async fn answer(ctx: &SessionContext, sql: &str) -> (Vec<String>, bool) {
    let frame = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let optimized = frame.clone().into_optimized_plan().unwrap_or_else(|e| panic!("{sql}: {e}"));
    let plan = format!("{}", optimized.display_indent());
    let reads_rollup =
        ["cases", "evaluations", "qc_findings"].iter().all(|t| !plan.contains(&format!("TableScan: {t}")));
    let batches = frame.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let text = pretty_format_batches(&batches).map(|t| t.to_string()).unwrap_or_default();
    let mut rows: Vec<String> = text.lines().filter(|l| l.starts_with("| ")).skip(1).map(str::to_owned).collect();
    rows.sort();
    (rows, reads_rollup)
}

#[test]
fn rollup_answers_equal_the_answers_over_cases() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (root, rewritten, plain) = runtime.block_on(async {
        let db = store::testing::TestDatabase::sqlite().await.expect("sqlite");
        let now = at(2025, 1, 2);
        load(&db.store, &flow(), now, now).await;
        let root = temp_dir("rollup");
        refresh(&db.store, &root, &options(now, true)).await.expect("refresh");
        let rewritten = session_with_limit(None, None).expect("session");
        register_snapshot(&rewritten, &root).await.expect("register");
        let plain = session_with_limit(None, None).expect("session");
        register_snapshot_without_rollup_rewrite(&plain, &root).await.expect("register");
        (root, rewritten, plain)
    });

    // Known cases: what BI tools ask most goes to the rollup; the rest stays.
    let asked = [
        ("SELECT business_type, month, COUNT(*) FROM cases GROUP BY business_type, month", true),
        ("SELECT COUNT(*) AS n FROM cases WHERE month = '2031-01'", true),
        (
            "SELECT district, SUM(CAST(online AS INT)) AS online, COUNT(*) AS n FROM cases WHERE in_scope GROUP BY district",
            true,
        ),
        ("SELECT district, COUNT(DISTINCT business_type) FROM cases GROUP BY district", false),
        ("SELECT business_type, COUNT(*) FROM cases WHERE submitted_at >= '2024-06-01' GROUP BY business_type", false),
        ("SELECT business_type, AVG(CAST(online AS INT)) FROM cases GROUP BY business_type", false),
        ("SELECT status, COUNT(*) FROM cases GROUP BY status", false),
        // A sample: volatile, evaluated per case, never per rollup row.
        ("SELECT COUNT(*) FROM cases WHERE random() < 0.01", false),
        // The child tables: their rollups answer by case and own dimensions.
        (
            "SELECT channel, COUNT(*) AS n, SUM(CASE WHEN good THEN 1 ELSE 0 END) AS good FROM evaluations \
             WHERE in_scope GROUP BY channel",
            true,
        ),
        ("SELECT category, COUNT(*) FROM qc_findings WHERE corrected_at IS NULL GROUP BY category", true),
        ("SELECT SUM(CAST(good AS INT)) AS g, SUM(CAST(bad AS BIGINT)) AS b FROM evaluations", true),
        ("SELECT corrected_at IS NULL, COUNT(*) FROM qc_findings GROUP BY corrected_at IS NULL", true),
        ("SELECT category, COUNT(corrected_at) FROM qc_findings GROUP BY category", false),
        ("SELECT channel, AVG(level) FROM evaluations GROUP BY channel", false),
        ("SELECT COUNT(*) FROM evaluations WHERE evaluated_at >= '2024-06-01'", false),
    ];
    for (sql, expect_rollup) in asked {
        let ((with, reads), (without, _)) =
            runtime.block_on(async { (answer(&rewritten, sql).await, answer(&plain, sql).await) });
        assert_eq!(reads, expect_rollup, "{sql}");
        if !sql.contains("random()") {
            assert_eq!(with, without, "{sql}");
        }
    }
    let explain = runtime.block_on(async {
        let frame = rewritten.sql("EXPLAIN SELECT month, COUNT(*) FROM cases GROUP BY month").await.expect("explain");
        pretty_format_batches(&frame.collect().await.expect("collect")).expect("format").to_string()
    });
    assert!(explain.contains("case_counts"), "EXPLAIN shows the rollup:\n{explain}");
    // The empty case: a COUNT of nothing is 0, not NULL.
    let empty = runtime.block_on(answer(&rewritten, "SELECT COUNT(*) AS n FROM cases WHERE month = '2031-01'")).0;
    assert!(empty.iter().any(|r| r.contains(" 0 ")), "{empty:?}");

    // A runner counts the cases it has passed: one runner per property, or
    // the second would start with its count already reached and run none.
    let runner = || TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    // A question the rollups answer, with the plain plan's answer.
    let answered = |q: Question| {
        let sql = q.sql();
        let ((with, reads), (without, _)) =
            runtime.block_on(async { (answer(&rewritten, &sql).await, answer(&plain, &sql).await) });
        prop_assert!(reads, "the rollup answers {}", sql);
        prop_assert_eq!(with, without, "{}", sql);
        Ok(())
    };
    let outcome = runner().run(&question(), answered);
    let children = runner().run(&child_question(), answered);
    let left_alone = runner().run(&untouchable(), |q| {
        let sql = q.sql();
        let (_, reads) = runtime.block_on(answer(&rewritten, &sql));
        prop_assert!(!reads, "the rule leaves {} on cases", sql);
        Ok(())
    });
    let _ = std::fs::remove_dir_all(root);
    if let Err(e) = outcome.and(children).and(left_alone) {
        panic!("{e}");
    }
}

/// A rate KPI asked at random: its period (cut anywhere, whole months
/// inside it or not), breakdown, filters and the day it is asked on (which
/// moves open cases past their deadline, the part of on-time that
/// `open_due` answers).
#[derive(Debug, Clone)]
struct Asked {
    kpi: Kpi,
    from: u64,
    days: u64,
    by: Vec<Dim>,
    filters: Vec<(Dim, String)>,
    as_of_day: u64,
}

fn asked(district: String) -> impl Strategy<Value = Asked> {
    let rates: Vec<Kpi> = Kpi::ALL.into_iter().filter(|k| k.is_rate() || *k == Kpi::Durations).collect();
    let filters = vec![
        (Dim::District, district),
        (Dim::Channel, "4".to_owned()),
        (Dim::BusinessType, "second_hand_transfer".to_owned()),
        (Dim::ApplicantKind, "enterprise".to_owned()),
    ];
    (
        proptest::sample::select(rates),
        0u64..366,
        0u64..420,
        proptest::sample::subsequence(Dim::ALL.to_vec(), 0..=2),
        proptest::sample::subsequence(filters, 0..=2),
        0u64..380,
    )
        .prop_map(|(kpi, from, days, by, filters, as_of_day)| {
            let by = by.into_iter().filter(|d| kpi.definition().dimensions.contains(d)).collect();
            Asked { kpi, from, days, by, filters, as_of_day }
        })
}

/// Every rate answered from its rollups (`case_counts`, `open_due`,
/// `evaluation_counts`, `qc_counts` for whole months, the raw tables for the
/// ends), and the durations from `duration_counts`, equal the plain plan over
/// `cases`, `evaluations` and `qc_findings`.
#[test]
fn every_rate_from_its_rollups_equals_the_raw_plan() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let flow = flow();
    let district = flow.cases[0].district.clone();
    let (root, with, without) = runtime.block_on(async {
        let db = store::testing::TestDatabase::sqlite().await.expect("sqlite");
        let now = at(2025, 1, 2);
        load(&db.store, &flow, now, now).await;
        let root = temp_dir("rate-rollups");
        let report = refresh(&db.store, &root, &options(now, true)).await.expect("refresh");
        assert!(report.manifest.has_layout());
        for table in ["open_due", "duration_counts", "evaluation_counts", "qc_counts"] {
            assert!(report.manifest.month_rows(table) > 0, "{table} is empty");
        }
        let with = session_with_limit(Some(2), None).expect("session");
        register_snapshot(&with, &root).await.expect("register");
        let without = session_with_limit(Some(2), None).expect("session");
        register_snapshot_without_rollup_rewrite(&without, &root).await.expect("register");
        for table in ["case_counts", "open_due", "duration_counts", "evaluation_counts", "qc_counts"] {
            assert!(without.deregister_table(table).expect("deregister").is_some(), "{table} was registered");
        }
        (root, with, without)
    });
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    let mut runner = TestRunner::new(Config { cases: 96, failure_persistence: None, ..Config::default() });
    let outcome = runner.run(&asked(district), |a| {
        let from = start + chrono::Days::new(a.from);
        let query = KpiQuery {
            from,
            to: from + chrono::Days::new(a.days),
            by: a.by.clone(),
            as_of: at(2024, 1, 1) + chrono::TimeDelta::days(i64::try_from(a.as_of_day).unwrap_or(0)),
            filters: a.filters.clone(),
        };
        let (x, y) = runtime.block_on(async {
            let x = kpi::run(&with, a.kpi, &query).await.map(|r| r.to_json());
            let y = kpi::run(&without, a.kpi, &query).await.map(|r| r.to_json());
            (x, y)
        });
        let (x, y) = (x.map_err(|e| e.to_string()), y.map_err(|e| e.to_string()));
        prop_assert!(x.is_ok(), "{:?}: {:?}", a, x);
        prop_assert_eq!(x, y, "{:?}", a);
        Ok(())
    });
    let _ = std::fs::remove_dir_all(root);
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
