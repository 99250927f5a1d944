//! The SQL of each [`Kpi`] over a snapshot, and [`run`], which answers a
//! query with typed rows. Dimensions are [`Dim`]s, each with a fixed column
//! expression, never pasted from input; filter values are checked plain codes.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::execution::context::SessionContext;
use domain::time::local_day_end;
use serde_json::{Map, Value};

use super::rows::{Rows, rate_rows, value_rows};
use super::{Dim, Kpi, KpiQuery, KpiResult, validate};
use crate::WarehouseError;
use crate::export::DURATION_COUNTS;
use crate::session::ROLLUP_TABLE;

/// The steps of the `durations` KPI: (label, start column, end column) on `cases`.
pub const DURATION_STEPS: [(&str, &str, &str); 5] = [
    ("1 submitted_to_accepted", "submitted_at", "accepted_at"),
    ("2 accepted_to_verified", "accepted_at", "verified_at"),
    ("3 verified_to_recorded", "verified_at", "recorded_at"),
    ("4 recorded_to_issued", "recorded_at", "issued_at"),
    ("5 issued_to_archived", "issued_at", "archived_at"),
];

/// The SQL of the KPIs that report values (`scale` 0). With `durations_rollup`
/// (the session has `duration_counts`, no breakdown by week, and no case in
/// the period's whole months ended after `as_of`), the durations of whole
/// months are read from the rollup's exact counts.
fn value_sql(kpi: Kpi, query: &KpiQuery, durations_rollup: bool) -> Result<String, WarehouseError> {
    validate(kpi, query)?;
    let as_of = utc_literal(query.as_of);
    match kpi {
        Kpi::Durations => {
            let dims: Vec<String> = query
                .by
                .iter()
                .enumerate()
                .map(|(i, d)| format!("CAST({} AS VARCHAR) AS d{i}", dim_expr(*d)))
                .collect();
            let dims_select = dims.iter().map(|d| format!(", {d}")).collect::<String>();
            let group: String = (0..query.by.len()).map(|i| format!(", d{i}")).collect();
            let scope = format!("c.in_scope AND c.phase_live AND {}", period(query));
            let parts: Vec<String> = DURATION_STEPS
                .iter()
                .map(|(step, from, to)| {
                    format!(
                        "SELECT '{step}' AS step{dims_select}, CAST(c.{to} AS BIGINT) - CAST(c.{from} AS BIGINT) AS us \
                         FROM cases c WHERE {scope} AND c.{from} IS NOT NULL AND c.{to} IS NOT NULL AND c.{to} <= {as_of}"
                    )
                })
                .collect();
            // The same counts, whole months from the rollup (each row a
            // distinct duration with its count `k`), the ends from `cases`.
            let counted = if durations_rollup {
                let mut pieces = Vec::new();
                for (_, filter, form) in period_pieces(query) {
                    if form == 1 {
                        pieces.push(format!(
                            "SELECT c.step AS step{dims_select}, c.us, c.k FROM {DURATION_COUNTS} c WHERE {filter}"
                        ));
                        continue;
                    }
                    for (step, from, to) in DURATION_STEPS {
                        pieces.push(format!(
                            "SELECT '{step}' AS step{dims_select}, CAST(c.{to} AS BIGINT) - CAST(c.{from} AS BIGINT) AS us, \
                             CAST(1 AS BIGINT) AS k FROM cases c WHERE c.in_scope AND c.phase_live AND {filter} \
                             AND c.{from} IS NOT NULL AND c.{to} IS NOT NULL AND c.{to} <= {as_of}"
                        ));
                    }
                }
                format!(
                    "SELECT step{group}, us, CAST(SUM(k) AS BIGINT) AS k FROM ({}) GROUP BY step{group}, us",
                    pieces.join(" UNION ALL ")
                )
            } else {
                format!(
                    "SELECT step{group}, us, COUNT(*) AS k FROM ({}) GROUP BY step{group}, us",
                    parts.join(" UNION ALL ")
                )
            };
            // Exact quantiles without holding every duration: the durations are
            // counted per distinct value (microseconds; a year of 10 million
            // cases has about 120,000), the running count over the values
            // finds the value at each rank, and the median and p90 are
            // interpolated as DataFusion's `median` and `percentile_cont(0.9)`
            // do (the test `durations_equal_datafusions_median_and_percentile`
            // holds them equal). Holding every duration took 2.7 GiB for a
            // breakdown by type at 10 million cases.
            let hours = |us: &str| format!("{us} / 3600000000.0");
            let at = |rank: &str| format!("MIN(CASE WHEN upto > {rank} THEN us END)");
            let p90_low = "CAST(floor(0.9 * CAST(n - 1 AS DOUBLE)) AS BIGINT)";
            Ok(format!(
                "WITH counted AS ({counted}), \
                 running AS (SELECT step{group}, us, \
                   SUM(k) OVER (PARTITION BY step{group} ORDER BY us ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS upto, \
                   SUM(k) OVER (PARTITION BY step{group}) AS n FROM counted), \
                 picked AS (SELECT step{group}, n, 0.9 * CAST(n - 1 AS DOUBLE) AS p90_index, {p90_low} AS p90_low, \
                   {below_middle} AS below_middle, {middle} AS middle, \
                   {p90_low_value} AS p90_low_value, {p90_high_value} AS p90_high_value \
                   FROM running GROUP BY step{group}, n) \
                 SELECT step{group}, n AS cases, \
                   ROUND(CASE WHEN n % 2 = 1 THEN {middle_hours} ELSE ({below_middle_hours} + {middle_hours}) / 2 END, 3) AS median_hours, \
                   ROUND(CASE WHEN p90_index = CAST(p90_low AS DOUBLE) THEN {p90_low_hours} \
                     ELSE {p90_low_hours} + ({p90_high_hours} - {p90_low_hours}) \
                       * (floor((p90_index - CAST(p90_low AS DOUBLE)) * 1000000.0) / 1000000.0) END, 3) AS p90_hours \
                 FROM picked ORDER BY step{group}",
                below_middle = at("n / 2 - 1"),
                middle = at("n / 2"),
                p90_low_value = at(p90_low),
                p90_high_value = at(&format!("{p90_low} + 1")),
                middle_hours = hours("middle"),
                below_middle_hours = hours("below_middle"),
                p90_low_hours = hours("p90_low_value"),
                p90_high_hours = hours("p90_high_value"),
            ))
        }
        Kpi::Seizures => {
            let from = local_day_end(query.from.pred_opt().unwrap_or(query.from));
            let to = local_day_end(query.to);
            let as_of_day = domain::time::local_date(query.as_of);
            let soon = as_of_day + chrono::Days::new(30);
            let count = |condition: &str| format!("CAST(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END) AS BIGINT)");
            Ok(format!(
                "SELECT COUNT(*) AS received, {} AS active, {} AS queued, {} AS released, {} AS lapsed, \
                 {} AS expiring_within_30_days, \
                 ROUND(median((CAST(recorded_at AS BIGINT) - CAST(served_at AS BIGINT)) / 3600000000.0), 3) AS median_hours_to_record \
                 FROM seizures WHERE served_at >= {} AND served_at < {}",
                count("state = 'active'"),
                count("state = 'queued'"),
                count("state = 'released'"),
                count("state = 'lapsed'"),
                count(&format!("state = 'active' AND end_date >= DATE '{as_of_day}' AND end_date <= DATE '{soon}'")),
                utc_literal(from),
                utc_literal(to),
            ))
        }
        Kpi::Anomalies => Ok(format!(
            "SELECT kind, partner, COUNT(*) AS count FROM anomalies WHERE detected_at <= {as_of} \
             GROUP BY kind, partner ORDER BY kind, partner"
        )),
        other => Err(WarehouseError::BadRequest(format!("{other} is a rate, not a value KPI"))),
    }
}

