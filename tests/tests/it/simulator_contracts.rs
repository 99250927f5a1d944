//! The simulator against the contracts, from the outside: what it serves for a
//! fixed seed (every registry page, the housing listing and files, each bank's
//! first page, the provident fund's and the court platform's pages) is written
//! to a folder and validated by `contracts/validate.py` with the `jsonschema`
//! and `lxml` packages, not with wangban's parsers. Without Python and those
//! packages the test says it is skipped, unless `WANGBAN_CONTRACT_TOOLS=required`
//! (as in CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDate;
use simulator::caseflow::{FlowParams, generate};
use simulator::servers::faults::Faults;

fn tools_present() -> bool {
    Command::new("python3").args(["-c", "import jsonschema, lxml"]).output().is_ok_and(|o| o.status.success())
}

/// Whether the contract tools can run here; `false` (after saying the test is
/// skipped) without them, a failure when `WANGBAN_CONTRACT_TOOLS=required`.
pub(crate) fn contract_tools() -> bool {
    if tools_present() {
        return true;
    }
    assert_ne!(
        std::env::var("WANGBAN_CONTRACT_TOOLS").as_deref(),
        Ok("required"),
        "python3 with jsonschema and lxml is required (pip install jsonschema lxml)"
    );
    eprintln!("skipped: python3 with jsonschema and lxml not found (pip install jsonschema lxml)");
    false
}

/// Runs `contracts/validate.py --simulator dir` (every file under
/// `dir/<folder>/` against that folder's schema); the report, or a failure
/// naming each file that does not validate.
pub(crate) fn validate_folder(dir: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/validate.py");
    let output = Command::new("python3").arg(&script).arg("--simulator").arg(dir).output().expect("python3");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    let failures: Vec<&str> = report.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(output.status.success(), "{}\n{}", failures.join("\n"), String::from_utf8_lossy(&output.stderr));
    report
}

async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> Vec<u8> {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response.bytes().await.expect("body").to_vec()
}

fn write(dir: &Path, feed: &str, name: &str, bytes: &[u8]) {
    let folder = dir.join(feed);
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join(name), bytes).expect("write");
}

/// Every page of a registry feed, followed by its cursors.
async fn registry_pages(client: &reqwest::Client, base: &str, feed: &str, folder: &str, dir: &Path) -> usize {
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let body = get(client, &format!("{base}/{feed}?limit=1000&cursor={cursor}"), None).await;
        let page: serde_json::Value = serde_json::from_slice(&body).expect("json");
        write(dir, folder, &format!("page-{pages:04}.json"), &body);
        pages += 1;
        if page["has_more"] != serde_json::Value::Bool(true) {
            return pages;
        }
        cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_simulator_serves_validates_against_the_contracts() {
    if !contract_tools() {
        return;
    }
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 7);
    params.yearly_volume = 3000;
    let flow = generate(&params);
    let today = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    let servers = simulator::servers::start("127.0.0.1:0".parse().expect("addr"), &flow, today, Faults::default(), 7)
        .await
        .expect("servers");
    let dir: PathBuf = std::env::temp_dir().join(format!("wangban_test_simulator_contracts_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let client = reqwest::Client::new();

    let registry = servers.registry_url();
    assert!(registry_pages(&client, &registry, "cases", "registry-cases", &dir).await > 1, "several pages");
    registry_pages(&client, &registry, "qc-findings", "registry-qc-findings", &dir).await;
    registry_pages(&client, &registry, "evaluations", "registry-evaluations", &dir).await;

    let listing = get(&client, &format!("{}/exports", servers.housing_url()), None).await;
    write(&dir, "housing-listing", "listing.json", &listing);
    let entries: serde_json::Value = serde_json::from_slice(&listing).expect("listing");
    let files: Vec<&str> = entries.as_array().expect("array").iter().filter_map(|e| e["file"].as_str()).collect();
    assert!(!files.is_empty());
    for file in files.iter().take(20).chain(files.last()) {
        let bytes = get(&client, &format!("{}/exports/{file}", servers.housing_url()), None).await;
        write(&dir, "housing-file", file, &bytes);
    }

    for code in simulator::servers::lenders::bank_codes(&flow) {
        let url = format!("{}/bank/v1/mortgage-applications?page_size=1000", servers.bank_url(&code));
        let body = get(&client, &url, Some(&format!("sim-token-{code}"))).await;
        write(&dir, "bank", &format!("{code}.json"), &body);
    }
    let loans = get(&client, &format!("{}/loans?page=1", servers.gjj_url()), None).await;
    write(&dir, "provident-fund", "page-1.xml", &loans);
    let requests = get(&client, &format!("{}/requests?after_seq=0&limit=1000", servers.court_url()), None).await;
    write(&dir, "court-platform-requests", "page-1.xml", &requests);
    servers.stop().await.expect("stop");

    let report = validate_folder(&dir);
    assert!(report.contains("simulator registry-cases/page-0000.json validates"), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
