//! Typed KPI answers: decoded once from the query's record batches, read by
//! the pages, the API, the CLI and reports, and serialised to JSON in one
//! place ([`KpiResult::to_json`]).

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use serde_json::{Map, Value, json};

use super::{Definition, Dim, Kpi, KpiQuery};
use crate::WarehouseError;

/// A KPI answer.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiResult {
    /// The KPI.
    pub kpi: Kpi,
    /// What was counted.
    pub definition: &'static Definition,
    /// The dimensions each row is broken down by, in the order asked.
    pub by: Vec<Dim>,
    /// The time it is for.
    pub as_of: DateTime<Utc>,
    /// The target, where the plan sets one.
    pub target: Option<f64>,
    /// The rows.
    pub rows: Rows,
    /// Rows of the period left out by the definition.
    pub excluded: i64,
}

/// The rows of an answer, by kind of KPI.
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    /// A rate per breakdown (the count KPIs, QC errors, satisfaction).
    Rates(Vec<RateRow>),
    /// Step durations per step and breakdown.
    Durations(Vec<DurationRow>),
    /// The seizure figures of the period (one row).
    Seizures(Vec<SeizureSummary>),
    /// Reconciliation anomalies per kind and partner.
    Anomalies(Vec<AnomalyRow>),
}

impl Rows {
    /// How many rows.
    pub fn len(&self) -> usize {
        match self {
            Rows::Rates(r) => r.len(),
            Rows::Durations(r) => r.len(),
            Rows::Seizures(r) => r.len(),
            Rows::Anomalies(r) => r.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One breakdown of a rate.
#[derive(Debug, Clone, PartialEq)]
pub struct RateRow {
    /// The value of each dimension of the breakdown (`None` where the data has none).
    pub dims: Vec<(Dim, Option<String>)>,
    /// What the numerator counts.
    pub numerator: i64,
    /// What the denominator counts.
    pub denominator: i64,
    /// numerator × scale / denominator, to 6 decimals; `None` without a denominator.
    pub rate: Option<f64>,
    /// Further counts some KPIs give.
    pub extra: Extra,
}

/// Further counts of a rate row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Extra {
    /// None.
    #[default]
    None,
    /// QC errors: findings not yet corrected.
    Qc {
        /// Findings without a correction.
        open: Option<i64>,
    },
    /// Satisfaction: bad reviews and how many were put right in time.
    Satisfaction {
        /// Bad reviews.
        bad: Option<i64>,
        /// Bad reviews rectified within 15 working days.
        bad_rectified_in_15_working_days: Option<i64>,
    },
}

impl RateRow {
    /// The value of `dim` in this row.
    pub fn dim(&self, dim: Dim) -> Option<&str> {
        self.dims.iter().find(|(d, _)| *d == dim).and_then(|(_, v)| v.as_deref())
    }
}

/// One step's durations.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationRow {
    /// `1 submitted_to_accepted` … (see [`super::DURATION_STEPS`]).
    pub step: String,
    /// The breakdown.
    pub dims: Vec<(Dim, Option<String>)>,
    /// Cases that completed the step.
    pub cases: i64,
    /// Median hours.
    pub median_hours: Option<f64>,
    /// 90th percentile hours.
    pub p90_hours: Option<f64>,
}

/// The seizure figures of a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeizureSummary {
    /// Seizure orders served in the period.
    pub received: i64,
    /// Active now.
    pub active: Option<i64>,
    /// Queued behind another.
    pub queued: Option<i64>,
    /// Released.
    pub released: Option<i64>,
    /// Lapsed at their end date.
    pub lapsed: Option<i64>,
    /// Active and ending within 30 days of `as_of`.
    pub expiring_within_30_days: Option<i64>,
    /// Median hours from service to recording.
    pub median_hours_to_record: Option<f64>,
}

