//! Every connector against the hand-written samples in `contracts/`: each
//! sample page is decoded exactly as the connector decodes what it fetched,
//! and each row is compared field by field with the record it must become
//! (or the quarantine reason it must give). The expected records name codes
//! by what they mean (`"channel": "counter"`), and the tables here that turn
//! our enums into those names are written from `docs/partners.md`, not taken
//! from `domain`: two codes swapped in `domain` fail here.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use connectors::poll::{BadRow, Record};
use connectors::registry::RegistryFeed;
use domain::court_order::CourtAction;
use domain::{AgentKind, ApplicantKind, CaseStatus, Channel, Delivery, VendorCode};
use serde_json::{Value, json};
use store::findings::Flaw;

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected(sample: &Path) -> Value {
    let name = sample.file_stem().and_then(|s| s.to_str()).expect("sample name");
    let path = sample.with_file_name(format!("{name}.expected.json"));
    serde_json::from_slice(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The samples of one feed (every file in its `samples/` but the expectations), sorted.
fn samples(feed: &str, extension: &str) -> Vec<PathBuf> {
    let dir = contracts().join(feed).join("samples");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(&format!(".{extension}")) && !name.ends_with(".expected.json")
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no samples in {}", dir.display());
    found
}

fn time(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, time)
}

// The code tables, as docs/partners.md states them.

fn vendor_code(code: VendorCode) -> u16 {
    match code {
        VendorCode::PresaleNotice => 7001,
        VendorCode::PreNoticeMortgage => 7002,
        VendorCode::NoticeToActual => 2003,
        VendorCode::FirstHandTransfer => 2001,
        VendorCode::SecondHandTransfer => 2002,
        VendorCode::Change => 3001,
        VendorCode::Cancellation => 4001,
        VendorCode::MortgageExisting => 1001,
        VendorCode::MortgageOffPlan => 1002,
        VendorCode::Seizure => 8001,
        VendorCode::Release => 8002,
        VendorCode::Renewal => 8003,
        VendorCode::InformationQuery => 9001,
    }
}

fn channel(c: Channel) -> &'static str {
    match c {
        Channel::WebApp => "web_app",
        Channel::PartnerPlatform => "partner_platform",
        Channel::SelfService => "self_service",
        Channel::Counter => "counter",
    }
}

fn delivery(d: Delivery) -> &'static str {
    match d {
        Delivery::Electronic => "electronic",
        Delivery::Post => "post",
        Delivery::Counter => "counter",
    }
}

fn applicant_kind(a: ApplicantKind) -> &'static str {
    match a {
        ApplicantKind::Individual => "individual",
        ApplicantKind::Enterprise => "enterprise",
        ApplicantKind::Judicial => "judicial",
    }
}

fn agent_kind(a: AgentKind) -> &'static str {
    match a {
        AgentKind::Developer => "developer",
        AgentKind::Bank => "bank",
        AgentKind::ProvidentFund => "provident_fund",
        AgentKind::Agency => "agency",
    }
}

fn status(s: CaseStatus) -> &'static str {
    match s {
        CaseStatus::Submitted => "submitted",
        CaseStatus::Accepted => "accepted",
        CaseStatus::Verified => "verified",
        CaseStatus::Correction => "correction",
        CaseStatus::Recorded => "recorded",
        CaseStatus::CertificatePrepared => "certificate_prepared",
        CaseStatus::Issued => "issued",
        CaseStatus::Archived => "archived",
        CaseStatus::Refused => "refused",
        CaseStatus::Withdrawn => "withdrawn",
    }
}

