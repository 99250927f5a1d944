//! China Standard Time (UTC+8, no daylight saving), the one place instants
//! become local times and local times become instants: every partner's
//! clock, every seizure date and every KPI period is in China time. Also the
//! [`Clock`] every service reads the time from (fixed in tests).

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset as _, SecondsFormat, TimeDelta, Utc};

/// The UTC offset of China Standard Time.
pub const CHINA_OFFSET_SECONDS: i32 = 8 * 3600;

/// Where a service gets the time: `Arc::new(Utc::now)` in production, a fixed
/// or stepped time in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The offset of China Standard Time.
pub fn china() -> FixedOffset {
    // 8 hours is always a valid offset; the fallback is never taken.
    FixedOffset::east_opt(CHINA_OFFSET_SECONDS).unwrap_or_else(|| Utc.fix())
}

/// `t` in China Standard Time.
pub fn china_time(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&china())
}

/// `t` as RFC 3339 in China time to the second, e.g. `2024-10-08T09:30:00+08:00`.
pub fn china_rfc3339(t: DateTime<Utc>) -> String {
    china_time(t).to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// A China-time wall-clock reading as an instant (never ambiguous: China
/// time has no daylight saving).
pub fn from_china(local: NaiveDateTime) -> DateTime<Utc> {
    (local - TimeDelta::seconds(i64::from(CHINA_OFFSET_SECONDS))).and_utc()
}

/// `text` in `format` (a `chrono` format without an offset), read as China time.
pub fn parse_china(text: &str, format: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, format).ok().map(from_china)
}

/// The local (China Standard Time) calendar date of an instant.
pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    china_time(t).date_naive()
}

/// The first instant after `day` ends in China time, in UTC.
pub fn local_day_end(day: NaiveDate) -> DateTime<Utc> {
    from_china(day.succ_opt().unwrap_or(day).and_time(NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn china_time_is_eight_hours_ahead_both_ways() {
        let t = Utc.with_ymd_and_hms(2024, 12, 31, 16, 30, 0).single().expect("time");
        assert_eq!(local_date(t), NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"));
        assert_eq!(china_rfc3339(t), "2025-01-01T00:30:00+08:00");
        assert_eq!(parse_china("2025-01-01 00:30:00", "%Y-%m-%d %H:%M:%S"), Some(t));
        let day = NaiveDate::from_ymd_opt(2024, 12, 31).expect("date");
        assert_eq!(local_day_end(day), Utc.with_ymd_and_hms(2024, 12, 31, 16, 0, 0).single().expect("time"));
        assert_eq!(parse_china("2025-13-01 00:00:00", "%Y-%m-%d %H:%M:%S"), None);
    }
}