/// Anomalies of one kind from one partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyRow {
    /// The kind.
    pub kind: String,
    /// The partner.
    pub partner: Option<String>,
    /// How many.
    pub count: i64,
}

/// A decoded row of the query's answer: its columns by name.
struct Raw(Map<String, Value>);

impl Raw {
    fn i64(&self, column: &str) -> Option<i64> {
        self.0.get(column).and_then(Value::as_i64)
    }
    fn f64(&self, column: &str) -> Option<f64> {
        self.0.get(column).and_then(Value::as_f64)
    }
    fn text(&self, column: &str) -> Option<String> {
        self.0.get(column).filter(|v| !v.is_null()).map(|v| super::cell_text(Some(v)))
    }
    /// The breakdown: the query's dimensions from the columns `d0`, `d1` ….
    fn dims(&self, by: &[Dim]) -> Vec<(Dim, Option<String>)> {
        by.iter().enumerate().map(|(i, d)| (*d, self.text(&format!("d{i}")))).collect()
    }
}

fn raw_rows(batches: &[RecordBatch]) -> impl Iterator<Item = Raw> {
    super::batches_to_rows(batches).into_iter().map(Raw)
}

/// The rate rows of a rate KPI's answer (`d0…`, `numerator`, `denominator`, extras).
pub(super) fn rate_rows(kpi: Kpi, query: &KpiQuery, batches: &[RecordBatch]) -> Vec<RateRow> {
    let scale = kpi.definition().scale;
    raw_rows(batches)
        .map(|raw| {
            let numerator = raw.i64("numerator").unwrap_or(0);
            let denominator = raw.i64("denominator").unwrap_or(0);
            let rate = (denominator > 0).then(|| {
                let value = numerator as f64 * f64::from(scale) / denominator as f64;
                (value * 1e6).round() / 1e6
            });
            let extra = match kpi {
                Kpi::QcErrors => Extra::Qc { open: raw.i64("open") },
                Kpi::Satisfaction => Extra::Satisfaction {
                    bad: raw.i64("bad"),
                    bad_rectified_in_15_working_days: raw.i64("bad_rectified_in_15_working_days"),
                },
                _ => Extra::None,
            };
            RateRow { dims: raw.dims(&query.by), numerator, denominator, rate, extra }
        })
        .collect()
}

/// The rows of a value KPI's answer.
pub(super) fn value_rows(kpi: Kpi, query: &KpiQuery, batches: &[RecordBatch]) -> Result<Rows, WarehouseError> {
    let raws = raw_rows(batches);
    Ok(match kpi {
        Kpi::Durations => Rows::Durations(
            raws.map(|raw| DurationRow {
                step: raw.text("step").unwrap_or_default(),
                dims: raw.dims(&query.by),
                cases: raw.i64("cases").unwrap_or(0),
                median_hours: raw.f64("median_hours"),
                p90_hours: raw.f64("p90_hours"),
            })
            .collect(),
        ),
        Kpi::Seizures => Rows::Seizures(
            raws.map(|raw| SeizureSummary {
                received: raw.i64("received").unwrap_or(0),
                active: raw.i64("active"),
                queued: raw.i64("queued"),
                released: raw.i64("released"),
                lapsed: raw.i64("lapsed"),
                expiring_within_30_days: raw.i64("expiring_within_30_days"),
                median_hours_to_record: raw.f64("median_hours_to_record"),
            })
            .collect(),
        ),
        Kpi::Anomalies => Rows::Anomalies(
            raws.map(|raw| AnomalyRow {
                kind: raw.text("kind").unwrap_or_default(),
                partner: raw.text("partner"),
                count: raw.i64("count").unwrap_or(0),
            })
            .collect(),
        ),
        other => return Err(WarehouseError::BadRequest(format!("{other} is a rate, not a value KPI"))),
    })
}

