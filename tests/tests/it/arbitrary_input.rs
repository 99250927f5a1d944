//! Arbitrary bytes at every edge where outside data comes in: the court
//! gateway's XML decoding, the identifier parsers, and each partner decoder
//! (a record of every feed, a whole housing export file, an export listing,
//! XML row splitting). Each must answer with a value or a typed error, never a
//! panic. Two kinds of input: bytes from nothing, and valid samples (from the
//! simulator) mutated by flipped bytes, insertions and truncation, which get
//! much deeper into the parsers. The coverage-guided fuzz targets in `fuzz/`
//! call the same entry points.

use std::sync::LazyLock;

use chrono::{NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use simulator::caseflow::{FlowParams, generate};

/// Valid samples per entry point, from a small simulated flow.
struct Samples {
    court_push: Vec<Vec<u8>>,
    registry: Vec<Vec<u8>>,
    court_platform: Vec<Vec<u8>>,
    housing_files: Vec<Vec<u8>>,
    identifiers: Vec<String>,
}

static SAMPLES: LazyLock<Samples> = LazyLock::new(|| {
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 11);
    params.yearly_volume = 2000;
    let flow = generate(&params);
    let now = Utc.with_ymd_and_hms(2025, 1, 5, 2, 0, 0).single().expect("time");
    let mut rng = StdRng::seed_from_u64(11);
    let mut court_push: Vec<Vec<u8>> =
        (0..20).map(|i| simulator::court_push::order_element(11, i, 500, now, &mut rng).into_bytes()).collect();
    let first = simulator::court_push::order_element(11, 90, 500, now, &mut rng);
    let second = simulator::court_push::order_element(11, 91, 500, now, &mut rng);
    court_push.push(format!("<CourtOrders>{first}{second}</CourtOrders>").into_bytes());
    let registry = flow
        .cases
        .iter()
        .take(40)
        .map(|c| simulator::servers::registry::case_json(c, now).to_string().into_bytes())
        .collect();
    let court_platform = flow
        .court_requests
        .iter()
        .take(20)
        .map(|r| simulator::servers::court_platform::request_xml(r).into_bytes())
        .collect();
    let faults = simulator::servers::faults::Faults::default();
    let housing_files =
        simulator::servers::housing::exports(&flow, NaiveDate::from_ymd_opt(2024, 3, 1).expect("date"), &faults, 11)
            .into_iter()
            .filter(|f| f.rows > 0)
            .take(10)
            .map(|f| f.bytes)
            .collect();
    let identifiers = flow
        .cases
        .iter()
        .take(30)
        .flat_map(|c| [Some(c.applicant_id_no.clone()), c.unit_no.as_ref().map(|u| u.as_str().to_owned())])
        .flatten()
        .chain(["湘(2024)衡阳市不动产权第0001234号".to_owned(), "(2024)湘0405执123号".to_owned()])
        .collect();
    Samples { court_push, registry, court_platform, housing_files, identifiers }
});

