//! The alert rules, evaluated after each warehouse refresh:
//!
//! - `online_rate_below_trajectory`: the online rate of the last complete
//!   month (as of the snapshot) is below the straight line from the baseline
//!   month's rate to the target rate in the target month. The plan sets 90%
//!   but no date, so the target month is a setting.
//! - `seizures_expiring`: active seizures end within the configured number of
//!   days (a court must renew them or they lapse; read from the store, which
//!   is current, not from the snapshot).
//! - `connector_lag`: one alert per connector, judged by the feed's own rhythm.
//!   A failed poll alerts at once, whatever the rhythm. Otherwise, a feed with
//!   a week of history or more has its arrival rate learned per weekday and
//!   hour (China time) from its last weeks ([`Rhythm`]); the silence since its
//!   newest change alerts only when a Poisson process at those rates would be
//!   that silent with probability below `silence_probability` (1%). A quiet
//!   feed (the court platform) stays quiet without alarm; a busy one that stops
//!   alerts within minutes. A feed without that history is judged by a fixed
//!   threshold (its own in `connector_lag_by`, or the general one), its age
//!   counted in office hours on working days ([`LagClock::Office`], the
//!   default) or round the clock ([`LagClock::Always`]).
//!
//! [`evaluate`] returns what fires; `store::alerts` keeps the states and
//! what the webhook has been told.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};
use store::Store;
use store::alerts::Observation;

use crate::WarehouseError;
use crate::cache::OpenSnapshot;
use crate::kpi::{Dim, Kpi, KpiRequest};

/// Online rate below its trajectory to the target.
pub const ONLINE_RATE: &str = "online_rate_below_trajectory";
/// Seizures expiring soon.
pub const SEIZURES_EXPIRING: &str = "seizures_expiring";
/// A connector lagging.
pub const CONNECTOR_LAG: &str = "connector_lag";
/// Every rule [`evaluate`] evaluates.
pub const KINDS: [&str; 3] = [ONLINE_RATE, SEIZURES_EXPIRING, CONNECTOR_LAG];
/// The rules leadership acts on (the overview's banner); connector lag is
/// operational (the connectors page and the webhook).
pub const LEADERSHIP_KINDS: [&str; 2] = [ONLINE_RATE, SEIZURES_EXPIRING];

/// The rules' parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// The month the trajectory starts from (its online rate is the baseline), `YYYY-MM`.
    pub baseline_month: String,
    /// The month the target rate is to be reached, `YYYY-MM`.
    pub target_month: String,
    /// The target rate (0.9).
    pub target_rate: f64,
    /// Seizures ending within this many days alert.
    pub expiring_within_days: u32,
    /// A connector whose data is older than this alerts.
    pub connector_lag: TimeDelta,
    /// Thresholds of particular connectors (feeds that are quiet by nature: daily files, QC findings).
    pub connector_lag_by: std::collections::BTreeMap<String, TimeDelta>,
    /// How each connector's lag is counted (default [`LagClock::Office`]).
    pub connector_clock_by: std::collections::BTreeMap<String, LagClock>,
    /// The working days and office hours lag is counted in.
    pub calendar: domain::Calendar,
    /// A silence less probable than this, at the feed's learned rhythm, alerts (0.01).
    pub silence_probability: f64,
}

/// How a connector's lag is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LagClock {
    /// Office hours on working days (China time, the official calendar).
    #[default]
    Office,
    /// Every hour of every day (a feed expected round the clock).
    Always,
}

impl LagClock {
    /// `office` or `always`.
    pub fn from_name(name: &str) -> Option<LagClock> {
        match name {
            "office" => Some(LagClock::Office),
            "always" => Some(LagClock::Always),
            _ => None,
        }
    }

    /// The time from `since` to `now` on this clock.
    pub fn elapsed(self, calendar: &domain::Calendar, since: DateTime<Utc>, now: DateTime<Utc>) -> TimeDelta {
        match self {
            LagClock::Always => now - since,
            LagClock::Office => calendar.working_time_between(
                domain::time::china_time(since).naive_local(),
                domain::time::china_time(now).naive_local(),
            ),
        }
    }
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            baseline_month: "2024-05".into(),
            target_month: "2026-12".into(),
            target_rate: crate::kpi::TARGET_ONLINE_RATE,
            expiring_within_days: 30,
            connector_lag: TimeDelta::hours(3),
            connector_lag_by: std::collections::BTreeMap::new(),
            connector_clock_by: std::collections::BTreeMap::new(),
            calendar: domain::Calendar::builtin(),
            silence_probability: 0.01,
        }
    }
}

