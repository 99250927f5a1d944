//! 差距分析: where the online rate's gap to the 90% target lies, why it moved
//! since last month, and when on its trend it reaches the target
//! (`docs/kpi.md`, "Gap analysis").
//!
//! Everything is computed from [`Kpi::OnlineRate`] answers of one snapshot
//! (by month, and by month and each segment dimension of [`GAP_DIMS`]), so the
//! figures here are the same numbers the pages, the API and the report show.
//!
//! - **Shortfall**: how many more online cases the whole month needed to reach
//!   the target, and per segment how many its own rate is short of it and
//!   whether its offline cases alone could have made up the whole gap.
//! - **Closers**: the fewest segments which, raised to their own best month's
//!   rate (months with at least [`MIN_CASES_FOR_BEST_MONTH`] cases), would have
//!   closed the gap; none when even all of them would not.
//! - **Shift-share**: the month-over-month change of the rate split into a rate
//!   effect and a mix effect by the symmetric (midpoint) decomposition, which
//!   has no interaction term. The parts are apportioned in millionths of a rate
//!   (largest remainder) so that they add up exactly to the change of the
//!   rates as shown (each rounded to six decimals).
//! - **Projection**: a least-squares line through the last
//!   [`PROJECTION_MONTHS`] months' rates, the month it crosses the target, and
//!   an 80% interval from where the prediction band's upper and lower edges
//!   cross it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Months, NaiveDate};
use serde_json::{Value, json};

use super::{Dim, Kpi, KpiRequest, RateRow, TARGET_ONLINE_RATE};
use crate::WarehouseError;
use crate::cache::OpenSnapshot;

/// The segment dimensions the gap is analysed by.
pub const GAP_DIMS: [Dim; 4] = [Dim::BusinessType, Dim::District, Dim::Channel, Dim::ApplicantKind];

/// A month counts as a segment's best only with at least this many cases
/// (a month of three cases all online is no evidence of what it can do).
pub const MIN_CASES_FOR_BEST_MONTH: i64 = 20;

/// Months the projection's line is fitted through (fewer when fewer have cases).
pub const PROJECTION_MONTHS: usize = 12;

/// How far ahead the projection looks, months.
pub const PROJECTION_HORIZON: u32 = 120;

/// Millionths of a rate: the unit of the shift-share parts.
pub const MICRO: i64 = 1_000_000;

/// The first month of history the analysis reads (the plan's year).
pub fn history_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// Online and all cases of a month or segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Cases applied for online.
    pub online: i64,
    /// All cases in scope.
    pub cases: i64,
}

impl Counts {
    /// online / cases; `None` without cases.
    pub fn rate(self) -> Option<f64> {
        (self.cases > 0).then(|| self.online as f64 / self.cases as f64)
    }

    /// The rate in millionths, rounded half up as the KPI's six decimals are.
    pub fn rate_micro(self) -> Option<i64> {
        (self.cases > 0).then(|| {
            let scaled = i128::from(self.online) * i128::from(MICRO) * 2 + i128::from(self.cases);
            i64::try_from(scaled / (2 * i128::from(self.cases))).unwrap_or(i64::MAX)
        })
    }

    /// More online cases needed (of cases that were offline) to be at `target`.
    pub fn shortfall(self, target: f64) -> i64 {
        ((target * self.cases as f64 - self.online as f64 - 1e-9).ceil() as i64).max(0)
    }

    fn add(&mut self, other: Counts) {
        self.online += other.online;
        self.cases += other.cases;
    }
}

impl From<&RateRow> for Counts {
    fn from(row: &RateRow) -> Counts {
        Counts { online: row.numerator, cases: row.denominator }
    }
}

/// The gap analysis of one month.
#[derive(Debug, Clone, PartialEq)]
pub struct GapAnalysis {
    /// The month analysed (its first day).
    pub month: NaiveDate,
    /// The target rate.
    pub target: f64,
    /// The month's counts.
    pub total: Counts,
    /// The previous month's counts.
    pub previous: Counts,
    /// More online cases the month needed to reach the target.
    pub needed: i64,
    /// The analysis per segment dimension, in [`GAP_DIMS`] order.
    pub by: Vec<DimensionGap>,
    /// When the trend reaches the target.
    pub projection: Projection,
}

