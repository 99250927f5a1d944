//! The monthly report, read back with calamine (not our writer): its
//! headline figures are the KPI API's for the same snapshot and month, codes
//! are text, the charts' series cover the tables, and making it again gives
//! the same bytes.

use std::io::{Cursor, Read as _};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::{NaiveDate, TimeZone, Utc};
use dashboards::report::{HEADLINE_KPIS, MonthlyReport, SHEETS, TABLE_ROW};
use store::{Store, both_backends};

use crate::pages::env;

fn december() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 12, 1).expect("date")
}

async fn the_monthly_report_holds_the_api_figures_text_as_text_and_its_charts(store: Store) {
    let env = env(store, "report").await;
    let made_at = Utc.with_ymd_and_hms(2025, 1, 10, 3, 0, 0).single().expect("time");
    let snapshot = env.dashboards.kpis.snapshot().await.expect("snapshot");
    let report = MonthlyReport::gather(&snapshot, december(), made_at).await.expect("report");
    let bytes = report.xlsx().expect("xlsx");
    let again = MonthlyReport::gather(&snapshot, december(), made_at).await.expect("again");
    assert!(again.xlsx().expect("xlsx") == bytes, "made again from the same snapshot, the same bytes");

    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.clone())).expect("calamine opens it");
    assert_eq!(book.sheet_names(), SHEETS.map(String::from).to_vec());

    // 总览: each headline KPI's numerator, denominator and rate are the API's.
    let overview = book.worksheet_range(SHEETS[0]).expect("总览");
    let cell = |r: u32, c: u32| overview.get_value((r, c)).cloned().unwrap_or(Data::Empty);
    let title = cell(0, 0);
    assert!(matches!(&title, Data::String(t) if t.contains("2024-12")), "{title:?}");
    assert!(matches!(cell(1, 0), Data::String(t) if t.contains(&report.snapshot_id)), "the snapshot is named");
    assert!(matches!(cell(2, 0), Data::String(t) if t.contains("kpi.online_rate v1")), "the definitions are named");
    assert!(HEADLINE_KPIS.iter().all(|k| k.is_rate()), "the headline is the rates");
    for (i, kpi) in HEADLINE_KPIS.iter().enumerate() {
        let r = TABLE_ROW + 1 + i as u32;
        let api = crate::pages::get_json(&env.app, &format!("/api/kpi/{kpi}?from=2024-12-01&to=2024-12-31")).await;
        assert_eq!(api["snapshot_id"].as_str(), Some(report.snapshot_id.as_str()));
        let row = &api["rows"][0];
        assert_eq!(cell(r, 0), Data::String(kpi.definition().title_zh.to_owned()));
        assert_eq!(cell(r, 1), Data::Float(row["numerator"].as_f64().expect("numerator")), "{kpi} numerator");
        assert_eq!(cell(r, 2), Data::Float(row["denominator"].as_f64().expect("denominator")), "{kpi} denominator");
        match row["rate"].as_f64() {
            Some(rate) => assert_eq!(cell(r, 3), Data::Float(rate), "{kpi} rate"),
            None => assert_eq!(cell(r, 3), Data::Empty, "{kpi} has no rate"),
        }
    }
    let online = TABLE_ROW + 1;
    assert_eq!(cell(online, 8), Data::Float(0.9), "the target");

    // 分布: codes (district codes, business type codes, channel digits) are text, counts numbers.
    let distribution = book.worksheet_range(SHEETS[2]).expect("分布");
    let mut codes = 0;
    for r in TABLE_ROW + 1..=distribution.end().map_or(0, |e| e.0) {
        let (code, count) = (distribution.get_value((r, 0)), distribution.get_value((r, 2)));
        if let (Some(code), Some(Data::Float(_))) = (code, count) {
            assert!(matches!(code, Data::String(_)), "row {r}: a code stored as {code:?}");
            codes += 1;
        }
    }
    assert!(codes >= 3, "type, district and channel rows: {codes}");

    // 趋势: one row per month with cases since 2024-01; the chart's series cover exactly those rows.
    let trend = book.worksheet_range(SHEETS[1]).expect("趋势");
    let months = report.monthly.rates().len() as u32;
    assert!(months >= 8, "{months}");
    assert_eq!(trend.get_value((TABLE_ROW + 1, 0)), Some(&Data::String("2024-04".into())), "first month as text");
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let mut chart = String::new();
    archive.by_name("xl/charts/chart1.xml").expect("a native chart").read_to_string(&mut chart).expect("read");
    let (first, last) = (TABLE_ROW + 2, TABLE_ROW + 1 + months);
    for column in ["A", "D", "E", "F"] {
        let range = format!("${column}${first}:${column}${last}");
        assert!(chart.contains(&range), "the trend chart reads {range}: {chart}");
    }
    assert!(chart.contains("<c:lineChart>") && chart.contains("<c:barChart>"), "a line chart with go-live columns");
    let names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| n.starts_with("xl/charts/chart"))
        .map(|n| n.into_owned())
        .collect();
    assert_eq!(names.len(), 4, "trend, and type, district and channel bars: {names:?}");
    let mut printing = String::new();
    archive.by_name("xl/worksheets/sheet1.xml").expect("sheet").read_to_string(&mut printing).expect("read");
    assert!(printing.contains(r#"paperSize="9""#) && printing.contains(r#"orientation="landscape""#), "A4 landscape");
    let mut workbook = String::new();
    archive.by_name("xl/workbook.xml").expect("workbook").read_to_string(&mut workbook).expect("read");
    assert!(workbook.contains("_xlnm.Print_Titles"), "header rows repeat on every printed page");

    // A month after the snapshot, or without cases, is refused saying why.
    let future = NaiveDate::from_ymd_opt(2025, 3, 1).expect("date");
    let err = MonthlyReport::gather(&snapshot, future, made_at).await.expect_err("after the snapshot");
    assert!(err.to_string().contains("after the snapshot"), "{err}");
    let empty = NaiveDate::from_ymd_opt(2024, 2, 1).expect("date");
    let err = MonthlyReport::gather(&snapshot, empty, made_at).await.expect_err("no cases");
    assert!(err.to_string().contains("no cases in scope"), "{err}");
}

/// A kept report keeps its snapshot through later refreshes, is made again
/// from it byte for byte, is listed on `/reports` for leadership and QC,
/// downloads (audited) and prints.
async fn kept_reports_keep_their_snapshot_list_download_and_print(store: Store) {
    let env = env(store, "kept").await;
    let made_at = Utc.with_ymd_and_hms(2025, 1, 10, 3, 0, 0).single().expect("time");
    let archive = &env.dashboards.reports;
    let kept = archive.make(&env.dashboards.kpis, december(), made_at).await.expect("made");
    assert_eq!((kept.month.as_str(), archive.list().expect("list").len()), ("2024-12", 1));
    let bytes = archive.read(&kept).expect("read");
    assert_eq!(bytes.len(), kept.bytes);

    // Two refreshes later the report's snapshot would be gone were it not pinned.
    for minutes in [5, 10] {
        let options = warehouse::export::RefreshOptions {
            now: made_at + chrono::TimeDelta::minutes(minutes),
            key: b"test-key".to_vec(),
            calendar: domain::Calendar::builtin(),
            catalogue: domain::Catalogue::builtin(),
            full: true,
        };
        warehouse::export::refresh(&env.store, &env.dir, &options).await.expect("refresh");
    }
    let current = env.dashboards.kpis.snapshot().await.expect("snapshot");
    assert_ne!(current.manifest.snapshot_id, kept.snapshot_id, "a newer snapshot is current");
    let again = archive.remake(&env.dashboards.kpis, &kept).await.expect("made again");
    assert_eq!(again.snapshot_id, kept.snapshot_id);
    assert!(again.xlsx().expect("xlsx") == bytes, "made again from its kept snapshot: the same bytes");

    let (_, leader) =
        crate::pages::login(&env.app, "leadership", &crate::pages::password(dashboards::auth::Role::Leadership)).await;
    let list = crate::pages::get(&env.app, "/reports", leader.as_deref()).await;
    assert_eq!(list.status, axum::http::StatusCode::OK);
    assert!(list.body.contains("2024-12") && list.body.contains("/reports/2024-12/xlsx"), "{}", list.body);
    let file = crate::pages::get(&env.app, "/reports/2024-12/xlsx", leader.as_deref()).await;
    assert_eq!(file.status, axum::http::StatusCode::OK);
    assert!(
        file.headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("filename*=UTF-8''"))
    );
    let audit = env.store.recent_audit(20).await.expect("audit");
    assert!(
        audit.iter().any(|e| e.action == "dashboard.report_download" && e.actor == "leadership"),
        "downloads are audited"
    );
    let print = crate::pages::get(&env.app, "/reports/2024-12", leader.as_deref()).await;
    assert_eq!(print.status, axum::http::StatusCode::OK, "{}", print.body);
    for text in ["不动产登记网办月报", "<svg", "差距分析", &kept.snapshot_id] {
        assert!(print.body.contains(text), "the print page shows {text}");
    }
    let missing = crate::pages::get(&env.app, "/reports/2023-01", leader.as_deref()).await;
    assert_eq!(missing.status, axum::http::StatusCode::NOT_FOUND);
    assert!(missing.body.contains("2024-12"), "a 404 names the kept months");
    let (_, staff) =
        crate::pages::login(&env.app, "staff", &crate::pages::password(dashboards::auth::Role::Staff)).await;
    let refused = crate::pages::get(&env.app, "/reports/2024-12/xlsx", staff.as_deref()).await;
    assert_eq!(refused.status, axum::http::StatusCode::FORBIDDEN, "staff may not take the report");
}

both_backends!(
    the_monthly_report_holds_the_api_figures_text_as_text_and_its_charts,
    kept_reports_keep_their_snapshot_list_download_and_print,
);
