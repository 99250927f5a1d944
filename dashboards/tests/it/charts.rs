//! Golden files for the SVG charts: `WANGBAN_UPDATE_GOLDEN=1` rewrites them.

use std::path::PathBuf;

use dashboards::svg::{Marker, Point, bar_chart, line_chart};

fn check(name: &str, svg: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("WANGBAN_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, svg).expect("write golden");
        return;
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with WANGBAN_UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        svg, golden,
        "{name} differs from its golden file; if intended, regenerate with WANGBAN_UPDATE_GOLDEN=1"
    );
}

fn months() -> Vec<Point> {
    ["2024-03", "2024-04", "2024-05", "2024-06", "2024-07", "2024-08"]
        .iter()
        .zip([0.62, 0.71, 0.74, 0.8, 0.83, 0.86])
        .map(|(m, v)| Point {
            label: (*m).to_owned(),
            value: Some(v),
            href: Some(format!("/types?month={m}")),
            shown: None,
        })
        .collect()
}

#[test]
fn the_monthly_line_chart_matches_its_golden_file() {
    let markers = vec![Marker { at: "2024-04".into(), caption: "第1期".into() }];
    let mut points = months();
    points[2].value = None;
    check("online_rate_by_month.svg", &line_chart("网办率月度趋势", &points, Some(0.9), &markers).into_string());
}

#[test]
fn the_bar_chart_matches_its_golden_file() {
    let points: Vec<Point> = [("抵押登记", 0.93), ("二手房转移登记", 0.78), ("查解封登记", 0.41)]
        .iter()
        .map(|(l, v)| Point { label: (*l).to_owned(), value: Some(*v), href: None, shown: None })
        .collect();
    check("online_rate_by_type.svg", &bar_chart("各业务类型网办率", &points, Some(0.9)).into_string());
}
