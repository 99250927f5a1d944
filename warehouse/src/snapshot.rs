//! Snapshots on disk. `ROOT/snapshots/ID/` holds one complete export with its
//! `manifest.json`; `ROOT/CURRENT` names the current one. A refresh writes a
//! new directory under `ROOT/staging/`, renames it into `snapshots/`, then
//! replaces `CURRENT` by renaming a temporary file over it: readers see the
//! old snapshot or the new one, never a mixture. The previous snapshot is
//! kept (a reader may still be using it), and so is every snapshot a pin in
//! `ROOT/pins/` names (a kept report's); the others are removed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::WarehouseError;

/// One file of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Path relative to the snapshot directory.
    pub file: String,
    /// Rows in it.
    pub rows: usize,
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Its id (the refresh time).
    pub snapshot_id: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// The store's newest write it covers (RFC 3339).
    pub source_watermark: Option<String>,
    /// `cases` files by month (`YYYY-MM`).
    pub cases: BTreeMap<String, TableEntry>,
    /// The other tables.
    pub tables: BTreeMap<String, TableEntry>,
    /// `case_counts` rollup files by month (`YYYY-MM`): case counts grouped by
    /// every case dimension and KPI flag (absent in older manifests).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rollups: BTreeMap<String, TableEntry>,
    /// How long the refresh that made it took, in milliseconds (absent in older manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_ms: Option<u64>,
    /// Every connector's health when it was made, so that a report made from
    /// it again says the same (absent in older manifests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connectors: Vec<ConnectorHealth>,
    /// The file layout it was written with ([`LAYOUT`]; 0 in older manifests).
    /// A refresh after a snapshot of an older layout rewrites every month.
    #[serde(default)]
    pub layout: u32,
    /// The tables written per case month besides `cases` and `case_counts`,
    /// by table and month: `evaluations` and `qc_findings` (each row with its
    /// case's dimensions; the month `unmatched` holds the rows whose case the
    /// store lacks), and the rollups `open_due`, `duration_counts`,
    /// `evaluation_counts` and `qc_counts` (see `export`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_month: BTreeMap<String, BTreeMap<String, TableEntry>>,
    /// The month-by-month reconciliation at the refresh that made it, for
    /// the months it rewrote and carried over (see `crate::reconcile`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconciliation: Vec<crate::reconcile::MonthCheck>,
}

/// The file layout refreshes write now: month files sorted by district,
/// business type, then submission time; child tables carrying their case's
/// dimensions, per case month; a rollup for every KPI family.
pub const LAYOUT: u32 = 2;

/// The month under which a child table keeps the rows whose case is unknown.
pub const UNMATCHED: &str = "unmatched";

/// A connector's health as a snapshot records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorHealth {
    /// Connector name.
    pub connector: String,
    /// `never_run`, `ok` or `degraded`.
    pub status: String,
    /// Start of the last run (RFC 3339).
    pub last_run_at: Option<String>,
    /// End of the last successful run (RFC 3339).
    pub last_success_at: Option<String>,
    /// Records written, all runs.
    pub records_total: i64,
    /// Failed runs, all time.
    pub errors_total: i64,
    /// Records quarantined, all runs.
    pub quarantined_total: i64,
    /// The last error, if the last run failed.
    pub last_error: Option<String>,
}

impl ConnectorHealth {
    /// The record of `state`.
    pub fn of(state: &store::connector_state::ConnectorState) -> ConnectorHealth {
        ConnectorHealth {
            connector: state.connector.clone(),
            status: state.status.clone(),
            last_run_at: state.last_run_at.map(|t| t.to_rfc3339()),
            last_success_at: state.last_success_at.map(|t| t.to_rfc3339()),
            records_total: state.records_total,
            errors_total: state.errors_total,
            quarantined_total: state.quarantined_total,
            last_error: state.last_error.clone(),
        }
    }
}

impl Manifest {
    /// An empty manifest.
    pub fn new(id: &str, created_at: DateTime<Utc>, source_watermark: Option<DateTime<Utc>>) -> Self {
        Self {
            snapshot_id: id.to_owned(),
            created_at: created_at.to_rfc3339(),
            source_watermark: source_watermark.map(|t| t.to_rfc3339()),
            cases: BTreeMap::new(),
            tables: BTreeMap::new(),
            rollups: BTreeMap::new(),
            refresh_ms: None,
            connectors: Vec::new(),
            layout: LAYOUT,
            by_month: BTreeMap::new(),
            reconciliation: Vec::new(),
        }
    }

    /// When it was made: the time every answer on it is as of (see [`crate::kpi::as_of`]).
    pub fn created(&self) -> Result<DateTime<Utc>, crate::WarehouseError> {
        DateTime::parse_from_rfc3339(&self.created_at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| crate::WarehouseError::Corrupt(format!("manifest created_at {:?}: {e}", self.created_at)))
    }

    /// The store's newest write it covers.
    pub fn watermark(&self) -> Option<DateTime<Utc>> {
        let text = self.source_watermark.as_deref()?;
        DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
    }

    /// Rows of `cases`, all months.
    pub fn case_rows(&self) -> usize {
        self.cases.values().map(|e| e.rows).sum()
    }

