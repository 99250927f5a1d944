//! `wangban validate`: JSON out, exit 0 valid, 1 invalid, warnings in the JSON.

use crate::support::{run, stdout, wangban};

fn validate(kind: &str, value: &str) -> (Option<i32>, serde_json::Value) {
    let output = run(wangban().args(["validate", kind, value]));
    let json = serde_json::from_str(&stdout(&output)).expect("JSON on stdout");
    (output.status.code(), json)
}

#[test]
fn domain_examples_are_valid() {
    let (code, json) = validate("id-card", "11010519491231002X");
    assert_eq!(code, Some(0));
    assert_eq!(json["parts"]["address_code"], "110105");
    let (code, json) = validate("unit-no", "430405001002GB00001F00010001");
    assert_eq!(code, Some(0));
    assert_eq!(json["parts"]["grouped"], "430405 001002 GB00001 F00010001");
    let (code, json) = validate("cert-no", "湘(2024)衡阳市不动产权第0001234号");
    assert_eq!(code, Some(0));
    assert_eq!(json["parts"]["kind"], "property");
    let (code, json) = validate("case-no", "(2024)湘0405执123号");
    assert_eq!(code, Some(0));
    assert_eq!(json["parts"]["court_code"], "湘0405");
}

#[test]
fn wrong_check_digit_exits_1_with_the_reason() {
    let (code, json) = validate("id-card", "110105194912310021");
    assert_eq!(code, Some(1));
    assert_eq!(json["valid"], false);
    assert!(json["error"].as_str().unwrap_or_default().contains("expected X"), "{json}");
}

#[test]
fn credit_code_checksum_failure_is_a_warning_and_exit_0() {
    let (code, json) = validate("credit-code", "91350100M000100Y40");
    assert_eq!(code, Some(0));
    assert_eq!(json["parts"]["checksum_ok"], false);
    assert!(!json["warnings"][0].as_str().unwrap_or_default().is_empty());
}

#[test]
fn unknown_kind_is_a_usage_error() {
    let output = run(wangban().args(["validate", "passport", "X"]));
    assert_eq!(output.status.code(), Some(2));
}
