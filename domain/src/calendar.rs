//! The working-day calendar (工作日) and office hours (工作时间).
//!
//! Weekends are rest days except make-up working days (调休上班); official
//! holidays are rest days. 2024–2026 are built in from the State Council
//! notices; each new year's notice (published in November or December) is
//! added from a TOML file of the same shape as `calendar_cn.toml`, without a
//! new build. Years the calendar does not cover fall back to Monday–Friday;
//! [`Calendar::covers`] tells callers when to warn.
//!
//! # Counting rule
//!
//! The day of acceptance does not count. A limit of N working days ends at the
//! end of the N-th working day after the acceptance day
//! ([`Calendar::add_working_days`]); a limit of 0 means the same day. So a case
//! accepted on `a` and finished on `f` took [`Calendar::working_days_between`]`(a, f)`
//! working days — the number of working days in `(a, f]` — and is on time
//! when that is at most N.
//!
//! Working hours count only time inside office hours on working days.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Weekday};

use crate::business::{Limit, LimitUnit};

const BUILTIN: &str = include_str!("calendar_cn.toml");

/// Rest days and make-up working days of one year.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct YearRules {
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
}

/// Daily office hours: one or more non-overlapping periods, e.g. 08:30–12:00 and 14:30–17:30.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeHours {
    periods: Vec<(NaiveTime, NaiveTime)>,
}

impl Default for OfficeHours {
    /// 08:30–12:00 and 14:30–17:30 (unverified: set the centre's own in the calendar file).
    fn default() -> Self {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
        Self { periods: vec![(t(8, 30), t(12, 0)), (t(14, 30), t(17, 30))] }
    }
}

impl OfficeHours {
    /// Office hours from periods; they must be ordered, non-empty and non-overlapping.
    pub fn new(periods: Vec<(NaiveTime, NaiveTime)>) -> Result<Self, CalendarError> {
        if periods.is_empty() {
            return Err(CalendarError::Invalid("office hours need at least one period".into()));
        }
        let mut previous_end = NaiveTime::MIN;
        for (i, (start, end)) in periods.iter().enumerate() {
            if start >= end || (i > 0 && *start < previous_end) {
                return Err(CalendarError::Invalid(format!(
                    "office period {start}-{end} is empty or overlaps the one before"
                )));
            }
            previous_end = *end;
        }
        Ok(Self { periods })
    }

    /// The periods of a day.
    pub fn periods(&self) -> &[(NaiveTime, NaiveTime)] {
        &self.periods
    }

    /// Length of one full working day.
    pub fn day_length(&self) -> TimeDelta {
        self.periods.iter().map(|(s, e)| *e - *s).sum()
    }

    /// Office time on one working day between two times of that day.
    fn overlap(&self, from: NaiveTime, to: NaiveTime) -> TimeDelta {
        self.periods
            .iter()
            .map(|(s, e)| {
                let start = (*s).max(from);
                let end = (*e).min(to);
                if end > start { end - start } else { TimeDelta::zero() }
            })
            .sum()
    }
}

/// Why calendar data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Not TOML.
    #[error("calendar file is not valid TOML: {0}")]
    Syntax(String),
    /// A value that does not fit.
    #[error("calendar: {0}")]
    Invalid(String),
}

/// The official working-day calendar plus office hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    years: BTreeMap<i32, YearRules>,
    office_hours: OfficeHours,
}

impl Default for Calendar {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Calendar {
    /// The built-in calendar: 2024–2026 and default office hours.
    pub fn builtin() -> Self {
        let empty = Self { years: BTreeMap::new(), office_hours: OfficeHours::default() };
        // The built-in file is checked by a unit test; were it ever broken the
        // calendar would still work, as plain Monday–Friday.
        empty.clone().with_toml(BUILTIN).unwrap_or(empty)
    }