/// A decoded record as the expectation files write it.
fn record_json(record: &Record) -> (Value, Vec<Value>) {
    let flaws = |flaws: &[Flaw]| -> Vec<Value> {
        flaws.iter().map(|f| json!({"field": f.field, "rule": f.rule, "value": f.value_masked})).collect()
    };
    match record {
        Record::Case(c, found) => (
            json!({
                "source": c.source, "external_id": c.external_id, "case_no": c.case_no,
                "vendor_code": vendor_code(c.vendor_code), "business_type": c.business_type().code(),
                "channel": channel(c.channel), "delivery": c.delivery.map(delivery),
                "applicant_kind": applicant_kind(c.applicant_kind), "agent_kind": c.agent_kind.map(agent_kind),
                "applicant_name": c.applicant_name, "applicant_id_no": c.applicant_id_no, "district": c.district,
                "unit_no": c.unit_no.as_ref().map(|u| u.as_str().to_owned()), "status": status(c.status),
                "submitted_at": time(c.submitted_at), "accepted_at": opt_time(c.accepted_at),
                "verified_at": opt_time(c.verified_at), "recorded_at": opt_time(c.recorded_at),
                "cert_prepared_at": opt_time(c.cert_prepared_at), "issued_at": opt_time(c.issued_at),
                "archived_at": opt_time(c.archived_at), "closed_at": opt_time(c.closed_at),
                "correction_count": c.correction_count, "filing_no": c.filing_no, "loan_ref": c.loan_ref,
                "handler": c.handler, "source_updated_at": time(c.source_updated_at),
            }),
            flaws(found),
        ),
        Record::Qc(q, found) => (
            json!({
                "source": q.source, "external_id": q.external_id, "case_source": q.case_source,
                "case_external_id": q.case_external_id, "category": q.category, "severity": q.severity,
                "section": q.section, "description": q.description, "found_at": time(q.found_at),
                "corrected_at": opt_time(q.corrected_at), "source_updated_at": time(q.source_updated_at),
            }),
            flaws(found),
        ),
        Record::Evaluation(e, found) => (
            json!({
                "source": e.source, "external_id": e.external_id, "case_source": e.case_source,
                "case_external_id": e.case_external_id, "level": e.level, "channel": e.channel,
                "comment": e.comment, "evaluated_at": time(e.evaluated_at),
                "rectified_at": opt_time(e.rectified_at), "source_updated_at": time(e.source_updated_at),
            }),
            flaws(found),
        ),
        Record::Filing(f, found) => (
            json!({
                "source": f.source, "filing_no": f.filing_no, "developer_name": f.developer_name,
                "developer_credit_code": f.developer_credit_code, "buyer_name": f.buyer_name,
                "buyer_id_no": f.buyer_id_no, "unit_no": f.unit_no, "price_cents": f.price_cents,
                "filed_at": time(f.filed_at), "status": f.status, "source_file": f.source_file,
                "source_updated_at": time(f.source_updated_at),
            }),
            flaws(found),
        ),
        Record::Loan(l, found) => (
            json!({
                "source": l.source, "external_id": l.external_id, "lender_kind": l.lender_kind,
                "borrower_name": l.borrower_name, "borrower_id_no": l.borrower_id_no, "unit_no": l.unit_no,
                "amount_cents": l.amount_cents, "applied_at": time(l.applied_at), "status": l.status,
                "registry_case_no": l.registry_case_no, "source_updated_at": time(l.source_updated_at),
            }),
            flaws(found),
        ),
        Record::Court(r) => {
            let o = &r.order;
            let (action, start, end, original) = match &o.action {
                CourtAction::Seize { start, end } => ("seize", Some(*start), Some(*end), None),
                CourtAction::Renew { original_order_no, start, end } => {
                    ("renew", Some(*start), Some(*end), Some(original_order_no.clone()))
                }
                CourtAction::Release { original_order_no } => ("release", None, None, Some(original_order_no.clone())),
            };
            (
                json!({
                    "partner_id": r.partner_id, "seq": r.seq, "order_no": o.order_no, "court_code": o.court_code,
                    "court_name": o.court_name, "case_no": o.case_no.as_str(), "action": action,
                    "start": start.map(|d| d.to_string()), "end": end.map(|d| d.to_string()),
                    "original_order_no": original, "unit_no": o.unit_no.as_str(),
                    "cert_no": o.cert_no.as_ref().map(|c| c.as_str().to_owned()),
                    "respondent_name": o.respondent_name, "respondent_id_no": o.respondent_id_no,
                    "ruling_no": o.ruling_no, "judge": o.judge, "served_at": time(o.served_at),
                }),
                Vec::new(),
            )
        }
    }
}