/// A connector's rhythm as the store's history gives it (see [`Rhythm::learn`]):
/// the one place the lag rule and the connectors page learn it.
pub async fn rhythm_of(
    store: &Store,
    connector: &str,
    now: DateTime<Utc>,
) -> Result<Option<Rhythm>, store::StoreError> {
    let history = store.arrivals_since(connector, now - TimeDelta::weeks(RHYTHM_WEEKS)).await?;
    let first = store.first_arrival(connector).await?;
    Ok(Rhythm::learn(&history, first, now))
}

/// Weeks of history a feed's rhythm is learned from.
pub const RHYTHM_WEEKS: i64 = 8;

/// A feed's arrival rhythm: its mean new changes per hour, by weekday
/// (Monday first) and hour of day, China time, learned from its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Rhythm {
    /// Mean changes per hour: `[weekday][hour]`.
    pub per_hour: [[f64; 24]; 7],
    /// Weeks of history it was learned from.
    pub weeks: f64,
}

impl Rhythm {
    /// Learns a rhythm from hourly arrival counts `(hour start, changes)` of
    /// the [`RHYTHM_WEEKS`] weeks before `now`, for a feed whose history
    /// began at `first` (its first recorded arrival). `None` (the fixed
    /// threshold decides) with less than a week of history, or with no
    /// change at all in the window: a feed that has gone silent for weeks is
    /// not taken to be silent by nature.
    pub fn learn(hours: &[(DateTime<Utc>, i64)], first: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Self> {
        let window_start = now - TimeDelta::weeks(RHYTHM_WEEKS);
        let hours: Vec<&(DateTime<Utc>, i64)> = hours.iter().filter(|(h, _)| *h >= window_start && *h <= now).collect();
        let earliest = hours.iter().map(|(h, _)| *h).min()?;
        let start = first.map_or(earliest, |f| f.min(earliest)).max(window_start);
        let span = now - start;
        let total: i64 = hours.iter().map(|(_, n)| n).sum();
        if span < TimeDelta::weeks(1) || total < 1 {
            return None;
        }
        let weeks = span.num_seconds() as f64 / TimeDelta::weeks(1).num_seconds() as f64;
        let mut per_hour = [[0.0; 24]; 7];
        for (hour, n) in hours {
            let local = domain::time::china_time(*hour);
            per_hour[local.weekday().num_days_from_monday() as usize][local.hour() as usize] += *n as f64;
        }
        for day in &mut per_hour {
            for rate in day.iter_mut() {
                *rate /= weeks;
            }
        }
        Some(Self { per_hour, weeks })
    }

    /// The changes expected from `from` to `to` at this rhythm (hour by hour,
    /// partial hours in proportion).
    pub fn expected(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        let mut at = from;
        let mut sum = 0.0;
        // At most the rhythm's window: a silence longer than that is surely improbable anyway.
        let to = to.min(from + TimeDelta::weeks(RHYTHM_WEEKS));
        while at < to {
            let local = domain::time::china_time(at);
            let next_hour = at + TimeDelta::seconds(3600 - i64::from(local.minute() * 60 + local.second()));
            let end = next_hour.min(to);
            let fraction = (end - at).num_seconds() as f64 / 3600.0;
            sum += self.per_hour[local.weekday().num_days_from_monday() as usize][local.hour() as usize] * fraction;
            at = end;
        }
        sum
    }

    /// The probability of no change at all from `from` to `to` (Poisson).
    pub fn silence_probability(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        (-self.expected(from, to)).exp()
    }

    /// Its busiest hour: (weekday from Monday 0, hour, changes per hour).
    pub fn peak(&self) -> (usize, usize, f64) {
        let mut best = (0, 0, 0.0);
        for (d, day) in self.per_hour.iter().enumerate() {
            for (h, rate) in day.iter().enumerate() {
                if *rate > best.2 {
                    best = (d, h, *rate);
                }
            }
        }
        best
    }

    /// In words: `工作日 10 时最忙，每小时约 42.0 条；每周约 980 条`.
    pub fn describe(&self) -> String {
        const DAYS: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];
        let (d, h, rate) = self.peak();
        let weekly: f64 = self.per_hour.iter().flatten().sum();
        format!("{}{h} 时最忙，每小时约 {rate:.1} 条；每周约 {weekly:.0} 条（学自近 {:.1} 周）", DAYS[d], self.weeks)
    }
}