    /// Adds (or replaces) years, and optionally office hours, from TOML text:
    ///
    /// ```toml
    /// [2027]
    /// holidays = ["2027-01-01", "2027-02-06..2027-02-14"]
    /// workdays = ["2027-02-20"]
    ///
    /// [office_hours]
    /// periods = ["08:30-12:00", "14:30-17:30"]
    /// ```
    pub fn with_toml(mut self, text: &str) -> Result<Self, CalendarError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| CalendarError::Syntax(e.to_string()))?;
        for (key, value) in &table {
            if key == "office_hours" {
                self.office_hours = parse_office_hours(value)?;
                continue;
            }
            let year: i32 =
                key.parse().ok().filter(|y| (1990..=2200).contains(y)).ok_or_else(|| {
                    CalendarError::Invalid(format!("section [{key}] is neither a year nor office_hours"))
                })?;
            let section =
                value.as_table().ok_or_else(|| CalendarError::Invalid(format!("[{year}] must be a table")))?;
            let mut rules = YearRules::default();
            for (field, list) in section {
                let target = match field.as_str() {
                    "holidays" => &mut rules.holidays,
                    "workdays" => &mut rules.workdays,
                    other => {
                        return Err(CalendarError::Invalid(format!(
                            "[{year}] unknown key {other:?}; expected holidays, workdays"
                        )));
                    }
                };
                let items = list
                    .as_array()
                    .ok_or_else(|| CalendarError::Invalid(format!("[{year}].{field} must be a list")))?;
                for item in items {
                    let text = item
                        .as_str()
                        .ok_or_else(|| CalendarError::Invalid(format!("[{year}].{field}: {item} is not a string")))?;
                    for date in parse_date_or_range(text)? {
                        if date.year() != year {
                            return Err(CalendarError::Invalid(format!("[{year}].{field}: {date} is not in {year}")));
                        }
                        target.insert(date);
                    }
                }
            }
            if let Some(both) = rules.holidays.intersection(&rules.workdays).next() {
                return Err(CalendarError::Invalid(format!("{both} is both a holiday and a make-up working day")));
            }
            if let Some(weekday) = rules.workdays.iter().find(|d| !is_weekend(**d)) {
                return Err(CalendarError::Invalid(format!(
                    "make-up working day {weekday} is not a Saturday or Sunday"
                )));
            }
            self.years.insert(year, rules);
        }
        Ok(self)
    }

    /// True when the official data for `year` is loaded.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The years with official data.
    pub fn years(&self) -> Vec<i32> {
        self.years.keys().copied().collect()
    }

    /// The office hours in force.
    pub fn office_hours(&self) -> &OfficeHours {
        &self.office_hours
    }

    /// Is `date` a working day? Holidays are not; make-up days are; otherwise Monday–Friday.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if let Some(rules) = self.years.get(&date.year()) {
            if rules.holidays.contains(&date) {
                return false;
            }
            if rules.workdays.contains(&date) {
                return true;
            }
        }
        !is_weekend(date)
    }

    /// The N-th working day after `date` (`date` itself does not count; N = 0 gives `date`).
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        let mut current = date;
        let mut counted = 0;
        while counted < n {
            current = current + Days::new(1);
            if self.is_working_day(current) {
                counted += 1;
            }
        }
        current
    }

    /// The number of working days in `(from, to]`; negative when `to` is before `from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        if to < from {
            return -self.working_days_between(to, from);
        }
        from.iter_days().skip(1).take_while(|d| *d <= to).filter(|d| self.is_working_day(*d)).count() as i64
    }

    /// Office time elapsed between two instants on working days; zero if `to` is not after `from`.
    pub fn working_time_between(&self, from: NaiveDateTime, to: NaiveDateTime) -> TimeDelta {
        if to <= from {
            return TimeDelta::zero();
        }
        let mut total = TimeDelta::zero();
        for day in from.date().iter_days().take_while(|d| *d <= to.date()) {
            if !self.is_working_day(day) {
                continue;
            }
            let start = if day == from.date() { from.time() } else { NaiveTime::MIN };
            let end = if day == to.date() {
                to.time()
            } else {
                NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999).unwrap_or(NaiveTime::MIN)
            };
            total += self.office_hours.overlap(start, end);
        }
        total
    }

    /// The instant at which `hours` office hours have passed after `from`.
    pub fn add_working_hours(&self, from: NaiveDateTime, hours: u32) -> NaiveDateTime {
        let mut remaining = TimeDelta::hours(i64::from(hours));
        let mut day = from.date();
        let mut earliest = from.time();
        loop {
            if self.is_working_day(day) {
                for (start, end) in self.office_hours.periods() {
                    let s = (*start).max(earliest);
                    if *end <= s {
                        continue;
                    }
                    let available = *end - s;
                    if available >= remaining {
                        return day.and_time(s) + remaining;
                    }
                    remaining -= available;
                }
            }
            day = day + Days::new(1);
            earliest = NaiveTime::MIN;
        }
    }

    /// Whether work accepted at `accepted` and finished at `finished` met `limit`,
    /// by the counting rule of this module.
    pub fn is_within_limit(&self, accepted: NaiveDateTime, finished: NaiveDateTime, limit: Limit) -> bool {
        match limit.unit {
            LimitUnit::WorkingDays => {
                self.working_days_between(accepted.date(), finished.date()) <= i64::from(limit.amount)
            }
            LimitUnit::WorkingHours => {
                self.working_time_between(accepted, finished) <= TimeDelta::hours(i64::from(limit.amount))
            }
        }
    }

    /// The last moment that still meets `limit` for work accepted at `accepted`:
    /// the end of the N-th working day after the acceptance day, or the instant N office hours later.
    pub fn deadline(&self, accepted: NaiveDateTime, limit: Limit) -> NaiveDateTime {
        match limit.unit {
            LimitUnit::WorkingDays => self
                .add_working_days(accepted.date(), limit.amount)
                .and_hms_opt(23, 59, 59)
                .unwrap_or(NaiveDateTime::MAX),
            LimitUnit::WorkingHours => self.add_working_hours(accepted, limit.amount),
        }
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn parse_date(text: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| CalendarError::Invalid(format!("{text:?} is not a date like 2027-01-01")))
}