/// The gap broken down by one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionGap {
    /// The dimension.
    pub dim: Dim,
    /// Its segments, the largest shortfall first.
    pub segments: Vec<SegmentGap>,
    /// The segments which, at their best month's rate, close the gap (fewest
    /// first-largest gains); `None` when even all of them would not.
    pub closers: Option<Vec<Option<String>>>,
    /// The month-over-month change split into rate and mix effects.
    pub shift_share: ShiftShare,
}

/// One segment's part in the gap.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentGap {
    /// The segment's value (`None`: cases without one).
    pub value: Option<String>,
    /// The month's counts.
    pub counts: Counts,
    /// The previous month's counts.
    pub previous: Counts,
    /// Online cases more it needed to be at the target itself.
    pub shortfall: i64,
    /// Whether its offline cases alone could have closed the whole gap.
    pub alone_closes_gap: bool,
    /// Its best month up to this one (`YYYY-MM`) and that month's rate.
    pub best: Option<(String, f64)>,
    /// Online cases more it would have had at its best month's rate.
    pub gain_at_best: i64,
    /// Its rate effect, millionths of the whole's rate.
    pub rate_effect: i64,
    /// Its mix effect, millionths of the whole's rate.
    pub mix_effect: i64,
}

/// The shift-share decomposition of a month-over-month change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftShare {
    /// The change of the rate as shown, millionths: `rate_effect + mix_effect` exactly.
    pub change: i64,
    /// Segments doing better or worse, millionths.
    pub rate_effect: i64,
    /// Segments' shares of the cases changing, millionths.
    pub mix_effect: i64,
}

/// When the trend reaches the target.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    /// The month is at or above the target.
    Reached,
    /// Fewer than three months with cases: no line can be fitted.
    TooFewMonths {
        /// Months with cases.
        months: usize,
    },
    /// The fitted trend.
    Trend {
        /// Months the line is fitted through.
        months: usize,
        /// Slope, rate per month.
        slope: f64,
        /// The first month the line reaches the target (`None`: not within
        /// [`PROJECTION_HORIZON`] months, or the trend is flat or falling).
        expected: Option<NaiveDate>,
        /// The first month the band's upper edge reaches it (the earliest plausible).
        earliest: Option<NaiveDate>,
        /// The first month the band's lower edge reaches it (`None`: not within the horizon).
        latest: Option<NaiveDate>,
    },
}

/// The gap analysis of the online rate for `month` on `snapshot`, from its
/// cached KPI answers. A month without cases in scope is a bad request.
pub async fn online_rate_gap(snapshot: &OpenSnapshot, month: NaiveDate) -> Result<GapAnalysis, WarehouseError> {
    let month = first_of(month);
    if month < history_start() {
        return Err(WarehouseError::BadRequest(format!(
            "month {} is before the plan ({}); choose a later month",
            month.format("%Y-%m"),
            history_start().format("%Y-%m")
        )));
    }
    let (_, end) = month_days(month);
    let request = |by: &[Dim]| KpiRequest::new(history_start(), end, by);
    let months = snapshot.kpi(Kpi::OnlineRate, &request(&[Dim::Month])).await?;
    let mut per_dim = Vec::with_capacity(GAP_DIMS.len());
    for dim in GAP_DIMS {
        per_dim.push((dim, snapshot.kpi(Kpi::OnlineRate, &request(&[dim, Dim::Month])).await?));
    }
    let per_dim: Vec<(Dim, &[RateRow])> = per_dim.iter().map(|(d, r)| (*d, r.rates())).collect();
    analyse(month, TARGET_ONLINE_RATE, months.rates(), &per_dim)
}

/// The analysis of `month` from the online rate by month (`months`) and by
/// each dimension and month (`per_dim`); the pure part of [`online_rate_gap`].
pub fn analyse(
    month: NaiveDate,
    target: f64,
    months: &[RateRow],
    per_dim: &[(Dim, &[RateRow])],
) -> Result<GapAnalysis, WarehouseError> {
    let month = first_of(month);
    let key = month_key(month);
    let previous_key = month_key(month.checked_sub_months(Months::new(1)).unwrap_or(month));
    let series: BTreeMap<String, Counts> =
        months.iter().filter_map(|r| Some((r.dim(Dim::Month)?.to_owned(), Counts::from(r)))).collect();
    let total = series.get(&key).copied().unwrap_or_default();
    if total.cases == 0 {
        return Err(WarehouseError::BadRequest(format!(
            "no cases in scope in {key}: the gap analysis needs a month with cases"
        )));
    }
    let previous = series.get(&previous_key).copied().unwrap_or_default();
    let needed = total.shortfall(target);
    let by = per_dim
        .iter()
        .map(|(dim, rows)| dimension_gap(*dim, rows, &key, &previous_key, total, previous, needed, target))
        .collect();
    Ok(GapAnalysis { month, target, total, previous, needed, by, projection: projection(&series, month, target) })
}

