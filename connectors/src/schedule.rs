//! A connector's cron schedule. Seven-field `cron` crate syntax with seconds
//! (`sec min hour day-of-month month day-of-week [year]`); five-field crontab
//! lines are accepted too and run at second 0. Times are UTC.

use std::str::FromStr;

use chrono::{DateTime, Utc};

/// A validated cron schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    inner: cron::Schedule,
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron schedule {expression:?}: {reason} (expected e.g. \"0 */15 * * * *\" or \"*/15 * * * *\")")]
pub struct ScheduleError {
    /// What was given.
    pub expression: String,
    /// What the parser said.
    pub reason: String,
}

impl Schedule {
    /// Parses a cron expression.
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let trimmed = expression.trim();
        let full = if trimmed.split_whitespace().count() == 5 { format!("0 {trimmed}") } else { trimmed.to_owned() };
        let inner = cron::Schedule::from_str(&full)
            .map_err(|e| ScheduleError { expression: expression.to_owned(), reason: e.to_string() })?;
        Ok(Self { expression: trimmed.to_owned(), inner })
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first run strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.inner.after(&now).next()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn next_run_is_computed_from_the_given_now() {
        let now = Utc.with_ymd_and_hms(2024, 10, 8, 9, 7, 30).single().expect("time");
        let every_quarter = Schedule::parse("*/15 * * * *").expect("crontab form");
        assert_eq!(every_quarter.next_after(now), Utc.with_ymd_and_hms(2024, 10, 8, 9, 15, 0).single());
        let nightly = Schedule::parse("0 30 2 * * *").expect("seconds form");
        assert_eq!(nightly.next_after(now), Utc.with_ymd_and_hms(2024, 10, 9, 2, 30, 0).single());
    }

    #[test]
    fn bad_expressions_say_what_was_given() {
        let err = Schedule::parse("every five minutes").expect_err("not cron");
        assert!(err.to_string().contains("every five minutes"), "{err}");
    }
}