fn utc_literal(t: DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

/// Which kind of table a query reads as `c`: `cases` and the rollups of its
/// rows (`case_counts`, `open_due`), or a child table and its rollup
/// (`evaluations`, `qc_findings`, `evaluation_counts`, `qc_counts`), whose
/// rows carry their case's dimensions under the same names except the
/// case's channel, `case_channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    Cases,
    Child,
}

/// The column a dimension is read from, on `cases` or on `c` of a query on `on`.
fn dim_expr(dim: Dim) -> &'static str {
    dim_on(dim, On::Cases)
}

/// The column a dimension is read from in a table of kind `on`, aliased `c`.
fn dim_on(dim: Dim, on: On) -> &'static str {
    match (dim, on) {
        (Dim::BusinessType, _) => "c.business_type",
        (Dim::Phase, _) => "c.phase",
        (Dim::Channel, On::Cases) => "c.channel",
        (Dim::Channel, On::Child) => "c.case_channel",
        (Dim::District, _) => "c.district",
        (Dim::ApplicantKind, _) => "c.applicant_kind",
        (Dim::Month, _) => "c.month",
        (Dim::Week, _) => "c.week",
        (Dim::Category, _) => "c.category",
        (Dim::Severity, _) => "c.severity",
        (Dim::Section, _) => "c.section",
        (Dim::EvaluationChannel, _) => "c.channel",
    }
}

/// The period filter on cases `c`, with the month partition for pruning,
/// and the query's dimension filters (checked by [`validate`]).
fn period(query: &KpiQuery) -> String {
    period_between(query.from, query.to, &query.filters, On::Cases)
}