fn month_start(month: &str) -> Result<NaiveDate, WarehouseError> {
    crate::export::first_day_of_month(month)
        .ok_or_else(|| WarehouseError::BadRequest(format!("{month:?} is not a month like 2026-12")))
}

fn months_between(from: NaiveDate, to: NaiveDate) -> i32 {
    (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32
}

/// The rate the trajectory expects in `month`: on the line from `baseline`
/// (the baseline month's rate) to the target, and the target from the target month on.
pub fn trajectory(rules: &AlertRules, baseline: f64, month: &str) -> Result<f64, WarehouseError> {
    let start = month_start(&rules.baseline_month)?;
    let end = month_start(&rules.target_month)?;
    let span = months_between(start, end);
    let at = months_between(start, month_start(month)?);
    if span <= 0 || at >= span {
        return Ok(rules.target_rate);
    }
    let at = f64::from(at.max(0));
    Ok(baseline + (rules.target_rate - baseline) * at / f64::from(span))
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// The online-rate rule on `snapshot`.
pub async fn online_rate(snapshot: &OpenSnapshot, rules: &AlertRules) -> Result<Option<Observation>, WarehouseError> {
    let as_of = crate::export::month_of(snapshot.as_of());
    let this_month = month_start(&as_of)?;
    let Some(last_complete) = this_month.pred_opt() else { return Ok(None) };
    let from = month_start(&rules.baseline_month)?;
    if last_complete < from {
        return Ok(None);
    }
    let result = snapshot.kpi(Kpi::OnlineRate, &KpiRequest::new(from, last_complete, &[Dim::Month])).await?;
    let series: BTreeMap<String, f64> =
        result.rates().iter().filter_map(|r| Some((r.dim(Dim::Month)?.to_owned(), r.rate?))).collect();
    let (Some((_, &baseline)), Some((month, &rate))) = (series.iter().next(), series.iter().next_back()) else {
        return Ok(None);
    };
    let expected = trajectory(rules, baseline, month)?;
    if rate + 1e-9 >= expected {
        return Ok(None);
    }
    let shortfall = expected - rate;
    Ok(Some(Observation {
        kind: ONLINE_RATE.into(),
        subject: String::new(),
        severity: if shortfall > 0.05 { "critical" } else { "warning" }.into(),
        summary: format!(
            "{month} 网办率 {}，低于按期达到 {} 的进度线 {}（差 {:.1} 个百分点；{} 起，{} 达标）",
            percent(rate),
            percent(rules.target_rate),
            percent(expected),
            shortfall * 100.0,
            rules.baseline_month,
            rules.target_month
        ),
        value: rate,
        threshold: expected,
    }))
}

/// The seizure rule: active seizures ending within the window, as of `now`.
pub async fn seizures_expiring(
    store: &Store,
    rules: &AlertRules,
    now: DateTime<Utc>,
) -> Result<Option<Observation>, WarehouseError> {
    let today = domain::time::local_date(now);
    let expiring = store.seizures_expiring_within(today, rules.expiring_within_days).await?;
    let Some(first) = expiring.first() else { return Ok(None) };
    let days_left = (first.end_date - today).num_days();
    Ok(Some(Observation {
        kind: SEIZURES_EXPIRING.into(),
        subject: String::new(),
        severity: if days_left <= 7 { "critical" } else { "warning" }.into(),
        summary: format!(
            "{} 件查封将在 {} 日内到期，最早 {}（单元 {}，{} 日后）；到期未续封即失效",
            expiring.len(),
            rules.expiring_within_days,
            first.end_date,
            first.unit_no,
            days_left
        ),
        value: expiring.len() as f64,
        threshold: 0.0,
    }))
}

/// The lag rule: one observation per connector that failed its last poll,
/// or whose silence is improbable at its own rhythm ([`Rhythm`]), or (without
/// a week of history, or silent through the whole window) whose data is older than the
/// threshold on its clock ([`LagClock`]).
pub async fn connectors_lagging(
    store: &Store,
    rules: &AlertRules,
    now: DateTime<Utc>,
) -> Result<Vec<Observation>, WarehouseError> {
    let mut out = Vec::new();
    for s in store.all_connector_states().await? {
        if s.status == "degraded" {
            let error = s.last_error.as_deref().unwrap_or("未知错误");
            out.push(Observation {
                kind: CONNECTOR_LAG.into(),
                subject: s.connector.clone(),
                severity: "critical".into(),
                summary: format!("连接器 {} 最近一次拉取失败：{error}", s.connector),
                value: s.lag(now).map_or(0.0, |l| l.num_seconds() as f64 / 3600.0),
                threshold: 0.0,
            });
            continue;
        }
        let Some(watermark) = s.source_watermark else { continue };
        let fixed = rules.connector_lag_by.get(&s.connector).copied();
        let rhythm = rhythm_of(store, &s.connector, now).await?;
        if let Some(rhythm) = rhythm {
            let p = rhythm.silence_probability(watermark, now);
            if p < rules.silence_probability {
                let hours = (now - watermark).num_seconds() as f64 / 3600.0;
                out.push(Observation {
                    kind: CONNECTOR_LAG.into(),
                    subject: s.connector.clone(),
                    severity: "warning".into(),
                    summary: format!(
                        "连接器 {} 已 {hours:.1} 小时无新数据；按其规律此时段应到约 {:.1} 条，如此静默的概率 {:.2}%（阈值 {:.0}%；{}）",
                        s.connector,
                        rhythm.expected(watermark, now),
                        p * 100.0,
                        rules.silence_probability * 100.0,
                        rhythm.describe()
                    ),
                    value: hours,
                    threshold: p,
                });
            }
            continue;
        }
        let clock = rules.connector_clock_by.get(&s.connector).copied().unwrap_or_default();
        let lag = clock.elapsed(&rules.calendar, watermark, now);
        let limit = fixed.unwrap_or(rules.connector_lag);
        let limit_hours = limit.num_seconds() as f64 / 3600.0;
        if lag > limit {
            let hours = lag.num_seconds() as f64 / 3600.0;
            let counted = match clock {
                LagClock::Office => "按工作日办公时间计",
                LagClock::Always => "按全天计",
            };
            out.push(Observation {
                kind: CONNECTOR_LAG.into(),
                subject: s.connector.clone(),
                severity: "warning".into(),
                summary: format!(
                    "连接器 {} 数据滞后 {:.1} 小时（{counted}，阈值 {:.1} 小时），状态 {}",
                    s.connector, hours, limit_hours, s.status
                ),
                value: hours,
                threshold: limit_hours,
            });
        }
    }
    Ok(out)
}

/// Every rule: the observations that fire, and the kinds that could be
/// evaluated (the online-rate rule needs a snapshot; a kind left out keeps its
/// last state rather than resolving).
pub async fn evaluate(
    snapshot: Option<&OpenSnapshot>,
    store: &Store,
    rules: &AlertRules,
    now: DateTime<Utc>,
) -> Result<(Vec<&'static str>, Vec<Observation>), WarehouseError> {
    let mut kinds = vec![SEIZURES_EXPIRING, CONNECTOR_LAG];
    let mut observed = Vec::new();
    if let Some(snapshot) = snapshot {
        kinds.insert(0, ONLINE_RATE);
        observed.extend(online_rate(snapshot, rules).await?);
    }
    observed.extend(seizures_expiring(store, rules, now).await?);
    observed.extend(connectors_lagging(store, rules, now).await?);
    Ok((kinds, observed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn china(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        let local = NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(h, min, 0)).unwrap_or_default();
        domain::time::from_china(local)
    }

    /// A feed quiet from Friday evening to Monday morning raises nothing; one
    /// silent through Monday morning does, before noon's end; a round-the-clock
    /// feed counts the weekend.
    #[test]
    fn lag_is_counted_in_office_hours_unless_a_feed_runs_round_the_clock() {
        let calendar = domain::Calendar::builtin();
        // Friday 2025-01-03, 17:00 China time: half an hour of office time left.
        let friday = china(2025, 1, 3, 17, 0);
        let monday_early = china(2025, 1, 6, 9, 30);
        let monday_noon = china(2025, 1, 6, 12, 0);
        let office = |now| LagClock::Office.elapsed(&calendar, friday, now);
        assert_eq!(office(monday_early), TimeDelta::minutes(30 + 60));
        assert_eq!(office(monday_noon), TimeDelta::minutes(30 + 210));
        let limit = AlertRules::default().connector_lag;
        assert!(office(monday_early) < limit, "a quiet weekend is no alarm");
        assert!(office(monday_noon) > limit, "a feed silent through a working morning is");
        assert_eq!(LagClock::Always.elapsed(&calendar, friday, monday_early), monday_early - friday);
        // A national holiday counts like a weekend: 2025-01-01 (New Year's Day).
        let eve = china(2024, 12, 31, 17, 30);
        assert_eq!(LagClock::Office.elapsed(&calendar, eve, china(2025, 1, 2, 8, 30)), TimeDelta::zero());
    }

    /// A quiet feed (a few requests on weekday mornings) silent through a
    /// Monday evening is no alarm; a busy one (60 an hour in office hours)
    /// that stops alerts within its expected gap, minutes, not hours.
    #[test]
    fn a_silence_is_judged_by_the_feeds_own_rhythm() {
        let monday = |h, m| china(2025, 1, 6, h, m);
        let now = monday(19, 0);
        let mut quiet = Vec::new();
        let mut busy = Vec::new();
        for week in 1..=4 {
            for day in 0..5 {
                let date = NaiveDate::from_ymd_opt(2025, 1, 6).unwrap_or_default() - TimeDelta::weeks(week)
                    + TimeDelta::days(day);
                let at = |h| domain::time::from_china(date.and_hms_opt(h, 0, 0).unwrap_or_default());
                quiet.push((at(10), 2));
                for h in 9..17 {
                    busy.push((at(h), 60));
                }
            }
        }
        let quiet = Rhythm::learn(&quiet, None, now).expect("four weeks");
        let busy = Rhythm::learn(&busy, None, now).expect("four weeks");
        // Quiet since Friday 10:00: the weekend and a Monday with two expected changes.
        let p = quiet.silence_probability(china(2025, 1, 3, 10, 30), now);
        assert!(p > 0.01, "a quiet feed's silence is ordinary: {p}");
        // Busy until 14:00 on Monday.
        assert!(busy.silence_probability(monday(14, 0), monday(14, 2)) > 0.01, "two minutes is nothing");
        let after = |minutes| busy.silence_probability(monday(14, 0), monday(14, 0) + TimeDelta::minutes(minutes));
        assert!(after(6) < 0.01, "six minutes without one of sixty an hour is: {}", after(6));
        // Silent from Friday 17:00 to Monday 8:59: nothing was expected.
        assert!(busy.silence_probability(china(2025, 1, 3, 17, 0), monday(8, 59)) > 0.99);
        let (_, hour, rate) = busy.peak();
        assert!((9..17).contains(&hour) && (55.0..=60.0).contains(&rate), "{}", busy.describe());
        assert!(busy.describe().contains("每小时约"), "{}", busy.describe());
        // Too little history: no rhythm, the fixed threshold decides.
        assert!(Rhythm::learn(&[(now - TimeDelta::days(2), 500)], None, now).is_none());
        // A sparse feed (a request a week) with months of history has a rhythm: its silences are ordinary.
        let sparse: Vec<_> = (1..=7).map(|w| (monday(10, 0) - TimeDelta::weeks(w), 1)).collect();
        let sparse = Rhythm::learn(&sparse, Some(now - TimeDelta::weeks(30)), now).expect("history");
        assert!(sparse.silence_probability(monday(10, 0) - TimeDelta::days(4), now) > 0.3);
        // A feed silent for the whole window: no rhythm, the fixed threshold decides.
        assert!(Rhythm::learn(&[], Some(now - TimeDelta::weeks(30)), now).is_none());
    }

    #[test]
    fn the_trajectory_runs_from_the_baseline_to_the_target() {
        let rules =
            AlertRules { baseline_month: "2024-05".into(), target_month: "2025-05".into(), ..Default::default() };
        let at = |m: &str| trajectory(&rules, 0.3, m).expect("month");
        assert!((at("2024-05") - 0.3).abs() < 1e-12);
        assert!((at("2024-11") - 0.6).abs() < 1e-12);
        assert!((at("2025-05") - 0.9).abs() < 1e-12);
        assert!((at("2026-01") - 0.9).abs() < 1e-12);
        assert!(trajectory(&rules, 0.3, "2024-13").is_err());
    }
}
