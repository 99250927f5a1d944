//! Named, versioned KPIs: a closed [`Kpi`] enum, each with its
//! [`Definition`] (id, version, what its numerator and denominator count and
//! what it leaves out, the [`Dim`]ensions it can be broken down by), one SQL
//! query built from it (`sql.rs`), and typed answers ([`KpiResult`] with
//! [`Rows`]). [`KpiService`] answers every reader (pages, `/api/kpi`, the CLI,
//! reports) from the current snapshot with one rule for `as_of`.
//!
//! The scope rule for cases (`docs/kpi.md`): submitted in the period, neither
//! withdrawn nor refused, and on or after its phase's go-live date.

pub mod gap;
mod rows;
mod service;
mod sql;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};

pub use rows::{AnomalyRow, DurationRow, Extra, KpiResult, RateRow, Rows, SeizureSummary};
pub use service::{Answer, GapAnswer, KpiRequest, KpiService, as_of};
pub use sql::{DURATION_STEPS, batches_to_rows, cell, cell_text, kpi_sql, plain_sql, run};

use crate::WarehouseError;

/// The online-rate target of the plan.
pub const TARGET_ONLINE_RATE: f64 = 0.9;

/// Every KPI the warehouse computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kpi {
    /// 网办率.
    OnlineRate,
    /// 全程网办率.
    EndToEndRate,
    /// 按时办结率.
    OnTimeRate,
    /// 一次办结率.
    FirstTimeRight,
    /// 电子证照率.
    ECertificateRate,
    /// 质检差错率（每千件）.
    QcErrors,
    /// 好评率.
    Satisfaction,
    /// 环节用时.
    Durations,
    /// 查解封.
    Seizures,
    /// 对账异常.
    Anomalies,
}

impl Kpi {
    /// Every KPI, in the order of [`DEFINITIONS`].
    pub const ALL: [Kpi; 10] = [
        Kpi::OnlineRate,
        Kpi::EndToEndRate,
        Kpi::OnTimeRate,
        Kpi::FirstTimeRight,
        Kpi::ECertificateRate,
        Kpi::QcErrors,
        Kpi::Satisfaction,
        Kpi::Durations,
        Kpi::Seizures,
        Kpi::Anomalies,
    ];

    /// What it counts.
    pub fn definition(self) -> &'static Definition {
        &DEFINITIONS[self as usize]
    }

    /// Its name on the command line and in URLs (`online-rate`).
    pub fn name(self) -> &'static str {
        self.definition().name
    }

    /// The KPI called `name`; the error names the known ones.
    pub fn from_name(name: &str) -> Result<Kpi, WarehouseError> {
        Kpi::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Kpi::ALL.iter().map(|k| k.name()).collect();
            WarehouseError::BadRequest(format!("unknown KPI {name:?}; known: {}", known.join(", ")))
        })
    }

    /// Whether its answer is a rate (numerator over denominator, [`Rows::Rates`]).
    pub fn is_rate(self) -> bool {
        self.definition().scale > 0
    }

    /// The dimensions named in `names` (blanks ignored), each one this KPI
    /// can be broken down by; the error names the ones it can.
    pub fn dims<'a>(self, names: impl IntoIterator<Item = &'a str>) -> Result<Vec<Dim>, WarehouseError> {
        let definition = self.definition();
        names
            .into_iter()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|name| {
                Dim::from_name(name)
                    .ok()
                    .filter(|d| definition.dimensions.contains(d))
                    .ok_or_else(|| self.no_breakdown_by(name))
            })
            .collect()
    }

    /// The refusal of a breakdown by `name`, naming the dimensions it has.
    fn no_breakdown_by(self, name: &str) -> WarehouseError {
        WarehouseError::BadRequest(format!(
            "{self} cannot be broken down by {name:?}; it can by: {}",
            self.definition().dimension_names().join(", ")
        ))
    }

    /// Whether it can be filtered on case dimensions ([`Dim::FILTERS`]).
    pub fn takes_filters(self) -> bool {
        !matches!(self, Kpi::Seizures | Kpi::Anomalies)
    }

    /// The plan's target, where it sets one.
    pub fn target(self) -> Option<f64> {
        (self == Kpi::OnlineRate).then_some(TARGET_ONLINE_RATE)
    }
}

impl fmt::Display for Kpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kpi {
    type Err = WarehouseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kpi::from_name(s)
    }
}