/// [`period`] for the days `from..=to`, on a table of kind `on`.
fn period_between(from: NaiveDate, to: NaiveDate, filters: &[(Dim, String)], on: On) -> String {
    let start = local_day_end(from.pred_opt().unwrap_or(from));
    let end = local_day_end(to);
    let months = months_between(from, to);
    // `month` is the China-time month of submission (the partition), so a period of
    // whole months is exactly those partitions: the timestamp comparisons would
    // only cost time (a third of a 10-million-case scan).
    let whole_months = from.day() == 1 && to.succ_opt().is_none_or(|next| next.day() == 1);
    if whole_months {
        format!("{months}{}", dimension_filters(filters, on))
    } else {
        format!(
            "c.submitted_at >= {} AND c.submitted_at < {} AND {months}{}",
            utc_literal(start),
            utc_literal(end),
            dimension_filters(filters, on)
        )
    }
}

/// The months of `from..=to` as a filter on the `month` partition of `c`.
fn months_between(from: NaiveDate, to: NaiveDate) -> String {
    format!("c.month >= '{}' AND c.month <= '{}'", from.format("%Y-%m"), to.format("%Y-%m"))
}

/// The query's dimension filters (checked by [`validate`]) on `c`, a table of kind `on`.
fn dimension_filters(filters: &[(Dim, String)], on: On) -> String {
    filters
        .iter()
        .map(|(dim, value)| format!(" AND CAST({} AS VARCHAR) = '{}'", dim_on(*dim, on), value.replace('\'', "''")))
        .collect()
}

/// A period cut for the rollup: the whole months inside it (answered from
/// `case_counts`) and the days of the partial months at its ends (from `cases`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SplitPeriod {
    /// First and last day of the whole months, if any.
    whole: Option<(NaiveDate, NaiveDate)>,
    /// Day ranges outside whole months.
    partial: Vec<(NaiveDate, NaiveDate)>,
}

fn split_period(from: NaiveDate, to: NaiveDate) -> SplitPeriod {
    let first_of = |d: NaiveDate| d.with_day(1).unwrap_or(d);
    let whole_from = if from.day() == 1 {
        from
    } else {
        first_of(from).checked_add_months(chrono::Months::new(1)).unwrap_or(NaiveDate::MAX)
    };
    let whole_to = if to.succ_opt().is_none_or(|next| next.day() == 1) {
        to
    } else {
        first_of(to).pred_opt().unwrap_or(NaiveDate::MIN)
    };
    if whole_from > whole_to {
        return SplitPeriod { whole: None, partial: vec![(from, to)] };
    }
    let mut partial = Vec::new();
    if from < whole_from {
        partial.push((from, whole_from.pred_opt().unwrap_or(whole_from)));
    }
    if to > whole_to {
        partial.push((whole_to.succ_opt().unwrap_or(whole_to), to));
    }
    SplitPeriod { whole: Some((whole_from, whole_to)), partial }
}

