//! `wangban backup` and `wangban restore`: SQLite online backups (`VACUUM
//! INTO`, consistent while the service writes) and a checked restore.
//! PostgreSQL stores are backed up with PostgreSQL's own tools.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;

use crate::cli::{BackupArgs, RestoreArgs};
use crate::settings::Settings;

pub(crate) async fn backup(args: &BackupArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    sqlite_url(settings, "back it up with `pg_dump --format=custom` or a base backup")?;
    if args.to.exists() {
        anyhow::bail!("{} exists: a backup never overwrites a file", args.to.display());
    }
    let started = std::time::Instant::now();
    let store = settings.open_store().await?;
    store.backup_sqlite_to(&args.to).await.with_context(|| format!("cannot write the backup {}", args.to.display()))?;
    let bytes = std::fs::metadata(&args.to).map(|m| m.len()).unwrap_or(0);
    // The copy is checked the way a restore will check it.
    let summary = inspect(&args.to).await?;
    println!(
        "{}",
        json!({ "backup": args.to.display().to_string(), "bytes": bytes, "audit_entries": summary.audit_entries,
                "schema_migrations": summary.migrations, "seconds": started.elapsed().as_secs_f64() })
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn restore(args: &RestoreArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let url = sqlite_url(settings, "restore it with `pg_restore`")?;
    let target = store::maintenance::sqlite_file(&url)?;
    if target.exists() && !args.force {
        anyhow::bail!(
            "{} exists: stop the service, then run restore again with --force (the current store is kept beside it)",
            target.display()
        );
    }
    if !args.from.is_file() {
        anyhow::bail!("{} is not a file", args.from.display());
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // Copied under a temporary name, flushed and checked before anything is moved:
    // a bad backup or a crash leaves the current store as it was.
    let partial = sibling(&target, "restoring");
    let _ = std::fs::remove_file(&partial);
    std::fs::copy(&args.from, &partial).with_context(|| format!("cannot copy to {}", partial.display()))?;
    let summary = match inspect(&partial).await {
        Ok(summary) => summary,
        Err(error) => {
            remove_with_sidecars(&partial);
            return Err(error.context(format!("{} cannot be restored", args.from.display())));
        }
    };
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush {}", partial.display()))?;
    let kept = if target.exists() {
        let kept = sibling(&target, &format!("before-restore-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
        std::fs::rename(&target, &kept)
            .with_context(|| format!("cannot move {} aside to {}", target.display(), kept.display()))?;
        // The write-ahead log belongs to the file moved aside; left here it would be replayed into the backup.
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", target.display()));
            if side.exists() {
                let to = PathBuf::from(format!("{}{suffix}", kept.display()));
                std::fs::rename(&side, &to).with_context(|| format!("cannot move {} aside", side.display()))?;
            }
        }
        Some(kept)
    } else {
        None
    };
    std::fs::rename(&partial, &target).with_context(|| format!("cannot move the backup into {}", target.display()))?;
    println!(
        "{}",
        json!({ "restored": target.display().to_string(), "from": args.from.display().to_string(),
                "audit_entries": summary.audit_entries, "previous_store": kept.map(|k| k.display().to_string()) })
    );
    Ok(ExitCode::SUCCESS)
}

/// The store's URL when it is SQLite; otherwise an error saying what to use instead.
fn sqlite_url(settings: &Settings, postgres_way: &str) -> anyhow::Result<String> {
    let url = settings.database_url();
    if !url.starts_with("sqlite:") {
        anyhow::bail!("the store is PostgreSQL ({}): {postgres_way} (see the README)", store::redact_url(&url));
    }
    Ok(url)
}

struct Summary {
    audit_entries: u64,
    migrations: usize,
}

/// Opens a backup and checks it: SQLite's integrity check, a schema this build
/// knows, an intact audit chain.
async fn inspect(file: &Path) -> anyhow::Result<Summary> {
    let url = format!("sqlite://{}", file.display());
    let options = store::ConnectOptions { max_connections: 1, ..Default::default() };
    let backup = store::Store::connect_unmigrated(&url, &options)
        .await
        .with_context(|| format!("{} cannot be opened as an SQLite database", file.display()))?;
    let check = async {
        let problems = backup.sqlite_integrity_problems().await?;
        if !problems.is_empty() {
            anyhow::bail!("{} is damaged: {}", file.display(), problems.join("; "));
        }
        let schema = backup.schema_status().await?;
        if schema.applied == 0 {
            anyhow::bail!("{} is not a wangban store (no migrations recorded)", file.display());
        }
        if schema.is_ahead() {
            anyhow::bail!(
                "{} was written by a newer wangban ({} migrations; this build knows {})",
                file.display(),
                schema.applied,
                schema.known
            );
        }
        let audit_entries = match backup.verify_audit_chain().await? {
            Ok(n) => n,
            Err(b) => anyhow::bail!("{}: the audit chain breaks at entry {}: {}", file.display(), b.id, b.reason),
        };
        Ok(Summary { audit_entries, migrations: schema.applied })
    }
    .await;
    backup.close().await;
    check
}

fn sibling(file: &Path, tag: &str) -> PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "wangban.db".into());
    file.with_file_name(format!("{name}.{tag}"))
}

fn remove_with_sidecars(file: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}
