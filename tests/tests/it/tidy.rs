//! House-style checks over the source tree: every `.rs` file opens with a `//!`
//! paragraph saying what it is for, and every `lib.rs` has a `# Layout` section.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | ".git" | "data" | "node_modules") && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_purpose_paragraph() {
    let mut files = Vec::new();
    rust_files(&workspace_root(), &mut files);
    assert!(files.len() > 20, "found only {} files: wrong root?", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap_or_default().starts_with("//!"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a leading //! paragraph: {missing:#?}");
}

#[test]
fn every_library_has_a_layout_section() {
    let mut files = Vec::new();
    rust_files(&workspace_root(), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "lib.rs"))
        .filter(|f| !std::fs::read_to_string(f).unwrap_or_default().contains("# Layout"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "lib.rs files without a # Layout section: {missing:#?}");
}

/// The direct dependencies a crate's manifest names in `sections`
/// (`dependencies`, `dev-dependencies`).
fn direct_dependencies(krate: &str, sections: &[&str]) -> Vec<String> {
    let path = workspace_root().join(krate).join("Cargo.toml");
    let manifest = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    manifest
        .split("\n[")
        .filter(|section| sections.iter().any(|s| section.starts_with(&format!("{s}]"))))
        .flat_map(|section| section.lines().skip(1))
        .filter_map(|line| line.split(['.', '=', ' ']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// What each crate must never depend on directly, and why (ARCHITECTURE.md § Invariants).
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "domain",
        &[
            "store",
            "connectors",
            "gateway",
            "warehouse",
            "dashboards",
            "simulator",
            "signing",
            "sqlx",
            "tokio",
            "reqwest",
            "axum",
            "datafusion",
        ],
        "the domain is pure rules: no IO, no other wangban crate",
    ),
    (
        "signing",
        &["domain", "store", "gateway", "sqlx", "tokio", "axum", "reqwest"],
        "signatures are pure functions both sides share",
    ),
    (
        "store",
        &["connectors", "gateway", "warehouse", "dashboards", "simulator", "axum", "reqwest", "datafusion"],
        "the store persists; it knows no transport and no analytics",
    ),
    (
        "court-orders",
        &["gateway", "connectors", "warehouse", "dashboards", "simulator", "sqlx", "axum", "reqwest", "datafusion"],
        "applying court orders is the domain's rules over the store's primitives: no SQL, no transport",
    ),
    (
        "xmlguard",
        &["domain", "store", "gateway", "connectors", "simulator", "tokio"],
        "the XML guard is a pure function every reader shares",
    ),
    (
        "connectors",
        &["gateway", "warehouse", "dashboards", "simulator", "axum", "datafusion"],
        "connectors pull into the store only",
    ),
    (
        "gateway",
        &["connectors", "warehouse", "dashboards", "simulator", "datafusion", "reqwest"],
        "the gateway takes pushes into the store only",
    ),
    (
        "warehouse",
        &["axum", "gateway", "connectors", "dashboards", "simulator", "reqwest"],
        "the warehouse computes; it serves nothing",
    ),
    (
        "dashboards",
        &["sqlx", "gateway", "simulator", "reqwest"],
        "pages read through the store and the warehouse, never SQL of their own",
    ),
    (
        "pgfront",
        &["sqlx", "gateway", "connectors", "court-orders", "simulator", "dashboards", "axum", "hyper", "reqwest"],
        "the PostgreSQL front end reads the warehouse and the accounts through their crates: no SQL to the store, no HTTP",
    ),
    (
        "scram",
        &["store", "sqlx", "tokio", "axum", "dashboards", "pgfront", "warehouse"],
        "SCRAM is pure functions the login page and the PostgreSQL front end share",
    ),
];

/// Rules of [`FORBIDDEN`] that hold for direct dependencies only, and why
/// reaching the crate through another is right.
const DIRECT_ONLY: &[(&str, &str, &str)] = &[
    ("court-orders", "sqlx", "no SQL of its own: the store's SQL is what it goes through"),
    ("dashboards", "sqlx", "no SQL of their own: the store's SQL is what they go through"),
    ("pgfront", "sqlx", "no SQL of its own: the store's SQL is what it goes through"),
    (
        "dashboards",
        "reqwest",
        "replaying a quarantined record runs the connectors' own parser, whose crate brings its HTTP client; the pages send no request",
    ),
];

/// Every package `krate` depends on, directly or through others, as a
/// normal (not dev or build) dependency, with the path by which it does:
/// `cargo metadata`'s resolved graph, read once.
fn transitive_dependencies(krate: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    use std::collections::{BTreeMap, HashMap, VecDeque};
    static METADATA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    let metadata = METADATA.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // This machine's platform only: the crates the build fetched (others' would need a download).
        let rustc = std::process::Command::new("rustc").arg("-vV").output().expect("rustc -vV");
        let host = String::from_utf8_lossy(&rustc.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            .expect("rustc names its host");
        let output = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform", &host])
            .current_dir(workspace_root())
            .output()
            .expect("cargo metadata runs");
        assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON")
    });
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let nodes: HashMap<&str, Vec<&str>> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve")
        .iter()
        .filter_map(|n| {
            let normal = n["deps"]
                .as_array()?
                .iter()
                .filter(|d| d["dep_kinds"].as_array().is_some_and(|k| k.iter().any(|k| k["kind"].is_null())))
                .filter_map(|d| d["pkg"].as_str())
                .collect();
            Some((n["id"].as_str()?, normal))
        })
        .collect();
    let start = names.iter().find(|(id, name)| **name == krate && id.starts_with("path+")).map(|(id, _)| *id);
    let start = start.unwrap_or_else(|| panic!("{krate} is not a workspace crate"));
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue = VecDeque::from([(start, vec![krate.to_owned()])]);
    while let Some((id, path)) = queue.pop_front() {
        for dep in nodes.get(id).into_iter().flatten() {
            let name = names.get(dep).copied().unwrap_or(dep).to_owned();
            if seen.contains_key(&name) {
                continue;
            }
            let mut via = path.clone();
            via.push(name.clone());
            seen.insert(name, via.clone());
            queue.push_back((dep, via));
        }
    }
    seen
}

/// A crate gaining a forbidden dependency, directly or through another crate
/// (pgfront reaching axum through the dashboards, say), fails here, naming
/// the rule and the path.
#[test]
fn no_crate_depends_on_what_it_must_never_know() {
    for (krate, forbidden, why) in FORBIDDEN {
        let dependencies = direct_dependencies(krate, &["dependencies"]);
        assert!(!dependencies.is_empty() || *krate == "domain", "no dependencies read from {krate}/Cargo.toml");
        let all = transitive_dependencies(krate);
        let broken: Vec<String> = forbidden
            .iter()
            .filter(|f| {
                !DIRECT_ONLY.iter().any(|(k, d, _)| k == krate && d == *f) || dependencies.iter().any(|d| d == **f)
            })
            .filter_map(|f| all.get(*f))
            .map(|path| path.join(" → "))
            .collect();
        assert!(broken.is_empty(), "{krate} depends on {broken:?}, but {why}");
    }
}

/// The simulator plays the partners from outside: it must not reach into the
/// store or the gateway (their types would let both sides share a mistake).
#[test]
fn the_simulator_depends_on_neither_store_nor_gateway() {
    let dependencies = direct_dependencies("simulator", &["dependencies", "dev-dependencies"]);
    assert!(!dependencies.is_empty(), "no dependencies read from simulator/Cargo.toml");
    for forbidden in ["store", "gateway", "connectors", "warehouse", "dashboards", "wangban"] {
        assert!(!dependencies.iter().any(|d| d == forbidden), "simulator depends on {forbidden}: {dependencies:?}");
    }
}

/// The dashboards render what the store and the warehouse answer: no SQL of
/// their own (the case lists are `warehouse::case_lists`), so a query is
/// reviewed, typed and tested in one place.
#[test]
fn the_dashboards_write_no_sql() {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("dashboards/src"), &mut files);
    assert!(files.len() > 5, "read the dashboards' sources");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let upper = line.to_uppercase();
            let sql = ["\"SELECT ", "\"WITH ", "\"INSERT ", "\"UPDATE ", "\"DELETE ", " FROM CASES", " JOIN CASES"]
                .iter()
                .any(|keyword| upper.contains(keyword));
            assert!(!sql, "{}:{}: SQL in the dashboards: {line}", file.display(), n + 1);
        }
    }
}
