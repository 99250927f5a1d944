//! `wangban report monthly`: the month's leadership workbook (月报) from the
//! current warehouse snapshot, written to a file by rename (a reader never
//! sees half a workbook); its headline on standard output as one JSON line.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{Months, Utc};
use dashboards::report::MonthlyReport;
use warehouse::WarehouseError;
use warehouse::kpi::KpiService;

use crate::cli::{ReportArgs, ReportCommand};
use crate::settings::Settings;

/// Runs `report …`.
pub(crate) async fn run(args: ReportArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let ReportCommand::Monthly(args) = args.command;
    let now = Utc::now();
    let month = match args.month {
        Some(month) => month,
        None => warehouse::kpi::gap::first_of(domain::time::local_date(now))
            .checked_sub_months(Months::new(1))
            .context("no month before this one")?,
    };
    let kpis = KpiService::new(settings.warehouse_dir(), settings.warehouse.sql_memory_mb << 20);
    eprintln!("making the report of {} …", month.format("%Y-%m"));
    let started = std::time::Instant::now();
    let report = match MonthlyReport::gather(&kpis, month, now).await {
        Ok(report) => report,
        Err(WarehouseError::BadRequest(message) | WarehouseError::NoSnapshot(message)) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(crate::EXIT_USAGE));
        }
        Err(e) => return Err(e).context("computing the report's figures"),
    };
    let bytes = report.xlsx().context("writing the workbook")?;
    let out = args.out.unwrap_or_else(|| settings.data_dir.join("reports").join(report.file_name()));
    write_atomically(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    let online = report.headlines.first().and_then(|h| h.current.as_ref());
    let line = serde_json::json!({
        "report": out.display().to_string(),
        "month": month.format("%Y-%m").to_string(),
        "snapshot_id": report.snapshot_id,
        "online_rate": online.and_then(|r| r.rate),
        "numerator": online.map(|r| r.numerator),
        "denominator": online.map(|r| r.denominator),
        "needed_for_target": report.gap.needed,
        "bytes": bytes.len(),
        "millis": started.elapsed().as_millis(),
    });
    writeln!(std::io::stdout().lock(), "{line}")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = std::path::PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}