/// Compares decoded rows with a sample's expectation, naming the sample, the
/// row and the field of the first difference.
fn check_rows(sample: &Path, rows: &[Result<Record, BadRow>], expected: &Value) {
    let name = sample.display();
    let wanted = expected["rows"].as_array().unwrap_or_else(|| panic!("{name}: expectation without rows"));
    assert_eq!(rows.len(), wanted.len(), "{name}: rows decoded");
    for (i, (row, want)) in rows.iter().zip(wanted).enumerate() {
        match (row, want.get("record"), want.get("quarantine")) {
            (Ok(record), Some(want_record), None) => {
                let (got, flaws) = record_json(record);
                let want_fields = want_record.as_object().expect("record object");
                let got_fields = got.as_object().expect("record object");
                for (field, value) in want_fields {
                    assert_eq!(got_fields.get(field), Some(value), "{name} row {i}: field {field}");
                }
                for field in got_fields.keys() {
                    assert!(want_fields.contains_key(field), "{name} row {i}: field {field} is not in the expectation");
                }
                let want_flaws = want.get("findings").cloned().unwrap_or_else(|| json!([]));
                assert_eq!(Value::Array(flaws), want_flaws, "{name} row {i}: findings");
            }
            (Err(bad), None, Some(quarantine)) => {
                assert_eq!(
                    bad.reason_code,
                    quarantine["reason_code"].as_str().expect("reason_code"),
                    "{name} row {i}: {}",
                    bad.reason
                );
                let part = quarantine["reason_contains"].as_str().unwrap_or_default();
                assert!(bad.reason.contains(part), "{name} row {i}: reason {:?} does not name {part:?}", bad.reason);
                assert!(!bad.raw.is_empty(), "{name} row {i}: the raw row is kept");
            }
            (Ok(record), _, _) => panic!("{name} row {i}: decoded {record:?}, expected {want}"),
            (Err(bad), _, _) => {
                panic!("{name} row {i}: quarantined ({} {}), expected {want}", bad.reason_code, bad.reason)
            }
        }
    }
}

fn registry_feed(feed: RegistryFeed, folder: &str) {
    for sample in samples(folder, "json") {
        let page = connectors::registry::decode_page(feed, &read(&sample), Some("c-0"))
            .unwrap_or_else(|e| panic!("{}: {e}", sample.display()));
        check_rows(&sample, &page.rows, &expected(&sample));
    }
}

#[test]
fn registry_cases_decode_as_the_contract_samples_say() {
    registry_feed(RegistryFeed::Cases, "registry-cases");
}

#[test]
fn registry_qc_findings_decode_as_the_contract_samples_say() {
    registry_feed(RegistryFeed::QcFindings, "registry-qc-findings");
}

#[test]
fn registry_evaluations_decode_as_the_contract_samples_say() {
    registry_feed(RegistryFeed::Evaluations, "registry-evaluations");
}

#[test]
fn the_every_code_samples_cover_every_code_of_every_table() {
    let page: Value =
        serde_json::from_slice(&read(&contracts().join("registry-cases/samples/page-every-code.json"))).expect("json");
    let seen = |field: &str| -> std::collections::BTreeSet<String> {
        page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|r| r.get(field).map(|v| v.to_string()).unwrap_or("null".into()))
            .collect()
    };
    let codes = |list: &[&str]| list.iter().map(|c| format!("\"{c}\"")).collect::<std::collections::BTreeSet<_>>();
    assert!(seen("djlx").is_superset(&codes(&["100", "200", "300", "400", "700", "800", "900"])));
    assert!(seen("sqlx").is_superset(&codes(&[
        "7001", "7002", "2003", "2001", "2002", "3001", "4001", "1001", "1002", "8001", "8002", "8003", "9001"
    ])));
    assert!(seen("sqfs").is_superset(&codes(&["1", "2", "3", "4"])));
    assert!(seen("lzfs").is_superset(&codes(&["1", "2", "3"])) && seen("lzfs").contains("null"));
    assert!(seen("sqrlx").is_superset(&codes(&["1", "2", "3", "4", "5", "6", "7"])));
    assert!(seen("zt").is_superset(&codes(&["SL", "BZ", "DB", "FZ", "GD", "BYSL", "CH"])));
}