/// A valid sample, then mutated: some bytes replaced, some inserted, maybe cut short.
fn mutated(pick: impl Fn(&Samples) -> &Vec<Vec<u8>> + 'static) -> impl Strategy<Value = Vec<u8>> {
    (
        any::<prop::sample::Index>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 0..6),
        any::<Option<prop::sample::Index>>(),
    )
        .prop_map(move |(which, edits, cut)| {
            let samples = pick(&SAMPLES);
            let mut bytes = samples[which.index(samples.len())].clone();
            for (at, byte, insert) in edits {
                let i = at.index(bytes.len() + 1);
                if insert || i == bytes.len() {
                    bytes.insert(i, byte);
                } else {
                    bytes[i] = byte;
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..1024)
}

const FEEDS: [&str; 7] =
    ["registry", "registry-qc", "registry-evaluations", "housing", "provident_fund", "court_platform", "bank:icbc"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn court_push_bodies_decode_or_fail_cleanly(bytes in prop_oneof![any_bytes(), mutated(|s| &s.court_push)]) {
        if let Ok(orders) = gateway::court::decode_orders(&bytes) {
            prop_assert!(!orders.is_empty() || bytes.windows(13).any(|w| w == b"<CourtOrders>" || w == b"<CourtOrders/"));
        }
    }

    #[test]
    fn identifiers_parse_or_fail_cleanly(text in prop_oneof![
        any::<String>(),
        "[0-9Xx]{15,18}",
        "[0-9A-Z]{18}",
        "4304[0-9]{8}GB[0-9]{5}F[0-9]{8}",
        mutated(|s| {
            static IDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| SAMPLES.identifiers.iter().map(|i| i.as_bytes().to_vec()).collect());
            let _ = s;
            &IDS
        }).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        let _ = domain::ident::ResidentId::parse(&text);
        let _ = domain::ident::CreditCode::parse(&text);
        let _ = domain::ident::UnitNo::parse(&text);
        let _ = domain::ident::CertificateNo::parse(&text);
        let _ = domain::ident::CaseNo::parse(&text);
        let masked = domain::ident::mask_id_number(&text);
        prop_assert_eq!(masked.chars().count(), text.chars().count());
    }

    #[test]
    fn partner_records_validate_or_fail_cleanly(
        feed in prop::sample::select(FEEDS.to_vec()),
        bytes in prop_oneof![any_bytes(), mutated(|s| &s.registry), mutated(|s| &s.court_platform)],
    ) {
        let _ = connectors::replay::validate_record(feed, &bytes);
    }

    #[test]
    fn housing_files_parse_or_fail_cleanly(bytes in prop_oneof![any_bytes(), mutated(|s| &s.housing_files)]) {
        if let Ok(rows) = connectors::housing::parse_export_file("filings-20240101.csv", &bytes) {
            // The header is not a row; every other line is one, good or bad.
            let lines = bytes.split(|b| *b == b'\n').count() - usize::from(bytes.ends_with(b"\n"));
            prop_assert_eq!(rows.len(), lines - 1);
        }
        let _ = connectors::housing::parse_listing(&bytes);
    }

    #[test]
    fn xml_rows_split_or_fail_cleanly(bytes in prop_oneof![any_bytes(), mutated(|s| &s.court_platform)]) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = connectors::xmlrows::split(&format!("<KZQQList>{text}</KZQQList>"), "KZQQList", "KZQQ");
        let _ = connectors::xmlrows::split(&text, "LoanList", "Loan");
    }
}

#[test]
fn the_samples_are_valid_before_mutation() {
    for body in &SAMPLES.court_push {
        let orders = gateway::court::decode_orders(body).expect("a simulated push decodes");
        assert!(orders.iter().all(Result::is_ok), "{orders:?}");
    }
    for row in &SAMPLES.registry {
        connectors::replay::validate_record("registry", row).expect("a simulated case validates");
    }
    for request in &SAMPLES.court_platform {
        connectors::replay::validate_record("court_platform", request).expect("a simulated court request validates");
    }
    assert!(!SAMPLES.housing_files.is_empty());
    for file in &SAMPLES.housing_files {
        let rows =
            connectors::housing::parse_export_file("filings-20240101.csv", file).expect("a simulated export parses");
        assert!(rows.iter().all(Result::is_ok));
    }
}

/// Writes the valid samples as the fuzz targets' seed corpora (`fuzz/corpus/`).
/// Run by hand when the formats change: `cargo test -p tests -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files into fuzz/corpus; run by hand"]
fn write_fuzz_seeds() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let write = |target: &str, name: String, bytes: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(name), bytes).expect("seed");
    };
    for (i, body) in SAMPLES.court_push.iter().enumerate().take(8) {
        write("court_xml", format!("push-{i}.xml"), body);
    }
    if let Some(batch) = SAMPLES.court_push.last() {
        write("court_xml", "batch.xml".to_owned(), batch);
    }
    for (i, id) in SAMPLES.identifiers.iter().enumerate().take(12) {
        write("identifiers", format!("id-{i}.txt"), id.as_bytes());
    }
    for (i, row) in SAMPLES.registry.iter().enumerate().take(6) {
        write("partner_record", format!("registry-{i}.bin"), &[[0u8].as_slice(), row].concat());
    }
    for (i, request) in SAMPLES.court_platform.iter().enumerate().take(6) {
        write("partner_record", format!("court-platform-{i}.bin"), &[[5u8].as_slice(), request].concat());
    }
    for (i, file) in SAMPLES.housing_files.iter().enumerate().take(4) {
        write("housing_file", format!("filings-{i}.csv"), file);
    }
}