/// A dimension a KPI can be broken down or filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// The case's business type code.
    BusinessType,
    /// The plan's phase (1–4) of the business type.
    Phase,
    /// The application channel code.
    Channel,
    /// The district code.
    District,
    /// Person or organisation.
    ApplicantKind,
    /// China-time month of submission, `YYYY-MM`.
    Month,
    /// ISO week of submission, `YYYY-Www`.
    Week,
    /// QC error category.
    Category,
    /// QC error severity.
    Severity,
    /// The section a QC finding is charged to.
    Section,
    /// Where a review was given.
    EvaluationChannel,
}

impl Dim {
    /// Every dimension.
    pub const ALL: [Dim; 11] = [
        Dim::BusinessType,
        Dim::Phase,
        Dim::Channel,
        Dim::District,
        Dim::ApplicantKind,
        Dim::Month,
        Dim::Week,
        Dim::Category,
        Dim::Severity,
        Dim::Section,
        Dim::EvaluationChannel,
    ];

    /// The dimensions a case KPI can be filtered on.
    pub const FILTERS: [Dim; 5] = [Dim::BusinessType, Dim::Phase, Dim::Channel, Dim::District, Dim::ApplicantKind];

    /// Its name in `by=` and in answers (`business_type`).
    pub fn name(self) -> &'static str {
        match self {
            Dim::BusinessType => "business_type",
            Dim::Phase => "phase",
            Dim::Channel => "channel",
            Dim::District => "district",
            Dim::ApplicantKind => "applicant_kind",
            Dim::Month => "month",
            Dim::Week => "week",
            Dim::Category => "category",
            Dim::Severity => "severity",
            Dim::Section => "section",
            Dim::EvaluationChannel => "evaluation_channel",
        }
    }

    /// The dimension called `name`; the error names the known ones.
    pub fn from_name(name: &str) -> Result<Dim, WarehouseError> {
        Dim::ALL.into_iter().find(|d| d.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Dim::ALL.iter().map(|d| d.name()).collect();
            WarehouseError::BadRequest(format!("unknown dimension {name:?}; known: {}", known.join(", ")))
        })
    }

    /// A comma-separated list of dimensions (`"business_type,month"`; blanks ignored).
    pub fn parse_list(text: &str) -> Result<Vec<Dim>, WarehouseError> {
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Dim::from_name).collect()
    }

    /// Whether it is a property of the case (and so of the QC denominator).
    pub fn is_case_dim(self) -> bool {
        !matches!(self, Dim::Category | Dim::Severity | Dim::Section | Dim::EvaluationChannel)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dim {
    type Err = WarehouseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dim::from_name(s)
    }
}

/// What a KPI counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    /// The KPI.
    pub kpi: Kpi,
    /// Name on the command line and in URLs.
    pub name: &'static str,
    /// Stable id.
    pub id: &'static str,
    /// Version: raised whenever the counting rule changes.
    pub version: u32,
    /// Chinese title.
    pub title_zh: &'static str,
    /// What the numerator counts.
    pub numerator: &'static str,
    /// What the denominator counts.
    pub denominator: &'static str,
    /// What is left out.
    pub excludes: &'static str,
    /// Dimensions it can be broken down by.
    pub dimensions: &'static [Dim],
    /// Rate multiplier (1 for shares, 1000 for per-thousand figures; 0 for
    /// KPIs that report values, not a rate: their rows carry their own columns).
    pub scale: u32,
}

impl Definition {
    /// The names of its dimensions.
    pub fn dimension_names(&self) -> Vec<&'static str> {
        self.dimensions.iter().map(|d| d.name()).collect()
    }

    /// The definition as `GET /api/kpi` and `wangban kpi list` give it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name, "id": self.id, "version": self.version, "title_zh": self.title_zh,
            "numerator": self.numerator, "denominator": self.denominator, "excludes": self.excludes,
            "dimensions": self.dimension_names(),
        })
    }
}

const CASE_DIMS: &[Dim] =
    &[Dim::BusinessType, Dim::Phase, Dim::Channel, Dim::District, Dim::ApplicantKind, Dim::Month, Dim::Week];
