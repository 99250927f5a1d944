//! `wangban report`: the month's leadership workbook (月报) from the current
//! warehouse snapshot, kept under `DATA_DIR/reports/` with its snapshot
//! pinned (or written to `--out` only); `report list` shows the kept ones;
//! `report verify` makes one again from its snapshot and compares the bytes.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Months, NaiveDate, Utc};
use dashboards::report::{Archive, MonthlyReport, ReportError};
use warehouse::WarehouseError;
use warehouse::kpi::KpiService;

use crate::cli::{ReportArgs, ReportCommand};
use crate::settings::Settings;

/// The kept reports of `settings`.
pub(crate) fn archive(settings: &Settings) -> Archive {
    Archive::new(settings.data_dir.join("reports"))
}

/// The month before `now`'s (China time).
pub(crate) fn last_month(now: DateTime<Utc>) -> NaiveDate {
    let first = warehouse::kpi::gap::first_of(domain::time::local_date(now));
    first.checked_sub_months(Months::new(1)).unwrap_or(first)
}

/// Runs `report …`.
pub(crate) async fn run(args: ReportArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let kpis = settings.kpi_service();
    let archive = archive(settings);
    let usage = |message: &dyn std::fmt::Display| {
        eprintln!("error: {message}");
        Ok(ExitCode::from(crate::EXIT_USAGE))
    };
    let mut out = std::io::stdout().lock();
    match args.command {
        ReportCommand::Monthly(args) => {
            let now = Utc::now();
            let month = args.month.unwrap_or_else(|| last_month(now));
            eprintln!("making the report of {} …", month.format("%Y-%m"));
            let started = std::time::Instant::now();
            let made = match args.out {
                None => archive.make(&kpis, month, now).await.map(|kept| {
                    let path = archive.dir().join(&kept.file);
                    (serde_json::to_value(&kept).unwrap_or_default(), path)
                }),
                Some(path) => written_to(&kpis, month, now, &path).await.map(|headline| (headline, path)),
            };
            let (mut line, path) = match made {
                Ok(made) => made,
                Err(ReportError::Warehouse(WarehouseError::BadRequest(m) | WarehouseError::NoSnapshot(m))) => {
                    return usage(&m);
                }
                Err(e) => return Err(e).context("making the report"),
            };
            if let Some(object) = line.as_object_mut() {
                object.insert("report".into(), path.display().to_string().into());
                object.insert("millis".into(), (started.elapsed().as_millis() as u64).into());
            }
            writeln!(out, "{line}")?;
        }
        ReportCommand::List => {
            for kept in archive.list()? {
                writeln!(out, "{}", serde_json::to_string(&kept)?)?;
            }
        }
        ReportCommand::Verify(args) => {
            let month = args.month.format("%Y-%m").to_string();
            let Some(kept) = archive.get(&month)? else {
                return usage(&format!("no report of {month} is kept under {}", archive.dir().display()));
            };
            let again = match archive.remake(&kpis, &kept).await {
                Ok(report) => report.xlsx().context("writing the workbook")?,
                Err(ReportError::Warehouse(WarehouseError::NoSnapshot(m))) => return usage(&m),
                Err(e) => return Err(e).context("making the report again"),
            };
            let same = archive.read(&kept)? == again;
            writeln!(
                out,
                "{}",
                serde_json::json!({ "month": month, "snapshot_id": kept.snapshot_id, "identical": same })
            )?;
            if !same {
                eprintln!(
                    "error: the report of {month} made again from snapshot {} differs from the kept one",
                    kept.snapshot_id
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `month`'s report from the current snapshot to `path` only (not
/// kept); its headline as JSON.
async fn written_to(
    kpis: &KpiService,
    month: NaiveDate,
    now: DateTime<Utc>,
    path: &std::path::Path,
) -> Result<serde_json::Value, ReportError> {
    let snapshot = kpis.snapshot().await?;
    let report = MonthlyReport::gather(&snapshot, month, now).await?;
    let bytes = report.xlsx()?;
    warehouse::snapshot::write_atomically(path, &bytes)?;
    Ok(serde_json::to_value(report.record(&bytes)).unwrap_or_default())
}
