//! The court push contract from the courts' side: the hand-written orders in
//! `contracts/court-push/samples/` are pushed in order over real HTTP, signed
//! as a court would sign them, and each answer is compared with its
//! `*.expected.json` (HTTP status, receipts or error). Also: the served XSD is
//! the contract's file, byte for byte.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{TestApp, both_backends, reason_code, tag};

both_backends!(court_push_samples_get_the_answers_their_contract_names, the_served_xsd_is_the_contract_file);

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/court-push/samples")
}

/// The receipts of an answer, in order: (`OrderNo`, `Status`, `QueuePosition`, reason code).
fn receipts(body: &str) -> Vec<(String, String, Option<String>, Option<String>)> {
    body.split("<Receipt>")
        .skip(1)
        .map(|receipt| {
            let text = |name| tag(receipt, name).map(str::to_owned);
            (
                text("OrderNo").unwrap_or_default(),
                text("Status").unwrap_or_default(),
                text("QueuePosition"),
                reason_code(receipt).map(str::to_owned),
            )
        })
        .collect()
}

async fn court_push_samples_get_the_answers_their_contract_names(app: &TestApp) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples())
        .expect("samples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the samples are there");
    for file in files {
        let name = file.display().to_string();
        let body = std::fs::read_to_string(&file).expect("sample");
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(file.with_extension("expected.json")).expect("expectation"))
                .expect("json");
        let (status, answer) = app.post(&body).await;
        assert_eq!(u64::from(status), want["http_status"].as_u64().expect("http_status"), "{name}: {answer}");
        if let Some(code) = want.get("error_code").and_then(Value::as_str) {
            assert_eq!(tag(&answer, "Code"), Some(code), "{name}: {answer}");
            let part = want["message_contains"].as_str().unwrap_or_default();
            assert!(tag(&answer, "Message").is_some_and(|m| m.contains(part)), "{name}: {answer}");
        }
        if let Some(expected) = want.get("receipts").and_then(Value::as_array) {
            let got = receipts(&answer);
            assert_eq!(got.len(), expected.len(), "{name}: {answer}");
            for ((order_no, status, position, reason), want) in got.iter().zip(expected) {
                assert_eq!(Some(order_no.as_str()), want["order_no"].as_str(), "{name}");
                assert_eq!(Some(status.as_str()), want["status"].as_str(), "{name}: {answer}");
                let want_position = want.get("queue_position").and_then(Value::as_u64).map(|p| p.to_string());
                assert_eq!(position, &want_position, "{name}: queue position");
                assert_eq!(reason.as_deref(), want.get("reason_code").and_then(Value::as_str), "{name}: {answer}");
            }
        }
    }
}

async fn the_served_xsd_is_the_contract_file(app: &TestApp) {
    let contract = std::fs::read_to_string(samples().join("../court-api.xsd")).expect("xsd");
    for path in ["/api/court/v1/court-api.xsd", "/contracts/court-push/court-api.xsd"] {
        let served = reqwest::get(format!("http://{}{path}", app.addr)).await.expect("get");
        assert_eq!(served.status().as_u16(), 200, "{path}");
        assert_eq!(served.text().await.expect("body"), contract, "{path}");
    }
}