    /// Whether every month of `cases` has its `case_counts` rollup.
    pub fn has_rollups(&self) -> bool {
        !self.cases.is_empty() && self.cases.keys().all(|month| self.rollups.contains_key(month))
    }

    /// The file of `table` (one of [`Manifest::by_month`]'s) for `month`.
    pub fn month_entry(&self, table: &str, month: &str) -> Option<&TableEntry> {
        self.by_month.get(table)?.get(month)
    }

    /// Whether the snapshot has the current layout ([`LAYOUT`]) with every
    /// rollup of every month: the KPIs then read rollups and child tables
    /// that carry their case's dimensions.
    pub fn has_layout(&self) -> bool {
        self.layout >= LAYOUT
            && self.has_rollups()
            && self.cases.keys().all(|month| {
                self.month_entry("open_due", month).is_some() && self.month_entry("duration_counts", month).is_some()
            })
            && ["evaluations", "qc_findings", "evaluation_counts", "qc_counts"]
                .iter()
                .all(|table| self.by_month.contains_key(*table))
    }

    /// Rows of `table` (one of [`Manifest::by_month`]'s), all months.
    pub fn month_rows(&self, table: &str) -> usize {
        self.by_month.get(table).map_or(0, |months| months.values().map(|e| e.rows).sum())
    }
}

/// The warehouse directory.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: PathBuf,
}

/// The id the warehouse at `root` names current (its `CURRENT` file), if
/// any: one small read, for callers that only ask whether it changed.
pub fn current_id(root: &Path) -> Result<Option<String>, WarehouseError> {
    match fs::read_to_string(root.join("CURRENT")) {
        Ok(id) => Ok(Some(id.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Warehouse {
    /// Opens (creating) the directory.
    pub fn open(root: &Path) -> Result<Self, WarehouseError> {
        fs::create_dir_all(root.join("snapshots"))?;
        fs::create_dir_all(root.join("staging"))?;
        Ok(Self { root: root.to_owned() })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A snapshot's directory.
    pub fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id)
    }

    /// A fresh staging directory for snapshot `id`.
    pub fn staging_dir(&self, id: &str) -> Result<PathBuf, WarehouseError> {
        let dir = self.root.join("staging").join(id);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The current snapshot's manifest, if there is one.
    pub fn current(&self) -> Result<Option<Manifest>, WarehouseError> {
        match current_id(&self.root)? {
            Some(id) => self.manifest(&id).map(Some),
            None => Ok(None),
        }
    }

    /// The manifest of snapshot `id` (current, previous or pinned); a
    /// snapshot no longer kept is [`WarehouseError::NoSnapshot`].
    pub fn manifest(&self, id: &str) -> Result<Manifest, WarehouseError> {
        if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
            return Err(WarehouseError::BadRequest(format!("{id:?} is not a snapshot id")));
        }
        let path = self.snapshot_dir(id).join("manifest.json");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WarehouseError::NoSnapshot(format!(
                    "snapshot {id} is no longer kept under {} (only the current, the previous and pinned ones are)",
                    self.root.display()
                )));
            }
            Err(e) => return Err(WarehouseError::Corrupt(format!("{}: {e}", path.display()))),
        };
        serde_json::from_str(&text).map_err(|e| WarehouseError::Corrupt(format!("{}: {e}", path.display())))
    }

    /// Rewrites the manifest of a published snapshot (atomically), to add
    /// what was computed on it after it was published (its reconciliation).
    pub fn amend(&self, manifest: &Manifest) -> Result<(), WarehouseError> {
        let dir = self.snapshot_dir(&manifest.snapshot_id);
        if !dir.join("manifest.json").exists() {
            return Err(WarehouseError::NoSnapshot(format!("snapshot {} is no longer kept", manifest.snapshot_id)));
        }
        let text = serde_json::to_string_pretty(manifest).map_err(|e| WarehouseError::Corrupt(e.to_string()))?;
        Ok(write_atomically(&dir.join("manifest.json"), text.as_bytes())?)
    }

    /// Keeps snapshot `id` through later refreshes while the pin `name`
    /// (for example a report's) names it; pinning `name` again moves it.
    pub fn pin(&self, name: &str, id: &str) -> Result<(), WarehouseError> {
        self.manifest(id)?;
        Ok(write_atomically(&self.root.join("pins").join(name), id.as_bytes())?)
    }

    /// The snapshots pinned, by pin name.
    pub fn pins(&self) -> Result<BTreeMap<String, String>, WarehouseError> {
        let mut pins = BTreeMap::new();
        let dir = match fs::read_dir(self.root.join("pins")) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pins),
            Err(e) => return Err(e.into()),
        };
        for entry in dir {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                pins.insert(name, fs::read_to_string(entry.path())?.trim().to_owned());
            }
        }
        Ok(pins)
    }

    /// Makes a staged snapshot current (see the module documentation).
    pub fn publish(&self, staging: &Path, manifest: &Manifest) -> Result<(), WarehouseError> {
        let text = serde_json::to_string_pretty(manifest).map_err(|e| WarehouseError::Corrupt(e.to_string()))?;
        let mut file = fs::File::create(staging.join("manifest.json"))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        let target = self.snapshot_dir(&manifest.snapshot_id);
        if target.exists() {
            fs::remove_dir_all(&target)?;
        }
        fs::rename(staging, &target)?;
        let previous = self.current()?.map(|m| m.snapshot_id);
        write_atomically(&self.root.join("CURRENT"), manifest.snapshot_id.as_bytes())?;
        // Keep the current, the previous and the pinned snapshots; remove the rest.
        // Pins of this host's distributed queries whose process is gone go first.
        if let Err(e) = clear_dead_query_pins(&self.root) {
            tracing::warn!(error = %e, "could not clear the pins of dead queries");
        }
        let pinned: Vec<String> = self.pins()?.into_values().collect();
        for entry in fs::read_dir(self.root.join("snapshots"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != manifest.snapshot_id && Some(&name) != previous.as_ref() && !pinned.contains(&name) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }
}

/// A pin held while a reader streams from snapshot `id` (an open cursor of
/// the PostgreSQL front end): refreshes keep the snapshot until it is dropped.
/// Its file is written without a sync: after a crash the reader is gone, and
/// [`ReaderPin::clear`] removes what such readers left.
#[derive(Debug)]
pub struct ReaderPin {
    path: PathBuf,
}

impl ReaderPin {
    /// Pins snapshot `id` of the warehouse at `root` as `name`.
    pub fn hold(root: &Path, name: &str, id: &str) -> std::io::Result<ReaderPin> {
        let dir = root.join("pins");
        fs::create_dir_all(&dir)?;
        let path = dir.join(name);
        fs::write(&path, id.as_bytes())?;
        Ok(ReaderPin { path })
    }

    /// Removes every reader pin whose name starts with `prefix` (a process's own, at its start).
    pub fn clear(root: &Path, prefix: &str) -> std::io::Result<usize> {
        remove_pins_where(root, |name| name.starts_with(prefix))
    }
}

/// The prefix of the pins distributed queries hold: `query-HOST-PID-N`
/// (`crate::cluster`, feature `ballista`).
pub const QUERY_PIN_PREFIX: &str = "query-";

/// This host's name, as query pins name it.
pub fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or_else(|| "host".into())
}