const QC_DIMS: &[Dim] = &[Dim::Category, Dim::Severity, Dim::Section, Dim::BusinessType, Dim::District, Dim::Month];
const SATISFACTION_DIMS: &[Dim] = &[Dim::EvaluationChannel, Dim::BusinessType, Dim::District, Dim::Month];
const SCOPE: &str = "withdrawn (CH) and refused (BYSL) cases; cases submitted before their phase's go-live date";

/// Every definition, in the order of [`Kpi::ALL`] (a test holds them so).
pub const DEFINITIONS: [Definition; 10] = [
    Definition {
        kpi: Kpi::OnlineRate,
        name: "online-rate",
        id: "kpi.online_rate",
        version: 1,
        title_zh: "网办率",
        numerator: "cases in scope applied for online (channel 1 web/app, 2 partner platform, 3 self-service terminal)",
        denominator: "cases in scope: submitted in the period",
        excludes: SCOPE,
        dimensions: CASE_DIMS,
        scale: 1,
    },
    Definition {
        kpi: Kpi::EndToEndRate,
        name: "end-to-end-rate",
        id: "kpi.end_to_end_rate",
        version: 1,
        title_zh: "全程网办率",
        numerator: "cases in scope applied for online and not collected at the counter (types without a certificate: online suffices)",
        denominator: "cases in scope: submitted in the period",
        excludes: SCOPE,
        dimensions: CASE_DIMS,
        scale: 1,
    },
    Definition {
        kpi: Kpi::OnTimeRate,
        name: "on-time-rate",
        id: "kpi.on_time_rate",
        version: 1,
        title_zh: "按时办结率",
        numerator: "accepted cases in scope recorded within the type's committed limit in working days",
        denominator: "accepted cases in scope recorded, or past their committed limit and not recorded as of the query",
        excludes: "cases not yet due; cases never accepted; withdrawn and refused cases; cases before go-live",
        dimensions: CASE_DIMS,
        scale: 1,
    },
    Definition {
        kpi: Kpi::FirstTimeRight,
        name: "first-time-right",
        id: "kpi.first_time_right",
        version: 2,
        title_zh: "一次办结率",
        numerator: "recorded cases in scope with no correction requested",
        denominator: "recorded cases in scope whose correction count is known",
        excludes: "cases not yet recorded; cases whose correction count the registry sent malformed (undetermined); \
                   withdrawn and refused cases; cases before go-live",
        dimensions: CASE_DIMS,
        scale: 1,
    },
    Definition {
        kpi: Kpi::ECertificateRate,
        name: "e-certificate-rate",
        id: "kpi.e_certificate_rate",
        version: 1,
        title_zh: "电子证照率",
        numerator: "cases in scope of certificate-issuing types delivered electronically",
        denominator: "cases in scope of certificate-issuing types with a delivery chosen",
        excludes: "types without a certificate; cases with no delivery chosen yet; withdrawn and refused cases",
        dimensions: CASE_DIMS,
        scale: 1,
    },
    Definition {
        kpi: Kpi::QcErrors,
        name: "qc-errors",
        id: "kpi.qc_errors_per_1000",
        version: 1,
        title_zh: "质检差错率（每千件）",
        numerator: "QC findings on cases submitted in the period",
        denominator: "cases submitted in the period (withdrawn and refused excluded), per 1,000",
        excludes: "withdrawn and refused cases",
        dimensions: QC_DIMS,
        scale: 1000,
    },
    Definition {
        kpi: Kpi::Satisfaction,
        name: "satisfaction",
        id: "kpi.satisfaction",
        version: 1,
        title_zh: "好评率",
        numerator: "good reviews (very satisfied or satisfied) of cases submitted in the period",
        denominator: "reviews of cases submitted in the period",
        excludes: "reviews of cases outside the period",
        dimensions: SATISFACTION_DIMS,
        scale: 1,
    },
    Definition {
        kpi: Kpi::Durations,
        name: "durations",
        id: "kpi.step_durations",
        version: 1,
        title_zh: "环节用时",
        numerator: "per step (submitted→accepted, accepted→verified, verified→recorded, recorded→issued, issued→archived): exact median and p90 in wall-clock hours",
        denominator: "cases in scope that completed the step",
        excludes: "steps not reached; withdrawn and refused cases; cases before go-live",
        dimensions: CASE_DIMS,
        scale: 0,
    },
    Definition {
        kpi: Kpi::Seizures,
        name: "seizures",
        id: "kpi.seizures",
        version: 1,
        title_zh: "查解封",
        numerator: "seizure orders served in the period: received, active, queued, released, lapsed, expiring within 30 days of as_of; median hours from service to recording",
        denominator: "seizure orders served in the period",
        excludes: "refused orders (they bind nothing)",
        dimensions: &[],
        scale: 0,
    },
    Definition {
        kpi: Kpi::Anomalies,
        name: "anomalies",
        id: "kpi.reconciliation_anomalies",
        version: 1,
        title_zh: "对账异常",
        numerator: "anomalies found by reconciliation up to as_of, by kind and partner",
        denominator: "none",
        excludes: "nothing",
        dimensions: &[],
        scale: 0,
    },
];