#[allow(clippy::too_many_arguments)]
fn dimension_gap(
    dim: Dim,
    rows: &[RateRow],
    key: &str,
    previous_key: &str,
    total: Counts,
    previous: Counts,
    needed: i64,
    target: f64,
) -> DimensionGap {
    // segment → month → counts, up to the month analysed.
    let mut history: BTreeMap<Option<String>, BTreeMap<String, Counts>> = BTreeMap::new();
    for row in rows {
        let Some(m) = row.dim(Dim::Month) else { continue };
        if m > key {
            continue;
        }
        let segment = row.dim(dim).map(str::to_owned);
        history.entry(segment).or_default().entry(m.to_owned()).or_default().add(Counts::from(row));
    }
    let mut segments: Vec<SegmentGap> = history
        .iter()
        .filter_map(|(value, months)| {
            let counts = months.get(key).copied().unwrap_or_default();
            let before = months.get(previous_key).copied().unwrap_or_default();
            if counts.cases == 0 && before.cases == 0 {
                return None;
            }
            let best = months
                .iter()
                .filter(|(_, c)| c.cases >= MIN_CASES_FOR_BEST_MONTH)
                .filter_map(|(m, c)| Some((m.clone(), c.rate()?)))
                .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(&a.0)));
            let gain_at_best = best.as_ref().map_or(0, |(_, rate)| counts.shortfall(*rate));
            let offline = counts.cases - counts.online;
            Some(SegmentGap {
                value: value.clone(),
                counts,
                previous: before,
                shortfall: counts.shortfall(target),
                alone_closes_gap: needed > 0 && offline >= needed,
                best,
                gain_at_best,
                rate_effect: 0,
                mix_effect: 0,
            })
        })
        .collect();
    let shift_share = shift_share(&mut segments, total, previous);
    segments.sort_by(|a, b| b.shortfall.cmp(&a.shortfall).then_with(|| a.value.cmp(&b.value)));
    let closers = closers(&segments, needed);
    DimensionGap { dim, segments, closers, shift_share }
}

/// The fewest segments whose gains at their best rates reach `needed`.
fn closers(segments: &[SegmentGap], needed: i64) -> Option<Vec<Option<String>>> {
    if needed == 0 {
        return Some(Vec::new());
    }
    let mut by_gain: Vec<&SegmentGap> = segments.iter().filter(|s| s.gain_at_best > 0).collect();
    by_gain.sort_by(|a, b| b.gain_at_best.cmp(&a.gain_at_best).then_with(|| a.value.cmp(&b.value)));
    let mut gained = 0;
    let mut chosen = Vec::new();
    for segment in by_gain {
        if gained >= needed {
            break;
        }
        gained += segment.gain_at_best;
        chosen.push(segment.value.clone());
    }
    (gained >= needed).then_some(chosen)
}

/// Fills each segment's rate and mix effects and returns their sums. The
/// symmetric decomposition of `r1 − r0 = Σ s1·r1 − s0·r0` (s: the segment's
/// share of cases, r: its rate):
/// rate effect `Σ (s0+s1)/2 · (r1−r0)`, mix effect `Σ (r0+r1)/2 · (s1−s0)`.
/// A segment without cases in one of the months takes the other month's rate
/// there, so all of its part is mix.
fn shift_share(segments: &mut [SegmentGap], total: Counts, previous: Counts) -> ShiftShare {
    let (Some(r1), Some(r0)) = (total.rate_micro(), previous.rate_micro()) else {
        return ShiftShare { change: 0, rate_effect: 0, mix_effect: 0 };
    };
    let change = r1 - r0;
    let mut exact = Vec::with_capacity(segments.len() * 2);
    for s in segments.iter() {
        let share = |c: Counts, all: Counts| c.cases as f64 / all.cases as f64;
        let (s0, s1) = (share(s.previous, previous), share(s.counts, total));
        let (q0, q1) = match (s.previous.rate(), s.counts.rate()) {
            (Some(a), Some(b)) => (a, b),
            (Some(a), None) => (a, a),
            (None, Some(b)) => (b, b),
            (None, None) => (0.0, 0.0),
        };
        exact.push((s0 + s1) / 2.0 * (q1 - q0) * MICRO as f64);
        exact.push((q0 + q1) / 2.0 * (s1 - s0) * MICRO as f64);
    }
    let parts = apportion(&exact, change);
    for (s, pair) in segments.iter_mut().zip(parts.chunks(2)) {
        s.rate_effect = pair[0];
        s.mix_effect = pair[1];
    }
    let rate_effect = segments.iter().map(|s| s.rate_effect).sum();
    ShiftShare { change, rate_effect, mix_effect: change - rate_effect }
}

