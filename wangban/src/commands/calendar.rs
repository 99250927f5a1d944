//! `wangban calendar …`: working-day arithmetic on the official calendar.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use domain::Calendar;
use serde_json::json;

use crate::cli::{CalendarArgs, CalendarCommand};
use crate::settings::Settings;

pub(crate) fn run(args: &CalendarArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let calendar = settings.calendar()?;
    match &args.command {
        CalendarCommand::Workdays { from, to } => {
            let (from, to) = (parse_date(from)?, parse_date(to)?);
            warn_uncovered(&calendar, &[from, to]);
            println!("{}", calendar.working_days_between(from, to));
        }
        CalendarCommand::Add { date, n } => {
            let date = parse_date(date)?;
            let result = calendar.add_working_days(date, *n);
            warn_uncovered(&calendar, &[date, result]);
            println!("{result}");
        }
        CalendarCommand::Check { date } => {
            let date = parse_date(date)?;
            let output = json!({
                "date": date.to_string(),
                "weekday": date.weekday().to_string(),
                "working_day": calendar.is_working_day(date),
                "official_data": calendar.covers(date.year()),
            });
            println!("{output}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_date(text: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .with_context(|| format!("{text:?} is not a date like 2024-10-08"))
}

/// Years without official data fall back to Monday–Friday: say so, on stderr.
fn warn_uncovered(calendar: &Calendar, dates: &[NaiveDate]) {
    let (first, last) = match (dates.iter().min(), dates.iter().max()) {
        (Some(a), Some(b)) => (a.year(), b.year()),
        _ => return,
    };
    let missing: Vec<String> = (first..=last).filter(|y| !calendar.covers(*y)).map(|y| y.to_string()).collect();
    if !missing.is_empty() {
        eprintln!(
            "warning: no official holiday data for {} (counted as Monday–Friday); add the year with --calendar FILE",
            missing.join(", ")
        );
    }
}