/// Removes the query pins (`query-HOST-PID-N`) this host's processes left
/// when they died (a `kill -9`, a crash): those whose process no longer
/// runs. Another host's pins are left: their processes cannot be seen from here.
pub fn clear_dead_query_pins(root: &Path) -> std::io::Result<usize> {
    let ours = format!("{QUERY_PIN_PREFIX}{}-", host_name());
    remove_pins_where(root, |name| {
        name.strip_prefix(&ours)
            .and_then(|rest| rest.split('-').next())
            .is_some_and(|pid| pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists())
    })
}

/// Removes the pins under `root/pins` whose name `remove` says; how many.
fn remove_pins_where(root: &Path, remove: impl Fn(&str) -> bool) -> std::io::Result<usize> {
    let dir = match fs::read_dir(root.join("pins")) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in dir {
        let entry = entry?;
        if remove(&entry.file_name().to_string_lossy()) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl Drop for ReaderPin {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes `bytes` to a hidden temporary file beside `path` (`.NAME.partial`,
/// which directory listings here skip), syncs it, then renames it over
/// `path`: a reader sees the old content or the new, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = dir.join(format!(".{name}.partial"));
    let mut file = fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

/// The warehouse's state in the Prometheus text format, for `/metrics`:
/// whether there is a snapshot, its age at `now`, its case rows and how long
/// the refresh that made it took.
pub fn metrics_text(root: &Path, now: DateTime<Utc>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let current = Warehouse { root: root.to_owned() }.current().ok().flatten();
    let _ = writeln!(
        out,
        "# HELP wangban_warehouse_snapshot 1 when a warehouse snapshot is in place.\n# TYPE wangban_warehouse_snapshot gauge\nwangban_warehouse_snapshot {}",
        u8::from(current.is_some())
    );
    let Some(manifest) = current else { return out };
    if let Ok(created) = DateTime::parse_from_rfc3339(&manifest.created_at) {
        let age = (now - created.with_timezone(&Utc)).num_milliseconds() as f64 / 1000.0;
        let _ = writeln!(
            out,
            "# HELP wangban_warehouse_snapshot_age_seconds Time since the current snapshot was made.\n# TYPE wangban_warehouse_snapshot_age_seconds gauge\nwangban_warehouse_snapshot_age_seconds {age}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP wangban_warehouse_case_rows Case rows in the current snapshot.\n# TYPE wangban_warehouse_case_rows gauge\nwangban_warehouse_case_rows {}",
        manifest.case_rows()
    );
    if let Some(ms) = manifest.refresh_ms {
        let _ = writeln!(
            out,
            "# HELP wangban_warehouse_refresh_seconds How long the refresh that made the current snapshot took.\n# TYPE wangban_warehouse_refresh_seconds gauge\nwangban_warehouse_refresh_seconds {}",
            ms as f64 / 1000.0
        );
    }
    out
}