/// Integers near `exact` that add up to `sum` (largest remainder): each is
/// its value's floor or ceiling when `sum` is within one of the values' sum.
pub fn apportion(exact: &[f64], sum: i64) -> Vec<i64> {
    let mut parts: Vec<i64> = exact.iter().map(|x| x.floor() as i64).collect();
    if parts.is_empty() {
        return parts;
    }
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    let mut left = sum - parts.iter().sum::<i64>();
    let mut i = 0;
    while left > 0 {
        parts[order[i % order.len()]] += 1;
        left -= 1;
        i += 1;
    }
    let mut i = order.len();
    while left < 0 {
        i = if i == 0 { order.len() - 1 } else { i - 1 };
        parts[order[i]] -= 1;
        left += 1;
    }
    parts
}

/// The least-squares trend of the monthly rates of `series` (`YYYY-MM` →
/// counts) up to `month` and where it crosses `target`.
pub fn projection(series: &BTreeMap<String, Counts>, month: NaiveDate, target: f64) -> Projection {
    let key = month_key(month);
    if series.get(&key).and_then(|c| c.rate()).is_some_and(|r| r >= target) {
        return Projection::Reached;
    }
    // (months before `month`, rate), the last PROJECTION_MONTHS with cases.
    let mut points: Vec<(f64, f64)> = series
        .iter()
        .filter(|(m, _)| m.as_str() <= key.as_str())
        .filter_map(|(m, c)| Some((months_from(m, month)?, c.rate()?)))
        .collect();
    if points.len() > PROJECTION_MONTHS {
        points.drain(..points.len() - PROJECTION_MONTHS);
    }
    let n = points.len();
    if n < 3 {
        return Projection::TooFewMonths { months: n };
    }
    let nf = n as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let mean_r = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_r)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept = mean_r - slope * mean_t;
    let residual: f64 = points.iter().map(|p| (p.1 - intercept - slope * p.0).powi(2)).sum();
    let sigma = (residual / (nf - 2.0)).sqrt();
    let t = student_t_90(n - 2);
    let band = |x: f64| t * sigma * (1.0 + 1.0 / nf + (x - mean_t).powi(2) / sxx.max(f64::MIN_POSITIVE)).sqrt();
    let first_ahead = |edge: &dyn Fn(f64) -> f64| {
        (1..=PROJECTION_HORIZON)
            .find(|&k| edge(f64::from(k)) >= target - 1e-9)
            .and_then(|k| month.checked_add_months(Months::new(k)))
    };
    let line = |x: f64| intercept + slope * x;
    let expected = if slope > 0.0 { first_ahead(&line) } else { None };
    let earliest = first_ahead(&|x| line(x) + band(x));
    let latest = if slope > 0.0 { first_ahead(&|x| line(x) - band(x)) } else { None };
    Projection::Trend { months: n, slope, expected, earliest, latest }
}

/// The 90th percentile of Student's t with `df` degrees of freedom (an 80%
/// two-sided band).
fn student_t_90(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        3.078, 1.886, 1.638, 1.533, 1.476, 1.440, 1.415, 1.397, 1.383, 1.372, 1.363, 1.356, 1.350, 1.345, 1.341, 1.337,
        1.333, 1.330, 1.328, 1.325, 1.323, 1.321, 1.319, 1.318, 1.316, 1.315, 1.314, 1.313, 1.311, 1.310,
    ];
    TABLE.get(df.saturating_sub(1)).copied().unwrap_or(1.282)
}

/// `YYYY-MM` of `month`, as the month dimension writes it.
pub fn month_key(month: NaiveDate) -> String {
    month.format("%Y-%m").to_string()
}

