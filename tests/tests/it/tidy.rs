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

/// The simulator plays the partners from outside: it must not reach into the
/// store or the gateway (their types would let both sides share a mistake).
#[test]
fn the_simulator_depends_on_neither_store_nor_gateway() {
    let manifest = std::fs::read_to_string(workspace_root().join("simulator/Cargo.toml")).expect("manifest");
    let dependencies: Vec<&str> = manifest
        .split("\n[")
        .filter(|section| section.starts_with("dependencies]") || section.starts_with("dev-dependencies]"))
        .flat_map(|section| section.lines().skip(1))
        .filter_map(|line| line.split(['.', '=', ' ']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect();
    assert!(!dependencies.is_empty(), "no dependencies read from simulator/Cargo.toml");
    for forbidden in ["store", "gateway", "connectors", "warehouse", "dashboards", "wangban"] {
        assert!(!dependencies.contains(&forbidden), "simulator depends on {forbidden}: {dependencies:?}");
    }
}