fn dims_json(object: &mut Map<String, Value>, dims: &[(Dim, Option<String>)]) {
    for (dim, value) in dims {
        object.insert(dim.name().to_owned(), value.clone().map_or(Value::Null, Value::String));
    }
}

fn float(value: Option<f64>) -> Value {
    value.and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
}

impl RateRow {
    /// The row as the API gives it: dimensions by name, numerator, denominator, rate, extras.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut object = Map::new();
        dims_json(&mut object, &self.dims);
        object.insert("numerator".into(), self.numerator.into());
        object.insert("denominator".into(), self.denominator.into());
        object.insert("rate".into(), float(self.rate));
        match self.extra {
            Extra::None => {}
            Extra::Qc { open } => {
                object.insert("open".into(), open.into());
            }
            Extra::Satisfaction { bad, bad_rectified_in_15_working_days } => {
                object.insert("bad".into(), bad.into());
                object.insert("bad_rectified_in_15_working_days".into(), bad_rectified_in_15_working_days.into());
            }
        }
        object
    }
}

impl Rows {
    /// The rows as JSON objects, one per row.
    pub fn to_json(&self) -> Vec<Map<String, Value>> {
        match self {
            Rows::Rates(rows) => rows.iter().map(RateRow::to_json).collect(),
            Rows::Durations(rows) => rows
                .iter()
                .map(|r| {
                    let mut object = Map::new();
                    object.insert("step".into(), r.step.clone().into());
                    dims_json(&mut object, &r.dims);
                    object.insert("cases".into(), r.cases.into());
                    object.insert("median_hours".into(), float(r.median_hours));
                    object.insert("p90_hours".into(), float(r.p90_hours));
                    object
                })
                .collect(),
            Rows::Seizures(rows) => rows
                .iter()
                .map(|s| {
                    let value = json!({
                        "received": s.received, "active": s.active, "queued": s.queued,
                        "released": s.released, "lapsed": s.lapsed,
                        "expiring_within_30_days": s.expiring_within_30_days,
                        "median_hours_to_record": float(s.median_hours_to_record),
                    });
                    value.as_object().cloned().unwrap_or_default()
                })
                .collect(),
            Rows::Anomalies(rows) => rows
                .iter()
                .map(|a| {
                    let value = json!({ "kind": a.kind, "partner": a.partner, "count": a.count });
                    value.as_object().cloned().unwrap_or_default()
                })
                .collect(),
        }
    }
}

impl KpiResult {
    /// The rate rows (empty for a value KPI).
    pub fn rates(&self) -> &[RateRow] {
        match &self.rows {
            Rows::Rates(rows) => rows,
            _ => &[],
        }
    }

    /// The first rate row: the whole period when the query has no breakdown.
    pub fn total(&self) -> Option<&RateRow> {
        self.rates().first()
    }

    /// The rate of the whole period (no breakdown).
    pub fn overall_rate(&self) -> Option<f64> {
        self.total().and_then(|r| r.rate)
    }

    /// The row whose `dim` is `value`.
    pub fn row_where(&self, dim: Dim, value: &str) -> Option<&RateRow> {
        self.rates().iter().find(|r| r.dim(dim) == Some(value))
    }

    /// Cases counted (the denominators summed) and cases left out.
    pub fn counted_and_excluded(&self) -> (i64, i64) {
        (self.rates().iter().map(|r| r.denominator).sum(), self.excluded)
    }

    /// The JSON answer of `GET /api/kpi/{name}` and `wangban kpi --format json`.
    pub fn to_json(&self) -> Value {
        let d = self.definition;
        json!({
            "definition": {
                "id": d.id,
                "name": d.name,
                "version": d.version,
                "title_zh": d.title_zh,
                "numerator": d.numerator,
                "denominator": d.denominator,
                "excludes": d.excludes,
            },
            "as_of": self.as_of.to_rfc3339(),
            "target": self.target,
            "excluded": self.excluded,
            "rows": self.rows.to_json(),
        })
    }
}
