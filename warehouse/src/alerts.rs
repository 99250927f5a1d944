//! The alert rules, evaluated after each warehouse refresh:
//!
//! - `online_rate_below_trajectory`: the online rate of the last complete
//!   month (as of the snapshot) is below the straight line from the baseline
//!   month's rate to the target rate in the target month. The plan sets 90%
//!   but no date, so the target month is a setting.
//! - `seizures_expiring`: active seizures end within the configured number of
//!   days (a court must renew them or they lapse; read from the store, which
//!   is current, not from the snapshot).
//! - `connector_lag`: a connector's data is older than the threshold (the age
//!   of the newest source change its cursor covers), one alert per connector.
//!   Age is counted in office hours on working days of the official calendar
//!   ([`LagClock::Office`], the default): partners are quiet at night, at
//!   weekends and on holidays, and that is no alarm; a feed silent through a
//!   working morning is. A feed that runs round the clock counts every hour
//!   ([`LagClock::Always`], a per-connector setting).
//!
//! [`evaluate`] returns what fires; `store::alerts` keeps the states and
//! what the webhook has been told.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
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
        }
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

/// The lag rule: one observation per connector whose data is older than the
/// threshold, on its clock ([`LagClock`]).
pub async fn connectors_lagging(
    store: &Store,
    rules: &AlertRules,
    now: DateTime<Utc>,
) -> Result<Vec<Observation>, WarehouseError> {
    Ok(store
        .all_connector_states()
        .await?
        .into_iter()
        .filter_map(|s| {
            let clock = rules.connector_clock_by.get(&s.connector).copied().unwrap_or_default();
            let lag = clock.elapsed(&rules.calendar, s.source_watermark?, now);
            let limit = rules.connector_lag_by.get(&s.connector).copied().unwrap_or(rules.connector_lag);
            let limit_hours = limit.num_seconds() as f64 / 3600.0;
            (lag > limit).then(|| {
                let hours = lag.num_seconds() as f64 / 3600.0;
                let counted = match clock {
                    LagClock::Office => "按工作日办公时间计",
                    LagClock::Always => "按全天计",
                };
                Observation {
                    kind: CONNECTOR_LAG.into(),
                    subject: s.connector.clone(),
                    severity: if s.status == "ok" { "warning" } else { "critical" }.into(),
                    summary: format!(
                        "连接器 {} 数据滞后 {:.1} 小时（{counted}，阈值 {:.1} 小时），状态 {}{}",
                        s.connector,
                        hours,
                        limit_hours,
                        s.status,
                        s.last_error.as_deref().map(|e| format!("，最近错误：{e}")).unwrap_or_default()
                    ),
                    value: hours,
                    threshold: limit_hours,
                }
            })
        })
        .collect())
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
