//! `wangban warehouse refresh|status|compact|bench`, `wangban kpi`, `wangban sql`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Datelike as _, Utc};
use serde_json::json;
use warehouse::console::{self, Format};
use warehouse::datafusion::execution::context::SessionContext;
use warehouse::export::{RefreshOptions, refresh};
use warehouse::kpi::{self, Dim, Kpi, KpiQuery, KpiRequest};
use warehouse::session::{engine_session, register_snapshot};

use crate::cli::{KpiArgs, OutputFormat, SqlArgs, WarehouseArgs, WarehouseCommand};
use crate::settings::Settings;

/// Exit code for a query the console refuses or stops.
const EXIT_REFUSED: u8 = 1;

pub(crate) async fn refresh_or_status(args: WarehouseArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let dir = settings.warehouse_dir();
    match args.command {
        WarehouseCommand::Status => {
            let current = warehouse::snapshot::Warehouse::open(&dir)?.current()?;
            match current {
                Some(manifest) => println!("{}", serde_json::to_string_pretty(&manifest)?),
                None => {
                    eprintln!("{} has no snapshot yet: run `wangban warehouse refresh`", dir.display());
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        WarehouseCommand::Compact => {
            let started = std::time::Instant::now();
            let report = warehouse::export::compact(&dir, Utc::now()).await.context("warehouse compact failed")?;
            println!(
                "{}",
                json!({
                    "snapshot": report.manifest.snapshot_id, "cases": report.manifest.case_rows(),
                    "months_compacted": report.months_compacted,
                    "seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
                })
            );
        }
        WarehouseCommand::Bench { repeat, engine } => bench(settings, repeat, &engine).await?,
        WarehouseCommand::Reconcile => {
            let store = settings.open_store().await?;
            let checks = reconcile_cases(&store, settings, Utc::now()).await;
            // Exchange tables' day reconciliation (run by sync and the daily job): what it found.
            let days = store.day_checks(1000).await;
            store.close().await;
            for d in days?.iter().filter(|d| d.differs() || d.reread_rows > 0) {
                println!(
                    "{}",
                    json!({
                        "partner_day": d.day, "connector": d.connector, "partner_rows": d.partner_rows,
                        "ours_before": d.our_rows_before, "ours_after": d.our_rows_after,
                        "reread_rows": d.reread_rows, "differs": d.differs(),
                    })
                );
            }
            let (checks, unmatched) = checks?;
            let mut out = std::io::stdout().lock();
            for check in &checks {
                writeln!(out, "{}", check.to_json())?;
            }
            // Evaluations and QC findings whose case the snapshot lacks: kept
            // (month `unmatched`), counted in no KPI, named here.
            for child in &unmatched {
                writeln!(out, "{}", json!({ "unmatched": child.table, "id": child.id, "case_no": child.case_no }))?;
            }
            let mut summary = reconciliation_summary(&checks);
            summary["unmatched_children"] = json!(unmatched.len());
            writeln!(out, "{summary}")?;
            if !unmatched.is_empty() {
                eprintln!(
                    "{} evaluations or QC findings name a case the snapshot lacks (listed above): they count in no KPI \
                     until their case arrives and the warehouse is refreshed",
                    unmatched.len()
                );
            }
            if summary["differing"].as_array().is_some_and(|d| !d.is_empty()) {
                eprintln!(
                    "some months do not reconcile: a case lost or counted twice between the store and the KPIs, \
                     or delivered after the snapshot (run `wangban warehouse refresh`, then check again)"
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        WarehouseCommand::Refresh { full } => {
            let store = settings.open_store().await?;
            let options = RefreshOptions {
                now: Utc::now(),
                key: settings.warehouse_key()?,
                calendar: settings.calendar()?,
                catalogue: settings.catalogue()?,
                full,
            };
            let started = std::time::Instant::now();
            let report = refresh(&store, &dir, &options).await.context("warehouse refresh failed")?;
            let exported = started.elapsed();
            // Alerts are evaluated after every refresh, on the snapshot just published.
            let alerts = match super::alerts::evaluate_on_current_snapshot(&store, settings, Utc::now()).await {
                Ok(changes) => json!({ "fired": changes.fired.len(), "resolved": changes.resolved.len(),
                                       "continuing": changes.continuing }),
                Err(error) => {
                    let error = format!("{error:#}");
                    eprintln!("warning: alerts not evaluated: {error}");
                    json!({ "error": error })
                }
            };
            // The snapshot just made against the store it was made from, month
            // by month: the months it rewrote, kept with the snapshot.
            let alerted = started.elapsed();
            let memory = Some(settings.warehouse.sql_memory_mb << 20);
            let reconciliation = match warehouse::reconcile::after_refresh(&store, &dir, memory).await {
                Ok(checks) => reconciliation_summary(&checks),
                Err(error) => {
                    let error = format!("{error:#}");
                    eprintln!("warning: cases not reconciled: {error}");
                    json!({ "error": error })
                }
            };
            store.close().await;
            println!(
                "{}",
                json!({
                    "reconciliation": reconciliation,
                    "snapshot": report.manifest.snapshot_id, "cases": report.manifest.case_rows(),
                    "months_written": report.months_written, "months_kept": report.months_kept,
                    "source_watermark": report.manifest.source_watermark,
                    "seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
                    "phases": {
                        "export": seconds(exported),
                        "alerts": seconds(alerted - exported),
                        "reconciliation": seconds(started.elapsed() - alerted),
                    },
                    "dir": dir.display().to_string(),
                    "alerts": alerts,
                })
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The month-by-month reconciliation of the store's cases with the online
/// rate on the current snapshot (`warehouse::reconcile`).
/// With them, the evaluations and QC findings whose case the snapshot lacks.
async fn reconcile_cases(
    store: &store::Store,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<warehouse::reconcile::MonthCheck>, Vec<warehouse::reconcile::UnmatchedChild>)> {
    let delivered = warehouse::reconcile::Delivered::from_store(store).await?;
    let ctx = warehouse::session::session_with_limit(None, Some(settings.warehouse.sql_memory_mb << 20))?;
    register_snapshot(&ctx, &settings.warehouse_dir()).await?;
    let checks = warehouse::reconcile::cases_by_month(&ctx, &delivered, now).await?;
    Ok((checks, warehouse::reconcile::unmatched_children(&ctx).await?))
}

/// A duration in seconds, to the millisecond.
fn seconds(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Totals and the months that differ.
fn reconciliation_summary(checks: &[warehouse::reconcile::MonthCheck]) -> serde_json::Value {
    let sum = |f: fn(&warehouse::reconcile::MonthCheck) -> i64| checks.iter().map(f).sum::<i64>();
    json!({
        "months": checks.len(),
        "delivered": sum(|c| c.delivered), "flawed": sum(|c| c.flawed), "counted": sum(|c| c.counted),
        "excluded": sum(|c| c.excluded),
        "differing": checks.iter().filter(|c| c.difference() != 0).map(|c| c.to_json()).collect::<Vec<_>>(),
    })
}

/// `warehouse bench`: the online-rate KPI by type × month from the snapshot's
/// first month to the end of its last year (read from the `case_counts` rollup,
/// then from `cases` alone), by district up to the middle of the last month
/// (rollup plus the partial month from `cases`), then each of
/// `warehouse::bench::QUERIES`; each run once to warm up and `repeat` times
/// timed; a JSON line per query.
async fn bench(settings: &Settings, repeat: usize, engine: &str) -> anyhow::Result<()> {
    let memory = Some(settings.warehouse.sql_memory_mb << 20);
    let ctx = engine_session(engine, memory).await?;
    let manifest = register_snapshot(&ctx, &settings.warehouse_dir()).await?;
    // The same snapshot without the rollup (nor the rewrite to it): the KPI
    // and the raw queries computed from `cases` alone, as DuckDB computes them.
    let plain = engine_session(engine, memory).await?;
    warehouse::session::register_snapshot_without_rollup_rewrite(&plain, &settings.warehouse_dir()).await?;
    plain.deregister_table(warehouse::session::ROLLUP_TABLE)?;
    eprintln!(
        "snapshot {} with {} cases ({} rollup rows); best of {repeat} after a warm-up",
        manifest.snapshot_id,
        manifest.case_rows(),
        manifest.rollups.values().map(|e| e.rows).sum::<usize>()
    );
    let month = |m: Option<&String>| {
        m.and_then(|m| warehouse::export::first_day_of_month(m)).context("the snapshot holds no cases")
    };
    let (first, last) = (month(manifest.cases.keys().next())?, month(manifest.cases.keys().next_back())?);
    let by_type_and_month = KpiQuery {
        from: first,
        to: chrono::NaiveDate::from_ymd_opt(last.year(), 12, 31).unwrap_or(last),
        by: vec![Dim::BusinessType, Dim::Month],
        as_of: Utc::now(),
        filters: Vec::new(),
    };
    let by_district =
        KpiQuery { to: last.with_day(15).unwrap_or(last), by: vec![Dim::District], ..by_type_and_month.clone() };
    enum Run<'a> {
        Kpi(&'a SessionContext, &'a KpiQuery),
        Sql(&'a SessionContext, &'static str),
    }
    let mut runs: Vec<(String, Run)> = vec![
        ("kpi online-rate by business_type,month (rollup)".into(), Run::Kpi(&ctx, &by_type_and_month)),
        ("kpi online-rate by business_type,month (cases only)".into(), Run::Kpi(&plain, &by_type_and_month)),
        ("kpi online-rate by district, to mid-month (rollup + cases)".into(), Run::Kpi(&ctx, &by_district)),
    ];
    // The raw queries on `cases`, as DuckDB runs them; then the analysts' rollup
    // rewrite on the one that BI tools send most (`warehouse::rollup`).
    runs.extend(warehouse::bench::QUERIES.iter().map(|(name, sql)| ((*name).to_owned(), Run::Sql(&plain, sql))));
    let (name, sql) = warehouse::bench::ROLLUP_QUESTION;
    runs.push((format!("{name} (on cases)"), Run::Sql(&plain, sql)));
    runs.push((format!("{name} (rollup rewrite)"), Run::Sql(&ctx, sql)));
    for (name, run) in runs {
        let run_once = || async {
            anyhow::Ok(match &run {
                Run::Kpi(session, query) => kpi::run(session, Kpi::OnlineRate, query).await?.rows.len(),
                Run::Sql(session, sql) => session.sql(sql).await?.collect().await?.iter().map(|b| b.num_rows()).sum(),
            })
        };
        let rows = run_once().await?;
        let mut times = Vec::with_capacity(repeat.max(1));
        for _ in 0..repeat.max(1) {
            let started = std::time::Instant::now();
            run_once().await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let sql = match run {
            Run::Sql(_, sql) => Some(sql),
            Run::Kpi(..) => None,
        };
        println!(
            "{}",
            json!({ "query": name, "rows": rows, "best_ms": (times[0] * 10.0).round() / 10.0,
                    "median_ms": (times[times.len() / 2] * 10.0).round() / 10.0, "engine": engine, "sql": sql })
        );
    }
    Ok(())
}

fn parse_as_of(text: Option<&str>) -> anyhow::Result<Option<DateTime<Utc>>> {
    text.map(|t| {
        Ok(DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("--as-of {t:?} is not an RFC 3339 time like 2025-01-02T00:00:00+08:00"))?
            .with_timezone(&Utc))
    })
    .transpose()
}

/// One CSV field as RFC 4180 writes it: quoted when it holds a comma, a
/// quote or a line break, quotes doubled.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

/// `wangban kpi`: the same figures as the pages and `/api/kpi` (one
/// [`kpi::KpiService`] on the current snapshot, as of its time), or the same
/// SQL on Ballista with the same `as_of` rule.
pub(crate) async fn kpi(args: KpiArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let usage = |message: &dyn std::fmt::Display| {
        eprintln!("error: {message}");
        Ok(ExitCode::from(crate::EXIT_USAGE))
    };
    if args.name == "list" {
        for d in &kpi::DEFINITIONS {
            println!("{}", d.to_json());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let which = match Kpi::from_name(&args.name) {
        Ok(which) => which,
        Err(e) => return usage(&e),
    };
    let (Some(from), Some(to)) = (args.from, args.to) else {
        return usage(&format!("kpi {} needs --from DATE and --to DATE", args.name));
    };
    let mut filters = Vec::new();
    for filter in &args.filters {
        let parsed = filter.split_once('=').and_then(|(dim, value)| Some((Dim::from_name(dim.trim()).ok()?, value)));
        let Some((dim, value)) = parsed else {
            return usage(&format!(
                "--filter {filter:?} is not DIM=VALUE with DIM one of business_type, phase, channel, district, applicant_kind"
            ));
        };
        filters.push((dim, value.trim().to_owned()));
    }
    let by = match which.dims(args.by.iter().map(String::as_str)) {
        Ok(by) => by,
        Err(e) => return usage(&e),
    };
    let request = KpiRequest { from, to, by, filters, as_of: parse_as_of(args.as_of.as_deref())? };
    if args.plain_sql {
        let Some(manifest) = warehouse::snapshot::Warehouse::open(&settings.warehouse_dir())?.current()? else {
            return usage(&"no snapshot yet: run `wangban warehouse refresh`");
        };
        let statements = match request.on(manifest.created()?).and_then(|query| kpi::plain_sql(which, &query)) {
            Ok(statements) => statements,
            Err(e) => return usage(&e),
        };
        for sql in statements {
            println!("{}", serde_json::Value::String(sql));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let engine = args.engine.unwrap_or_else(|| settings.warehouse.engine.clone());
    let answered = settings.kpi_service().with_engine(engine).kpi(which, &request).await;
    let answer = match answered {
        Ok(answer) => answer,
        Err(warehouse::WarehouseError::BadRequest(message)) => return usage(&message),
        Err(e) => return Err(e.into()),
    };
    let result = &answer.result;
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&answer.to_json())?)?,
        OutputFormat::Csv | OutputFormat::Table => {
            let rows = result.rows.to_json();
            let mut columns: Vec<String> = result.by.iter().map(|d| d.name().to_owned()).collect();
            if which.is_rate() {
                columns.extend(["numerator", "denominator", "rate"].map(String::from));
            }
            for row in &rows {
                for key in row.keys() {
                    if !columns.contains(key) {
                        columns.push(key.clone());
                    }
                }
            }
            let text = |v: Option<&serde_json::Value>| match v {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            let csv = args.format == OutputFormat::Csv;
            let line = |cells: Vec<String>| {
                if csv { cells.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") } else { cells.join("\t") }
            };
            if !csv {
                writeln!(
                    out,
                    "# {} {} v{} ({} .. {}), snapshot {}, as of {}{}",
                    result.definition.title_zh,
                    result.definition.id,
                    result.definition.version,
                    from,
                    to,
                    answer.snapshot_id,
                    result.as_of.to_rfc3339(),
                    result.target.map(|t| format!(", target {t}")).unwrap_or_default()
                )?;
            }
            writeln!(out, "{}", line(columns.clone()))?;
            for row in &rows {
                writeln!(out, "{}", line(columns.iter().map(|c| text(row.get(c))).collect()))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn sql(args: SqlArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let limits = settings.sql_limits();
    // Locally an analyst's query runs as in the console: its memory pool,
    // nothing spilled (it stops with "resources exhausted" instead).
    let engine = args.engine.unwrap_or_else(|| settings.warehouse.engine.clone());
    let session = match engine.as_str() {
        "" | "local" => warehouse::session::console_session(warehouse::session::console_pool(limits.memory_bytes)),
        engine => engine_session(engine, Some(limits.memory_bytes)).await,
    };
    let ctx = match session {
        Ok(ctx) => ctx,
        Err(warehouse::WarehouseError::BadRequest(message)) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(crate::EXIT_USAGE));
        }
        Err(e) => return Err(e).context("starting the query engine"),
    };
    register_snapshot(&ctx, &settings.warehouse_dir()).await?;
    let answer = console::query(&ctx, &args.query, limits).await;
    // Every analyst query is audited: who (the OS user on the command line), what, how many rows.
    let store = settings.open_store().await?;
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let entry = store::audit::Recorded::WarehouseSql {
        millis: answer.as_ref().ok().map(|a| u64::try_from(a.elapsed.as_millis()).unwrap_or(u64::MAX)),
        error: answer.as_ref().err().map(ToString::to_string),
        rows: answer.as_ref().map(|a| a.rows).ok(),
        sql: &args.query,
    };
    store.record(Utc::now(), &format!("cli:{who}"), "console", &entry).await?;
    store.close().await;
    match answer {
        Ok(answer) => {
            let format = match args.format {
                OutputFormat::Table => Format::Table,
                OutputFormat::Json => Format::Json,
                OutputFormat::Csv => Format::Csv,
            };
            let mut out = std::io::stdout().lock();
            out.write_all(&console::render(&answer.batches, format)?)?;
            writeln!(out)?;
            if answer.truncated {
                eprintln!("(cut at {} rows: warehouse.sql_max_rows)", answer.rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (warehouse::WarehouseError::ReadOnly(_) | warehouse::WarehouseError::Limit(_))) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(EXIT_REFUSED))
        }
        Err(e) if e.is_limit() => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(EXIT_REFUSED))
        }
        Err(e) => Err(e.into()),
    }
}
