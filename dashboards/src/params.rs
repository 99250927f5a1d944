//! Query parameters shared by the pages, the KPI API and the CLI: what a
//! date, a month and a time must look like, and a typed reason when they do
//! not (its text is the 400 answer or the CLI's message).

use chrono::{DateTime, NaiveDate, Utc};
use warehouse::WarehouseError;

/// What is wrong with a parameter.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    /// A required parameter is absent.
    #[error("{name} is required ({format})")]
    Missing {
        /// The parameter.
        name: &'static str,
        /// The form it takes.
        format: &'static str,
    },
    /// Not a date.
    #[error("{name} {text:?} is not a date like 2025-01-31")]
    NotDate {
        /// The parameter.
        name: &'static str,
        /// What was given.
        text: String,
    },
    /// Not a month.
    #[error("month {0:?} is not a month like 2025-06")]
    NotMonth(String),
    /// Not a time.
    #[error("{name} {text:?} is not an RFC 3339 time")]
    NotTime {
        /// The parameter.
        name: &'static str,
        /// What was given.
        text: String,
    },
    /// A period that ends before it starts.
    #[error("to {to} is before from {from}")]
    Reversed {
        /// Its first day.
        from: NaiveDate,
        /// Its last day.
        to: NaiveDate,
    },
    /// A breakdown or filter the KPI does not have.
    #[error(transparent)]
    Kpi(#[from] WarehouseError),
}

/// A `YYYY-MM-DD` parameter.
pub fn date(name: &'static str, text: &str) -> Result<NaiveDate, ParamError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| ParamError::NotDate { name, text: text.to_owned() })
}

/// A required `YYYY-MM-DD` parameter.
pub fn required_date(name: &'static str, value: Option<&str>) -> Result<NaiveDate, ParamError> {
    date(name, value.ok_or(ParamError::Missing { name, format: "YYYY-MM-DD" })?)
}

/// A `YYYY-MM` parameter: the month's first day.
pub fn month(value: Option<&str>) -> Result<NaiveDate, ParamError> {
    let text = value.ok_or(ParamError::Missing { name: "month", format: "YYYY-MM" })?;
    warehouse::export::first_day_of_month(text.trim()).ok_or_else(|| ParamError::NotMonth(text.to_owned()))
}

/// An RFC 3339 time parameter.
pub fn time(name: &'static str, text: &str) -> Result<DateTime<Utc>, ParamError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ParamError::NotTime { name, text: text.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_says_what_was_given_and_what_is_expected() {
        assert_eq!(
            month(Some("2025-6x")).expect_err("bad").to_string(),
            "month \"2025-6x\" is not a month like 2025-06"
        );
        assert_eq!(month(None).expect_err("absent").to_string(), "month is required (YYYY-MM)");
        assert_eq!(month(Some(" 2025-06 ")).expect("month"), NaiveDate::from_ymd_opt(2025, 6, 1).expect("day"));
        assert_eq!(
            required_date("from", Some("2025-02-30")).expect_err("bad").to_string(),
            "from \"2025-02-30\" is not a date like 2025-01-31"
        );
        assert_eq!(required_date("to", None).expect_err("absent").to_string(), "to is required (YYYY-MM-DD)");
        assert_eq!(
            time("as_of", "yesterday").expect_err("bad").to_string(),
            "as_of \"yesterday\" is not an RFC 3339 time"
        );
    }
}