#[test]
fn housing_files_decode_as_the_contract_samples_say() {
    for sample in samples("housing-file", "csv") {
        let want = expected(&sample);
        let file = want["file"].as_str().expect("file");
        let rows = connectors::housing::parse_export_file(file, &read(&sample))
            .unwrap_or_else(|e| panic!("{}: {e}", sample.display()));
        check_rows(&sample, &rows, &want);
    }
    // The listing: its entries are read, an unsafe file name refuses it whole.
    for sample in samples("housing-listing", "json") {
        let want = expected(&sample);
        let listed = connectors::housing::parse_listing(&read(&sample));
        match want.get("error_contains").and_then(Value::as_str) {
            Some(part) => {
                let error = listed.expect_err("refused").to_string();
                assert!(error.contains(part), "{}: {error}", sample.display());
            }
            None => assert_eq!(listed.expect("listing"), want["entries"].as_u64().expect("entries") as usize),
        }
    }
}

#[test]
fn the_housing_sample_file_matches_its_listing_entry() {
    let listing: Value =
        serde_json::from_slice(&read(&contracts().join("housing-listing/samples/listing.json"))).expect("json");
    let entry = &listing[0];
    let bytes = read(&contracts().join("housing-file/samples").join(entry["file"].as_str().expect("file")));
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), entry["sha256"].as_str().expect("sha256"));
    let data_lines = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() - 1;
    assert_eq!(data_lines as u64, entry["rows"].as_u64().expect("rows"));
    assert!(bytes.windows(2).filter(|w| w == b"\r\n").count() == data_lines + 1, "CRLF line ends");
}

#[test]
fn bank_pages_decode_as_the_contract_samples_say() {
    for sample in samples("bank", "json") {
        let want = expected(&sample);
        let source = want["source"].as_str().expect("source");
        let bank = connectors::lenders::Bank::new(source.trim_start_matches("bank:"), "", "");
        let page = bank.decode_items(&read(&sample), "sample").unwrap_or_else(|e| panic!("{}: {e}", sample.display()));
        check_rows(&sample, &page.rows, &want);
    }
}

#[test]
fn provident_fund_pages_decode_as_the_contract_samples_say() {
    for sample in samples("provident-fund", "xml") {
        let page = connectors::lenders::decode_loans(&read(&sample), "sample")
            .unwrap_or_else(|e| panic!("{}: {e}", sample.display()));
        check_rows(&sample, &page.rows, &expected(&sample));
    }
}

#[test]
fn court_platform_requests_decode_as_the_contract_samples_say() {
    for sample in samples("court-platform-requests", "xml") {
        let (rows, _) = connectors::court_platform::decode_requests(&read(&sample), 0)
            .unwrap_or_else(|e| panic!("{}: {e}", sample.display()));
        check_rows(&sample, &rows, &expected(&sample));
    }
}

#[test]
fn court_platform_feedback_is_written_byte_for_byte_as_the_samples() {
    for sample in samples("court-platform-feedback", "xml")
        .into_iter()
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("feedback-")))
    {
        let want = &expected(&sample)["feedback"];
        let feedback = store::outbox::Feedback {
            partner_id: "court-platform".into(),
            request_no: want["request_no"].as_str().expect("request_no").into(),
            result: want["result"].as_i64().expect("result"),
            reason: want["reason"].as_str().expect("reason").into(),
            recorded_at: DateTime::parse_from_rfc3339(want["recorded_at"].as_str().expect("recorded_at"))
                .expect("time")
                .with_timezone(&Utc),
            attempts: 0,
            acked_at: None,
        };
        let written = connectors::court_platform::feedback_document(&feedback);
        assert_eq!(written.as_bytes(), read(&sample).as_slice(), "{}", sample.display());
    }
}

#[test]
fn an_empty_last_page_without_a_cursor_keeps_the_cursor() {
    // Not the contract (next_cursor is a string), but unambiguous: tolerated,
    // and named by `partner check` as a deviation.
    let body = read(&contracts().join("registry-cases/samples/page-edge-empty-last-null-cursor.json"));
    let page = connectors::registry::decode_page(RegistryFeed::Cases, &body, Some("c-42")).expect("tolerated");
    assert_eq!((page.rows.len(), page.next_cursor.as_str(), page.has_more), (0, "c-42", false));
    // A page with records still needs its cursor.
    let with_rows = br#"{"data":[{"ywh":"x"}],"next_cursor":null,"has_more":false}"#;
    assert!(connectors::registry::decode_page(RegistryFeed::Cases, with_rows, Some("c-42")).is_err());
}