/// The first day of `day`'s month.
pub fn first_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// The first and last day of `day`'s month.
pub fn month_days(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first = first_of(day);
    let last = first.checked_add_months(Months::new(1)).and_then(|m| m.pred_opt()).unwrap_or(first);
    (first, last)
}

/// Millionths of a rate (the shift-share parts) in percentage points.
pub fn micro_to_pp(micro: i64) -> f64 {
    micro as f64 / 10_000.0
}

/// Months from `key` (`YYYY-MM`) to `month`, negative before it.
fn months_from(key: &str, month: NaiveDate) -> Option<f64> {
    let start = crate::export::first_day_of_month(key)?;
    let months = (start.year() - month.year()) * 12 + start.month() as i32 - month.month() as i32;
    Some(f64::from(months))
}

impl GapAnalysis {
    /// The JSON of `GET /api/kpi/online-rate/gap` (effects in millionths of a
    /// rate and, for reading, in percentage points).
    pub fn to_json(&self) -> Value {
        let counts = |c: Counts| json!({ "numerator": c.online, "denominator": c.cases, "rate": round6(c.rate()) });
        let ymd = |d: Option<NaiveDate>| d.map(month_key);
        let projection = match &self.projection {
            Projection::Reached => json!({ "status": "reached" }),
            Projection::TooFewMonths { months } => json!({ "status": "too_few_months", "months": months }),
            Projection::Trend { months, slope, expected, earliest, latest } => json!({
                "status": "trend",
                "months_fitted": months,
                "slope_pp_per_month": (slope * 100.0 * 1e4).round() / 1e4,
                "expected": ymd(*expected),
                "interval_80": { "earliest": ymd(*earliest), "latest": ymd(*latest) },
            }),
        };
        let dims: Vec<Value> = self
            .by
            .iter()
            .map(|d| {
                let segments: Vec<Value> = d
                    .segments
                    .iter()
                    .map(|s| {
                        json!({
                            "value": s.value,
                            "current": counts(s.counts),
                            "previous": counts(s.previous),
                            "shortfall": s.shortfall,
                            "alone_closes_gap": s.alone_closes_gap,
                            "best_month": s.best.as_ref().map(|b| &b.0),
                            "best_rate": s.best.as_ref().map(|b| round6(Some(b.1))),
                            "gain_at_best": s.gain_at_best,
                            "rate_effect_micro": s.rate_effect,
                            "mix_effect_micro": s.mix_effect,
                        })
                    })
                    .collect();
                json!({
                    "dimension": d.dim.name(),
                    "closers": d.closers,
                    "shift_share": {
                        "change_micro": d.shift_share.change,
                        "rate_effect_micro": d.shift_share.rate_effect,
                        "mix_effect_micro": d.shift_share.mix_effect,
                        "change_pp": micro_to_pp(d.shift_share.change),
                        "rate_effect_pp": micro_to_pp(d.shift_share.rate_effect),
                        "mix_effect_pp": micro_to_pp(d.shift_share.mix_effect),
                    },
                    "segments": segments,
                })
            })
            .collect();
        json!({
            "kpi": Kpi::OnlineRate.name(),
            "definition": { "id": Kpi::OnlineRate.definition().id, "version": Kpi::OnlineRate.definition().version },
            "month": month_key(self.month),
            "target": self.target,
            "current": counts(self.total),
            "previous": counts(self.previous),
            "needed": self.needed,
            "by": dims,
            "projection": projection,
        })
    }

    /// The segments of `dim`.
    pub fn dimension(&self, dim: Dim) -> Option<&DimensionGap> {
        self.by.iter().find(|d| d.dim == dim)
    }
}

fn round6(rate: Option<f64>) -> Option<f64> {
    rate.map(|r| (r * 1e6).round() / 1e6)
}