/// A KPI that is a count of cases: what its numerator counts, what it adds to
/// the scope, and what its excluded count counts, written once for `cases` and
/// once for the `case_counts` rollup (the same columns, but `recorded` and
/// `correction_free` in place of the tests on `recorded_at` and `correction_count`).
struct Counted {
    numerator: [&'static str; 2],
    filter: [&'static str; 2],
    excluded: [&'static str; 2],
}

/// The count KPIs, the ones the rollup can answer.
fn counted(kpi: Kpi) -> Option<Counted> {
    let out_of_scope = "NOT (c.in_scope AND c.phase_live)";
    match kpi {
        Kpi::OnlineRate => Some(Counted { numerator: ["c.online"; 2], filter: [""; 2], excluded: [out_of_scope; 2] }),
        Kpi::EndToEndRate => {
            Some(Counted { numerator: ["c.end_to_end"; 2], filter: [""; 2], excluded: [out_of_scope; 2] })
        }
        // A case whose correction count the registry sent malformed is
        // neither right nor wrong the first time: left out, and counted as such.
        Kpi::FirstTimeRight => Some(Counted {
            numerator: ["c.correction_count = 0", "c.correction_free"],
            filter: [
                " AND c.recorded_at IS NOT NULL AND c.correction_count IS NOT NULL",
                " AND c.recorded AND c.correction_free IS NOT NULL",
            ],
            excluded: [
                "NOT (c.in_scope AND c.phase_live) OR c.recorded_at IS NULL OR c.correction_count IS NULL",
                "NOT (c.in_scope AND c.phase_live) OR NOT c.recorded OR c.correction_free IS NULL",
            ],
        }),
        Kpi::ECertificateRate => Some(Counted {
            numerator: ["c.delivery = 1"; 2],
            filter: [" AND c.issues_certificate AND c.delivery IS NOT NULL"; 2],
            excluded: ["NOT (c.in_scope AND c.phase_live) OR NOT c.issues_certificate OR c.delivery IS NULL"; 2],
        }),
        _ => None,
    }
}

/// `CAST(SUM(CASE WHEN condition THEN weight ELSE 0 END) AS BIGINT)`.
fn count_when(condition: &str, weight: &str) -> String {
    format!("CAST(SUM(CASE WHEN {condition} THEN {weight} ELSE 0 END) AS BIGINT)")
}

/// The period cut for the rollup ([`split_period`]), as `(table, filter on c,
/// form)`: the whole months on `case_counts` (form 1 of a [`Counted`]), the
/// partial months on `cases` (form 0); each with the query's dimension filters.
fn period_pieces(query: &KpiQuery) -> Vec<(&'static str, String, usize)> {
    pieces_on(query, ROLLUP_TABLE, "cases", On::Cases)
}

/// [`period_pieces`] for any pair of a rollup and the table it counts, of kind `on`.
fn pieces_on(
    query: &KpiQuery,
    rollup: &'static str,
    table: &'static str,
    on: On,
) -> Vec<(&'static str, String, usize)> {
    let split = split_period(query.from, query.to);
    let whole = split.whole.map(|(from, to)| {
        (rollup, format!("{}{}", months_between(from, to), dimension_filters(&query.filters, on)), 1)
    });
    let partial = split.partial.into_iter().map(|(from, to)| (table, period_between(from, to, &query.filters, on), 0));
    whole.into_iter().chain(partial).collect()
}

/// How many cases the rows of a form count: one each in `cases`, `c.cases` in the rollup.
fn case_total(form: usize) -> &'static str {
    if form == 1 { "CAST(SUM(c.cases) AS BIGINT)" } else { "COUNT(*)" }
}

/// A count KPI answered from the rollup for the period's whole months and
/// from `cases` for the partial months at its ends, summed per dimension.
fn counted_sql(counted: &Counted, query: &KpiQuery, select_dims: &str, group: &[String]) -> String {
    let inner_group = if group.is_empty() { String::new() } else { format!(" GROUP BY {}", group.join(", ")) };
    let parts: Vec<String> = period_pieces(query)
        .into_iter()
        .map(|(table, filter, form)| {
            let weight = if form == 1 { "c.cases" } else { "1" };
            format!(
                "SELECT {select_dims}{} AS numerator, {} AS denominator \
                 FROM {table} c WHERE c.in_scope AND c.phase_live AND {filter}{}{inner_group}",
                count_when(counted.numerator[form], weight),
                case_total(form),
                counted.filter[form],
            )
        })
        .collect();
    let outer_dims: String = group.iter().map(|d| format!("{d}, ")).collect();
    let outer_group =
        if group.is_empty() { String::new() } else { format!(" GROUP BY {0} ORDER BY {0}", group.join(", ")) };
    format!(
        "SELECT {outer_dims}CAST(SUM(numerator) AS BIGINT) AS numerator, CAST(SUM(denominator) AS BIGINT) AS denominator \
         FROM ({}){outer_group}",
        parts.join(" UNION ALL ")
    )
}

/// The SQL of a KPI: dimensions as `d0, d1 …`, then `numerator`, `denominator`.
/// With `rollups` (the session has every table of [`ROLLUP_TABLES`]), every
/// rate reads the period's whole months from its rollup and the partial
/// months at its ends from the table the rollup counts ([`split_period`]).
pub fn kpi_sql(kpi: Kpi, query: &KpiQuery, rollups: bool) -> Result<String, WarehouseError> {
    validate(kpi, query)?;
    let dims: Vec<String> =
        query.by.iter().enumerate().map(|(i, d)| format!("CAST({} AS VARCHAR) AS d{i}", dim_expr(*d))).collect();
    let group: Vec<String> = (0..query.by.len()).map(|i| format!("d{i}")).collect();
    let select_dims = if dims.is_empty() { String::new() } else { format!("{}, ", dims.join(", ")) };
    let group_by = if group.is_empty() { String::new() } else { format!(" GROUP BY {}", group.join(", ")) };
    let order_by = if group.is_empty() { String::new() } else { format!(" ORDER BY {}", group.join(", ")) };
    let in_scope = format!("c.in_scope AND c.phase_live AND {}", period(query));
    let count = |condition: &str| count_when(condition, "1");
    if let Some(counted) = counted(kpi) {
        // The rollup has no weeks.
        if rollups && !query.by.contains(&Dim::Week) {
            return Ok(counted_sql(&counted, query, &select_dims, &group));
        }
        return Ok(format!(
            "SELECT {select_dims}{} AS numerator, COUNT(*) AS denominator FROM cases c WHERE {in_scope}{}{group_by}{order_by}",
            count(counted.numerator[0]),
            counted.filter[0],
        ));
    }
    // The rollups have no weeks.
    let rollups = rollups && !query.by.contains(&Dim::Week);
    match kpi {
        Kpi::OnTimeRate => Ok(on_time_sql(query, rollups)),
        Kpi::QcErrors => Ok(qc_sql(query, rollups)),
        Kpi::Satisfaction => Ok(satisfaction_sql(query, rollups)),
        other => Err(WarehouseError::BadRequest(format!("{other} is a value KPI, not a rate"))),
    }
}

/// The rollup tables every rate KPI reads when the session has them all.
pub const ROLLUP_TABLES: [&str; 4] = [ROLLUP_TABLE, "open_due", "evaluation_counts", "qc_counts"];

/// The query's breakdown on a table of kind `on`, aliased `c`: the select
/// list (`CAST(… AS VARCHAR) AS d0, `) and the inner `GROUP BY`. With
/// `case_only`, only the case dimensions (keeping their `d{i}` names).
fn dims_on(query: &KpiQuery, on: On, case_only: bool) -> (String, Vec<String>) {
    let mut select = String::new();
    let mut group = Vec::new();
    for (i, dim) in query.by.iter().enumerate() {
        if case_only && !dim.is_case_dim() {
            continue;
        }
        select.push_str(&format!("CAST({} AS VARCHAR) AS d{i}, ", dim_on(*dim, on)));
        group.push(format!("d{i}"));
    }
    (select, group)
}

/// ` GROUP BY d0, d1` (empty without a breakdown).
fn group_by(group: &[String]) -> String {
    if group.is_empty() { String::new() } else { format!(" GROUP BY {}", group.join(", ")) }
}

/// ` ORDER BY d0, d1` (empty without a breakdown).
fn order_by(group: &[String]) -> String {
    if group.is_empty() { String::new() } else { format!(" ORDER BY {}", group.join(", ")) }
}

/// The SQL of each piece of a period cut ([`pieces_on`]): `raw(filter)` for
/// the partial months (form 0), `rolled(table, filter)` (one statement or
/// more) for the whole months read from a rollup.
fn per_piece(
    pieces: Vec<(&'static str, String, usize)>,
    raw: impl Fn(&str) -> String,
    rolled: impl Fn(&str, &str) -> Vec<String>,
) -> Vec<String> {
    pieces
        .into_iter()
        .flat_map(|(table, filter, form)| if form == 0 { vec![raw(&filter)] } else { rolled(table, &filter) })
        .collect()
}

/// The pieces of a KPI (each with the columns `group` and `measures`) summed
/// per breakdown: `SELECT d0, CAST(SUM(m) AS BIGINT) AS m … FROM (pieces) GROUP BY d0`,
/// ordered by the breakdown when `ordered`.
fn summed(pieces: &[String], group: &[String], measures: &[&str], ordered: bool) -> String {
    let dims: String = group.iter().map(|d| format!("{d}, ")).collect();
    let sums: Vec<String> = measures.iter().map(|m| format!("CAST(SUM({m}) AS BIGINT) AS {m}")).collect();
    let order = if ordered { order_by(group) } else { String::new() };
    format!("SELECT {dims}{} FROM ({}){}{order}", sums.join(", "), pieces.join(" UNION ALL "), group_by(group))
}

/// On-time rate: the period's whole months from `case_counts` (accepted cases
/// with an outcome) and `open_due` (open cases already past their deadline
/// on the query's day), the partial months at its ends from `cases`.
fn on_time_sql(query: &KpiQuery, rollups: bool) -> String {
    let as_of = utc_literal(query.as_of);
    let (select, group) = dims_on(query, On::Cases, false);
    let inner_group = group_by(&group);
    let raw = |filter: &str| {
        format!(
            "SELECT {select}{} AS numerator, {} AS denominator FROM cases c \
             WHERE c.in_scope AND c.phase_live AND {filter} AND c.accepted_at IS NOT NULL{inner_group}",
            count_when("c.on_time", "1"),
            count_when(&format!("c.on_time IS NOT NULL OR (c.recorded_at IS NULL AND c.due_at < {as_of})"), "1"),
        )
    };
    if !rollups {
        return format!("{}{}", raw(&period(query)), order_by(&group));
    }
    let pieces = per_piece(period_pieces(query), raw, |table, filter| {
        vec![
            format!(
                "SELECT {select}{} AS numerator, {} AS denominator FROM {table} c \
                 WHERE c.in_scope AND c.phase_live AND c.accepted AND {filter}{inner_group}",
                count_when("c.on_time", "c.cases"),
                count_when("c.on_time IS NOT NULL", "c.cases"),
            ),
            format!(
                "SELECT {select}CAST(0 AS BIGINT) AS numerator, CAST(SUM(c.cases) AS BIGINT) AS denominator \
                 FROM open_due c WHERE c.due_at < {as_of} AND {filter}{inner_group}"
            ),
        ]
    });
    summed(&pieces, &group, &["numerator", "denominator"], true)
}

/// Satisfaction: good evaluations among all, with bad ones and those
/// rectified in time, by the evaluated case's dimensions; whole months from
/// `evaluation_counts`, partial ones from `evaluations` (whose rows carry
/// their case's dimensions: no join).
fn satisfaction_sql(query: &KpiQuery, rollups: bool) -> String {
    let (select, group) = dims_on(query, On::Child, false);
    let inner_group = group_by(&group);
    let measures = ["numerator", "denominator", "bad", "bad_rectified_in_15_working_days"];
    let raw = |filter: &str| {
        format!(
            "SELECT {select}{} AS numerator, COUNT(*) AS denominator, {} AS bad, {} AS bad_rectified_in_15_working_days \
             FROM evaluations c WHERE c.in_scope AND {filter}{inner_group}",
            count_when("c.good", "1"),
            count_when("c.bad", "1"),
            count_when("c.rectified_within_15", "1"),
        )
    };
    if !rollups {
        return format!(
            "{}{}",
            raw(&period_between(query.from, query.to, &query.filters, On::Child)),
            order_by(&group)
        );
    }
    let pieces = per_piece(pieces_on(query, "evaluation_counts", "evaluations", On::Child), raw, |table, filter| {
        vec![format!(
            "SELECT {select}CAST(SUM(c.good) AS BIGINT) AS numerator, CAST(SUM(c.evaluations) AS BIGINT) AS denominator, \
             CAST(SUM(c.bad) AS BIGINT) AS bad, CAST(SUM(c.rectified_within_15) AS BIGINT) AS bad_rectified_in_15_working_days \
             FROM {table} c WHERE c.in_scope AND {filter}{inner_group}"
        )]
    });
    summed(&pieces, &group, &measures, true)
}

/// QC findings per 1,000 cases: the numerator by all dimensions (from
/// `qc_findings`, whose rows carry their case's dimensions, or `qc_counts`),
/// the denominator by the case dimensions only (a case has no error
/// category), from `cases` or `case_counts`.
fn qc_sql(query: &KpiQuery, rollups: bool) -> String {
    let (num_select, num_group) = dims_on(query, On::Child, false);
    let (den_select, den_group) = dims_on(query, On::Cases, true);
    let (num_inner, den_inner) = (group_by(&num_group), group_by(&den_group));
    let raw_num = |filter: &str| {
        format!(
            "SELECT {num_select}COUNT(*) AS numerator, \
             CAST(SUM(CASE WHEN c.corrected_at IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS open \
             FROM qc_findings c WHERE c.in_scope AND {filter}{num_inner}"
        )
    };
    let raw_den = |filter: &str| {
        format!("SELECT {den_select}COUNT(*) AS denominator FROM cases c WHERE c.in_scope AND {filter}{den_inner}")
    };
    let (num, den) = if rollups {
        let num = per_piece(pieces_on(query, "qc_counts", "qc_findings", On::Child), raw_num, |table, filter| {
            vec![format!(
                "SELECT {num_select}CAST(SUM(c.findings) AS BIGINT) AS numerator, \
                 CAST(SUM(CASE WHEN c.open THEN c.findings ELSE 0 END) AS BIGINT) AS open \
                 FROM {table} c WHERE c.in_scope AND {filter}{num_inner}"
            )]
        });
        let den = per_piece(period_pieces(query), raw_den, |table, filter| {
            vec![format!(
                "SELECT {den_select}CAST(SUM(c.cases) AS BIGINT) AS denominator FROM {table} c \
                 WHERE c.in_scope AND {filter}{den_inner}"
            )]
        });
        (summed(&num, &num_group, &["numerator", "open"], false), summed(&den, &den_group, &["denominator"], false))
    } else {
        (raw_num(&period_between(query.from, query.to, &query.filters, On::Child)), raw_den(&period(query)))
    };
    let join = if den_group.is_empty() {
        "CROSS JOIN den".to_owned()
    } else {
        let on: Vec<String> = den_group.iter().map(|d| format!("num.{d} = den.{d}")).collect();
        format!("JOIN den ON {}", on.join(" AND "))
    };
    let num_dims: Vec<String> = num_group.iter().map(|d| format!("num.{d}")).collect();
    let dims_out = if num_dims.is_empty() { String::new() } else { format!("{}, ", num_dims.join(", ")) };
    let order = if num_dims.is_empty() { String::new() } else { format!(" ORDER BY {}", num_dims.join(", ")) };
    format!(
        "WITH num AS ({num}), den AS ({den}) \
         SELECT {dims_out}num.numerator, den.denominator, num.open FROM num {join}{order}"
    )
}

/// How many case rows of the period the definition leaves out (with
/// `rollups`, whole months are read from the rollups).
fn excluded_sql(kpi: Kpi, query: &KpiQuery, rollups: bool) -> String {
    let as_of = utc_literal(query.as_of);
    let raw_condition = match kpi {
        Kpi::OnTimeRate => format!(
            "NOT (c.in_scope AND c.phase_live AND c.accepted_at IS NOT NULL) \
             OR (c.on_time IS NULL AND NOT (c.recorded_at IS NULL AND c.due_at < {as_of}))"
        ),
        Kpi::QcErrors | Kpi::Satisfaction => "NOT c.in_scope".to_owned(),
        other => counted(other).map_or("NOT (c.in_scope AND c.phase_live)", |c| c.excluded[0]).to_owned(),
    };
    if !rollups {
        return format!("SELECT COUNT(*) AS excluded FROM cases c WHERE {} AND ({raw_condition})", period(query));
    }
    let mut parts = Vec::new();
    for (table, filter, form) in period_pieces(query) {
        if form == 0 {
            parts.push(format!("SELECT COUNT(*) AS excluded FROM {table} c WHERE {filter} AND ({raw_condition})"));
            continue;
        }
        let condition = match kpi {
            Kpi::OnTimeRate => {
                parts.push(format!(
                    "SELECT CAST(SUM(c.cases) AS BIGINT) AS excluded FROM open_due c WHERE {filter} AND c.due_at >= {as_of}"
                ));
                "NOT (c.in_scope AND c.phase_live AND c.accepted) OR (c.on_time IS NULL AND c.recorded)"
            }
            Kpi::QcErrors | Kpi::Satisfaction => "NOT c.in_scope",
            other => counted(other).map_or("NOT (c.in_scope AND c.phase_live)", |c| c.excluded[1]),
        };
        parts.push(format!("SELECT {} AS excluded FROM {table} c WHERE {filter} AND ({condition})", case_total(form)));
    }
    format!("SELECT CAST(SUM(excluded) AS BIGINT) AS excluded FROM ({})", parts.join(" UNION ALL "))
}

/// A cell as JSON (strings, integers, floats, booleans, nulls).
pub fn cell(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Utf8 => Value::from(array.as_string::<i32>().value(row)),
        DataType::Utf8View => Value::from(array.as_string_view().value(row)),
        DataType::LargeUtf8 => Value::from(array.as_string::<i64>().value(row)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => serde_json::Number::from_f64(array.as_primitive::<Float64Type>().value(row))
            .map_or(Value::Null, Value::Number),
        DataType::Boolean => Value::from(array.as_boolean().value(row)),
        _ => match datafusion::arrow::util::display::array_value_to_string(array, row) {
            Ok(text) => Value::from(text),
            Err(_) => Value::Null,
        },
    }
}

/// A cell as text, as a table shows it: strings as they are, nulls (and
/// missing cells) empty, numbers and booleans as JSON writes them.
pub fn cell_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Batches as JSON objects, one per row.
pub fn batches_to_rows(batches: &[RecordBatch]) -> Vec<Map<String, Value>> {
    let mut rows = Vec::new();
    for batch in batches {
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let mut object = Map::new();
            for (i, field) in schema.fields().iter().enumerate() {
                object.insert(field.name().clone(), cell(batch.column(i).as_ref(), row));
            }
            rows.push(object);
        }
    }
    rows
}

/// The statements the plain plan of a KPI runs over the raw tables (`cases`,
/// `evaluations`, `qc_findings`, `seizures`, `anomalies`), no rollup: what
/// `bench/warehouse.sh` gives DuckDB to answer the same question.
pub fn plain_sql(kpi: Kpi, query: &KpiQuery) -> Result<Vec<String>, WarehouseError> {
    if kpi.is_rate() {
        Ok(vec![kpi_sql(kpi, query, false)?, excluded_sql(kpi, query, false)])
    } else {
        Ok(vec![value_sql(kpi, query, false)?])
    }
}

/// Whether the durations of `query` can be read from `duration_counts`: the
/// session has it, the breakdown has no week, and no case of the period's
/// whole months ended after the query's `as_of` (the rollup counts every
/// ended step; `cases` filters them by `as_of`).
async fn durations_from_rollup(ctx: &SessionContext, query: &KpiQuery) -> Result<bool, WarehouseError> {
    if !ctx.table_exist(DURATION_COUNTS)? || query.by.contains(&Dim::Week) {
        return Ok(false);
    }
    let Some((from, to)) = split_period(query.from, query.to).whole else {
        return Ok(false);
    };
    let sql = format!(
        "SELECT COUNT(*) AS late FROM {DURATION_COUNTS} c WHERE {} AND c.latest > {}",
        months_between(from, to),
        utc_literal(query.as_of)
    );
    let late = batches_to_rows(&ctx.sql(&sql).await?.collect().await?)
        .first()
        .and_then(|r| r.get("late"))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    Ok(late == 0)
}

/// Runs a KPI on a session over a snapshot: its SQL, decoded into typed rows.
pub async fn run(ctx: &SessionContext, kpi: Kpi, query: &KpiQuery) -> Result<KpiResult, WarehouseError> {
    validate(kpi, query)?;
    let definition = kpi.definition();
    let result = |rows, excluded| KpiResult {
        kpi,
        definition,
        by: query.by.clone(),
        as_of: query.as_of,
        target: kpi.target(),
        rows,
        excluded,
    };
    if !kpi.is_rate() {
        let durations_rollup = kpi == Kpi::Durations && durations_from_rollup(ctx, query).await?;
        let batches = ctx.sql(&value_sql(kpi, query, durations_rollup)?).await?.collect().await?;
        // In the order the SQL asks, on every engine: Ballista sessions turn its
        // adaptive planner off, which returned these rows out of order (docs/ballista.md).
        let rows = value_rows(kpi, query, &batches)?;
        return Ok(result(rows, 0));
    }
    let mut rollups = true;
    for table in ROLLUP_TABLES {
        rollups &= ctx.table_exist(table)?;
    }
    let batches = ctx.sql(&kpi_sql(kpi, query, rollups)?).await?.collect().await?;
    let rows = Rows::Rates(rate_rows(kpi, query, &batches));
    let excluded_batches = ctx.sql(&excluded_sql(kpi, query, rollups)).await?.collect().await?;
    let excluded =
        batches_to_rows(&excluded_batches).first().and_then(|r| r.get("excluded")).and_then(Value::as_i64).unwrap_or(0);
    Ok(result(rows, excluded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_come_only_from_the_definition() {
        let query = KpiQuery::new(day(2024, 1, 1), day(2024, 12, 31), &[Dim::Category], Utc::now());
        let err = kpi_sql(Kpi::OnlineRate, &query, true).expect_err("refused");
        assert!(err.to_string().contains("cannot be broken down by \"category\""), "{err}");
        let bad = query.clone().filtered(vec![(Dim::District, "1' OR '1'='1".into())]);
        let bad = KpiQuery { by: Vec::new(), ..bad };
        assert!(kpi_sql(Kpi::OnlineRate, &bad, true).is_err());
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn a_period_splits_into_whole_months_and_partial_ends() {
        let split = split_period(day(2025, 1, 15), day(2025, 4, 10));
        assert_eq!(split.whole, Some((day(2025, 2, 1), day(2025, 3, 31))));
        assert_eq!(split.partial, vec![(day(2025, 1, 15), day(2025, 1, 31)), (day(2025, 4, 1), day(2025, 4, 10))]);
        let exact = split_period(day(2024, 1, 1), day(2024, 12, 31));
        assert_eq!(exact, SplitPeriod { whole: Some((day(2024, 1, 1), day(2024, 12, 31))), partial: vec![] });
        let leap = split_period(day(2024, 2, 1), day(2024, 2, 29));
        assert_eq!(leap.whole, Some((day(2024, 2, 1), day(2024, 2, 29))));
        // No whole month inside: all of it from `cases`.
        for (from, to) in [(day(2025, 3, 2), day(2025, 3, 30)), (day(2025, 3, 20), day(2025, 4, 10))] {
            assert_eq!(split_period(from, to), SplitPeriod { whole: None, partial: vec![(from, to)] });
        }
        // A dashboard's default period: whole months up to the current one, then its first days.
        let ytd = split_period(day(2025, 1, 1), day(2026, 11, 28));
        assert_eq!(ytd.whole, Some((day(2025, 1, 1), day(2026, 10, 31))));
        assert_eq!(ytd.partial, vec![(day(2026, 11, 1), day(2026, 11, 28))]);
    }

    #[test]
    fn count_kpis_read_whole_months_from_the_rollup() {
        let query = KpiQuery {
            from: day(2025, 1, 1),
            to: day(2025, 6, 15),
            by: vec![Dim::BusinessType],
            as_of: Utc::now(),
            filters: vec![(Dim::District, "430405".into())],
        };
        for kpi in [Kpi::OnlineRate, Kpi::EndToEndRate, Kpi::FirstTimeRight, Kpi::ECertificateRate] {
            let with = kpi_sql(kpi, &query, true).expect("sql");
            assert!(with.contains("FROM case_counts c") && with.contains("FROM cases c"), "{with}");
            assert!(with.contains("c.month >= '2025-01' AND c.month <= '2025-05'"), "{with}");
            assert!(with.contains("'430405'"), "{with}");
            let without = kpi_sql(kpi, &query, false).expect("sql");
            assert!(!without.contains("case_counts"), "{without}");
            assert!(excluded_sql(kpi, &query, true).contains("case_counts"));
        }
        // Weeks are not in the rollup.
        let weekly = KpiQuery { by: vec![Dim::Week], ..query.clone() };
        assert!(!kpi_sql(Kpi::OnlineRate, &weekly, true).expect("sql").contains("case_counts"));
        // The other rates read their own rollups for whole months, the tables they count for the ends.
        for (kpi, rollup, table) in [
            (Kpi::OnTimeRate, "FROM open_due c", "FROM cases c"),
            (Kpi::QcErrors, "FROM qc_counts c", "FROM qc_findings c"),
            (Kpi::Satisfaction, "FROM evaluation_counts c", "FROM evaluations c"),
        ] {
            let sql = kpi_sql(kpi, &query, true).expect("sql");
            assert!(sql.contains(rollup) && sql.contains(table), "{kpi}: {sql}");
            assert!(!sql.contains(" JOIN cases"), "{kpi} joins: {sql}");
            let plain = kpi_sql(kpi, &query, false).expect("sql");
            assert!(!plain.contains(rollup), "{kpi}: {plain}");
            // Where weeks are a breakdown, they are not in the rollups.
            if let Ok(weekly) = kpi_sql(kpi, &KpiQuery { by: vec![Dim::Week], ..query.clone() }, true) {
                assert!(!weekly.contains(rollup), "{kpi} by week: {weekly}");
            }
        }
    }
}