/// A KPI request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KpiQuery {
    /// First day (China time), inclusive.
    pub from: NaiveDate,
    /// Last day (China time), inclusive.
    pub to: NaiveDate,
    /// Dimensions to break down by.
    pub by: Vec<Dim>,
    /// The time the answer is for (cases past their limit by then count as
    /// late). Through [`KpiService`] it is the snapshot's time.
    pub as_of: DateTime<Utc>,
    /// Only cases whose dimension has this value: `(Dim::District, "430405")`.
    /// Allowed on [`Dim::FILTERS`], for the KPIs over cases.
    pub filters: Vec<(Dim, String)>,
}

impl KpiQuery {
    /// The days `from..=to` broken down `by`, unfiltered, as of `as_of`.
    pub fn new(from: NaiveDate, to: NaiveDate, by: &[Dim], as_of: DateTime<Utc>) -> KpiQuery {
        KpiQuery { from, to, by: by.to_vec(), as_of, filters: Vec::new() }
    }

    /// The same query with these filters.
    pub fn filtered(self, filters: Vec<(Dim, String)>) -> KpiQuery {
        KpiQuery { filters, ..self }
    }
}

/// Whether `value` holds only letters, digits, `_` and `-`: safe to place in SQL
/// as a code (filters on KPIs and on case lists).
pub fn is_plain_code(value: &str) -> bool {
    value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// Checks the query against the KPI: period, dimensions it allows, filters
/// on [`Dim::FILTERS`] with plain values (letters, digits, `_`, `-`).
pub fn validate(kpi: Kpi, query: &KpiQuery) -> Result<(), WarehouseError> {
    let definition = kpi.definition();
    if query.to < query.from {
        return Err(WarehouseError::BadRequest(format!("--to {} is before --from {}", query.to, query.from)));
    }
    for dim in &query.by {
        if !definition.dimensions.contains(dim) {
            return Err(kpi.no_breakdown_by(dim.name()));
        }
    }
    if query.filters.is_empty() {
        return Ok(());
    }
    if !kpi.takes_filters() {
        return Err(WarehouseError::BadRequest(format!("{kpi} takes no filters")));
    }
    for (dim, value) in &query.filters {
        if !Dim::FILTERS.contains(dim) {
            let names: Vec<&str> = Dim::FILTERS.iter().map(|d| d.name()).collect();
            return Err(WarehouseError::BadRequest(format!(
                "cannot filter on {:?}; filters: {}",
                dim.name(),
                names.join(", ")
            )));
        }
        let plain = !value.is_empty() && value.len() <= 64 && is_plain_code(value);
        if !plain {
            return Err(WarehouseError::BadRequest(format!(
                "filter {dim}={value:?}: expected a code of letters, digits, '_' or '-'"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kpi_has_its_definition_and_name() {
        for (i, kpi) in Kpi::ALL.into_iter().enumerate() {
            assert_eq!(DEFINITIONS[i].kpi, kpi);
            assert_eq!(Kpi::from_name(kpi.name()).expect("known"), kpi);
        }
        for dim in Dim::ALL {
            assert_eq!(Dim::from_name(dim.name()).expect("known"), dim);
        }
        assert!(Kpi::from_name("nope").is_err());
        assert!(Dim::parse_list("district; DROP TABLE cases").is_err());
        assert_eq!(Dim::parse_list(" month, ,district").expect("dims"), vec![Dim::Month, Dim::District]);
        let refused = Kpi::OnlineRate.dims(["month", "category"]).expect_err("not a case dimension");
        assert!(refused.to_string().contains("cannot be broken down by \"category\""), "{refused}");
        assert_eq!(Kpi::QcErrors.dims(["category"]).expect("dims"), vec![Dim::Category]);
    }
}