/// The segments any of `analysis`'s dimensions name as closers.
pub fn closer_values(analysis: &GapAnalysis) -> BTreeSet<(Dim, Option<String>)> {
    analysis.by.iter().flat_map(|d| d.closers.iter().flatten().map(move |v| (d.dim, v.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::Extra;
    use proptest::prelude::*;

    fn row(dims: &[(Dim, &str)], online: i64, cases: i64) -> RateRow {
        RateRow {
            dims: dims.iter().map(|(d, v)| (*d, Some((*v).to_owned()))).collect(),
            numerator: online,
            denominator: cases,
            rate: Counts { online, cases }.rate(),
            extra: Extra::None,
        }
    }

    /// Monthly totals and a per-district breakdown from (month, district, online, cases).
    fn data(cells: &[(&str, &str, i64, i64)]) -> (Vec<RateRow>, Vec<RateRow>) {
        let mut months: BTreeMap<&str, Counts> = BTreeMap::new();
        for (m, _, online, cases) in cells {
            months.entry(m).or_default().add(Counts { online: *online, cases: *cases });
        }
        let totals = months.iter().map(|(m, c)| row(&[(Dim::Month, m)], c.online, c.cases)).collect();
        let by = cells.iter().map(|(m, d, o, c)| row(&[(Dim::District, d), (Dim::Month, m)], *o, *c)).collect();
        (totals, by)
    }

    fn may() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 5, 1).unwrap_or_default()
    }

    #[test]
    fn a_known_month_gives_known_shortfalls_closers_and_effects() {
        let (totals, by) = data(&[
            ("2025-03", "A", 90, 100),
            ("2025-03", "B", 40, 100),
            ("2025-04", "A", 80, 100),
            ("2025-04", "B", 50, 100),
            ("2025-05", "A", 160, 200),
            ("2025-05", "B", 60, 100),
        ]);
        let gap = analyse(may(), 0.9, &totals, &[(Dim::District, &by)]).expect("analysis");
        // 220 of 300 online; 90% is 270: 50 more needed.
        assert_eq!((gap.total, gap.needed), (Counts { online: 220, cases: 300 }, 50));
        let district = gap.dimension(Dim::District).expect("district");
        let (b, a) = (&district.segments[0], &district.segments[1]);
        // B needs 30 to reach 90% itself, A 20; B's 40 offline cases alone could close 50? No.
        assert_eq!((b.value.as_deref(), b.shortfall, b.alone_closes_gap), (Some("B"), 30, false));
        assert_eq!((a.value.as_deref(), a.shortfall, a.alone_closes_gap), (Some("A"), 20, false));
        // A's best month is March (90%): +20; B's is May itself (60%): +0. 20 < 50: no closers.
        assert_eq!(a.best, Some(("2025-03".to_owned(), 0.9)));
        assert_eq!((a.gain_at_best, b.gain_at_best), (20, 0));
        assert_eq!(district.closers, None);
        // April 65.0000%, May 73.3333%: +83333 millionths, all of it accounted for.
        let s = district.shift_share;
        assert_eq!(s.change, 733_333 - 650_000);
        assert_eq!(s.rate_effect + s.mix_effect, s.change);
        // Rate effect: A (0.5+2/3)/2·0 + B (0.5+1/3)/2·(0.6−0.5) = 0.041667; mix the rest.
        assert_eq!(s.rate_effect, 41_667);
        assert_eq!(s.mix_effect, 41_666);
    }

    #[test]
    fn a_month_without_cases_is_refused() {
        let (totals, by) = data(&[("2025-04", "A", 1, 2)]);
        let err = analyse(may(), 0.9, &totals, &[(Dim::District, &by)]).expect_err("no cases in May");
        assert!(err.to_string().contains("no cases in scope in 2025-05"), "{err}");
    }

    #[test]
    fn a_rising_trend_is_projected_with_an_interval() {
        let cells: Vec<(String, i64)> = (1..=12).map(|m| (format!("2024-{m:02}"), 600 + 20 * m)).collect();
        let rows: Vec<RateRow> = cells.iter().map(|(m, o)| row(&[(Dim::Month, m)], *o, 1000)).collect();
        let december = NaiveDate::from_ymd_opt(2024, 12, 1).unwrap_or_default();
        let gap = analyse(december, 0.9, &rows, &[]).expect("analysis");
        // 84% in December, +2 points a month exactly: 90% in March 2025, a band of zero width.
        let Projection::Trend { slope, expected, earliest, latest, months } = gap.projection else {
            panic!("expected a trend: {:?}", gap.projection)
        };
        assert_eq!(months, 12);
        assert!((slope - 0.02).abs() < 1e-12, "{slope}");
        let march = NaiveDate::from_ymd_opt(2025, 3, 1);
        assert_eq!((expected, earliest, latest), (march, march, march));
    }

    #[test]
    fn apportioned_parts_sum_to_the_target_and_stay_near_their_values() {
        assert_eq!(apportion(&[0.5, 0.5, 0.0], 1), vec![1, 0, 0]);
        assert_eq!(apportion(&[1.2, -0.2], 0), vec![1, -1]);
        assert_eq!(apportion(&[1.2, -0.2], 2), vec![2, 0]);
    }

    proptest! {
        /// Over random segment data the shift-share parts add up exactly to
        /// the change of the rates as shown, each segment's parts stay within
        /// one millionth of their exact value, and the exact parts add up to
        /// the exact change.
        #[test]
        fn shift_share_parts_add_up_to_the_change(
            cells in proptest::collection::vec((0usize..6, 0i64..5_000, 0i64..5_000, 0i64..5_000, 0i64..5_000), 1..12)
        ) {
            let names = ["A", "B", "C", "D", "E", "F"];
            let mut merged: BTreeMap<usize, (i64, i64, i64, i64)> = BTreeMap::new();
            for (s, o0, c0, o1, c1) in cells {
                let e = merged.entry(s).or_default();
                *e = (e.0 + o0.min(c0), e.1 + c0, e.2 + o1.min(c1), e.3 + c1);
            }
            let mut flat = Vec::new();
            for (s, (o0, c0, o1, c1)) in &merged {
                if *c0 > 0 { flat.push(("2025-04", names[*s], *o0, *c0)); }
                if *c1 > 0 { flat.push(("2025-05", names[*s], *o1, *c1)); }
            }
            let (totals, by) = data(&flat);
            match analyse(may(), 0.9, &totals, &[(Dim::District, &by)]) {
                Err(_) => prop_assert!(merged.values().all(|v| v.3 == 0)),
                Ok(gap) => {
                    let d = gap.dimension(Dim::District).expect("district");
                    let s = d.shift_share;
                    prop_assert_eq!(s.rate_effect + s.mix_effect, s.change);
                    let parts: i64 = d.segments.iter().map(|g| g.rate_effect + g.mix_effect).sum();
                    prop_assert_eq!(parts, s.change);
                    if gap.previous.cases > 0 {
                        let exact = (gap.total.rate().unwrap_or(0.0) - gap.previous.rate().unwrap_or(0.0)) * 1e6;
                        prop_assert!((exact - s.change as f64).abs() <= 1.0, "{} vs {}", exact, s.change);
                    }
                    let needed = gap.needed;
                    prop_assert!(gap.total.online + needed >= (0.9 * gap.total.cases as f64 - 1e-6).ceil() as i64);
                    // Against an independent computation from the raw counts: each shown part within one
                    // millionth of its exact value, and the exact parts adding up to the exact change.
                    let (all0, all1): (i64, i64) = merged.values().fold((0, 0), |(a, b), v| (a + v.1, b + v.3));
                    let (on0, on1): (i64, i64) = merged.values().fold((0, 0), |(a, b), v| (a + v.0, b + v.2));
                    if all0 > 0 && all1 > 0 {
                        let exact_change = (on1 as f64 / all1 as f64 - on0 as f64 / all0 as f64) * 1e6;
                        let mut exact_sum = 0.0;
                        for (segment, (o0, c0, o1, c1)) in &merged {
                            let (s0, s1) = (*c0 as f64 / all0 as f64, *c1 as f64 / all1 as f64);
                            let rate = |o: i64, c: i64| (c > 0).then(|| o as f64 / c as f64);
                            let (q0, q1) = match (rate(*o0, *c0), rate(*o1, *c1)) {
                                (Some(a), Some(b)) => (a, b),
                                (Some(a), None) => (a, a),
                                (None, Some(b)) => (b, b),
                                (None, None) => continue,
                            };
                            let rate_part = (s0 + s1) / 2.0 * (q1 - q0) * 1e6;
                            let mix_part = (q0 + q1) / 2.0 * (s1 - s0) * 1e6;
                            exact_sum += rate_part + mix_part;
                            let shown = d.segments.iter().find(|g| g.value.as_deref() == Some(names[*segment])).expect("the segment");
                            prop_assert!((shown.rate_effect as f64 - rate_part).abs() <= 1.0 + 1e-6,
                                "{}: rate effect {} vs exact {}", names[*segment], shown.rate_effect, rate_part);
                            prop_assert!((shown.mix_effect as f64 - mix_part).abs() <= 1.0 + 1e-6,
                                "{}: mix effect {} vs exact {}", names[*segment], shown.mix_effect, mix_part);
                        }
                        prop_assert!((exact_sum - exact_change).abs() <= 1e-6 * exact_change.abs().max(1.0),
                            "exact parts {} vs exact change {}", exact_sum, exact_change);
                    }
                }
            }
        }
    }
}
