//! `wangban calendar`: the official edges and extra years from a file.

use crate::support::{run, stderr, stdout, temp_dir, wangban};

#[test]
fn workdays_and_add_follow_the_counting_rule() {
    let output = run(wangban().args(["calendar", "workdays", "2024-09-27", "2024-10-08"]));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output).trim(), "3");
    let output = run(wangban().args(["calendar", "add", "2024-09-27", "1"]));
    assert_eq!(stdout(&output).trim(), "2024-09-29", "Sunday 2024-09-29 is a make-up working day");
}

#[test]
fn check_reports_make_up_days_and_holidays() {
    for (date, working) in [("2024-10-12", true), ("2025-01-26", true), ("2026-02-23", false), ("2024-09-29", true)] {
        let output = run(wangban().args(["calendar", "check", date]));
        let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
        assert_eq!(json["working_day"], working, "{date}");
    }
}

#[test]
fn a_year_added_from_a_file_is_used_and_missing_years_are_warned_about() {
    let output = run(wangban().args(["calendar", "workdays", "2027-02-05", "2027-02-15"]));
    assert!(stderr(&output).contains("no official holiday data for 2027"), "{}", stderr(&output));
    let dir = temp_dir("calendar");
    let file = dir.join("2027.toml");
    std::fs::write(&file, "[2027]\nholidays = [\"2027-02-06..2027-02-12\"]\nworkdays = [\"2027-02-14\"]\n")
        .expect("write");
    let output = run(wangban().args(["calendar", "workdays", "2027-02-05", "2027-02-15", "--calendar"]).arg(&file));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("no official holiday data"));
    // 02-14 (make-up Sunday) and 02-15 (Monday).
    assert_eq!(stdout(&output).trim(), "2");
    std::fs::write(&file, "[2027]\nholidays = [\"2027-02-30\"]\n").expect("write");
    let output = run(wangban().args(["calendar", "add", "2027-01-04", "1", "--calendar"]).arg(&file));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("2027-02-30"), "{}", stderr(&output));
}

#[test]
fn bad_dates_are_refused_clearly() {
    let output = run(wangban().args(["calendar", "add", "2024-13-01", "1"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not a date"), "{}", stderr(&output));
}