fn parse_date_or_range(text: &str) -> Result<Vec<NaiveDate>, CalendarError> {
    match text.split_once("..") {
        None => Ok(vec![parse_date(text)?]),
        Some((a, b)) => {
            let (start, end) = (parse_date(a)?, parse_date(b)?);
            if end < start || (end - start).num_days() > 31 {
                return Err(CalendarError::Invalid(format!("range {text:?} is backwards or longer than a month")));
            }
            Ok(start.iter_days().take_while(|d| *d <= end).collect())
        }
    }
}

fn parse_office_hours(value: &toml::Value) -> Result<OfficeHours, CalendarError> {
    let periods = value
        .get("periods")
        .and_then(toml::Value::as_array)
        .ok_or_else(|| CalendarError::Invalid("office_hours.periods must be a list like [\"08:30-12:00\"]".into()))?;
    let mut parsed = Vec::new();
    for p in periods {
        let text = p.as_str().unwrap_or_default();
        let bad = || CalendarError::Invalid(format!("office period {p} is not like \"08:30-12:00\""));
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let a = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
        let b = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
        parsed.push((a, b));
    }
    OfficeHours::new(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
    }

    fn dt(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("test datetime")
    }

    #[test]
    fn builtin_data_parses_and_covers_2024_to_2026() {
        Calendar { years: BTreeMap::new(), office_hours: OfficeHours::default() }
            .with_toml(BUILTIN)
            .expect("built-in calendar is valid");
        assert_eq!(Calendar::builtin().years(), vec![2024, 2025, 2026]);
    }

    #[test]
    fn official_edges() {
        let c = Calendar::builtin();
        assert!(c.is_working_day(d("2024-10-12")), "2024-10-12 Saturday is a make-up day");
        assert!(c.is_working_day(d("2025-01-26")), "2025-01-26 Sunday is a make-up day");
        assert!(!c.is_working_day(d("2026-02-23")), "2026-02-23 Monday is Spring Festival");
        assert!(c.is_working_day(d("2024-09-29")), "2024-09-29 Sunday is a make-up day");
        assert!(!c.is_working_day(d("2024-10-07")));
        assert!(!c.is_working_day(d("2024-10-13")), "ordinary Sunday");
        assert!(c.is_working_day(d("2024-10-08")));
    }

    #[test]
    fn counting_rule_excludes_the_acceptance_day() {
        let c = Calendar::builtin();
        // Accepted Friday 2024-09-27: Sunday 09-29 is a make-up day, then 09-30, then the National Day week.
        assert_eq!(c.add_working_days(d("2024-09-27"), 1), d("2024-09-29"));
        assert_eq!(c.add_working_days(d("2024-09-27"), 2), d("2024-09-30"));
        assert_eq!(c.add_working_days(d("2024-09-27"), 3), d("2024-10-08"));
        assert_eq!(c.add_working_days(d("2024-09-27"), 0), d("2024-09-27"));
        assert_eq!(c.working_days_between(d("2024-09-27"), d("2024-10-08")), 3);
        assert_eq!(c.working_days_between(d("2024-10-08"), d("2024-09-27")), -3);
        assert_eq!(c.working_days_between(d("2024-09-27"), d("2024-09-27")), 0);
    }

    #[test]
    fn working_hours_skip_lunch_nights_and_holidays() {
        let c = Calendar::builtin();
        assert_eq!(c.working_time_between(dt("2024-10-08 11:00"), dt("2024-10-08 15:30")), TimeDelta::hours(2));
        // Friday 16:30 to Monday 09:30 across a plain weekend: 1h + 1h.
        assert_eq!(c.working_time_between(dt("2024-11-01 16:30"), dt("2024-11-04 09:30")), TimeDelta::hours(2));
        assert_eq!(c.add_working_hours(dt("2024-09-30 17:00"), 1), dt("2024-10-08 09:00"));
        assert_eq!(c.add_working_hours(dt("2024-10-08 07:00"), 4), dt("2024-10-08 15:00"));
    }

    #[test]
    fn limits_and_deadlines() {
        let c = Calendar::builtin();
        let accepted = dt("2024-09-27 10:00");
        assert!(c.is_within_limit(accepted, dt("2024-10-08 17:00"), Limit::working_days(3)));
        assert!(!c.is_within_limit(accepted, dt("2024-10-09 09:00"), Limit::working_days(3)));
        assert_eq!(c.deadline(accepted, Limit::working_days(0)), dt("2024-09-27 23:59") + TimeDelta::seconds(59));
        assert!(c.is_within_limit(accepted, dt("2024-09-27 16:00"), Limit::working_days(0)));
    }

    #[test]
    fn a_new_year_comes_from_a_file() {
        let c = Calendar::builtin()
            .with_toml("[2027]\nholidays = [\"2027-01-01\", \"2027-02-06..2027-02-14\"]\nworkdays = [\"2027-02-20\"]\n")
            .expect("valid");
        assert!(c.covers(2027));
        assert!(!c.is_working_day(d("2027-02-10")));
        assert!(c.is_working_day(d("2027-02-20")));
        assert!(c.covers(2024), "built-in years stay");
    }

    #[test]
    fn bad_calendar_files_are_refused_with_the_reason() {
        let bad = |text: &str| Calendar::builtin().with_toml(text).expect_err(text).to_string();
        assert!(bad("[2027]\nholidays = [\"2027-02-30\"]").contains("2027-02-30"));
        assert!(bad("[2027]\nworkdays = [\"2027-03-03\"]").contains("not a Saturday or Sunday"));
        assert!(bad("[2027]\nholidays = [\"2028-01-01\"]").contains("not in 2027"));
        assert!(bad("[2027]\nholidays = [\"2027-02-20\"]\nworkdays = [\"2027-02-20\"]").contains("both"));
        assert!(bad("[office_hours]\nperiods = [\"12:00-08:00\"]").contains("empty or overlaps"));
        assert!(bad("[twenty]\n").contains("neither a year"));
    }
}
