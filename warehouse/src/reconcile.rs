//! The month-by-month reconciliation of cases: the cases the registry
//! delivered (what the store holds, flawed or not) equal the cases the
//! online-rate KPI counts plus those its definition leaves out, in every
//! month. A difference means a case was lost or counted twice between the
//! store and the figures leadership sees (or arrived after the snapshot).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use datafusion::execution::context::SessionContext;
use serde_json::{Value, json};

use crate::WarehouseError;
use crate::kpi::{self, KpiQuery};

/// One month of the reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthCheck {
    /// `YYYY-MM`, China time of submission.
    pub month: String,
    /// Cases the store holds (what the registry delivered).
    pub delivered: i64,
    /// Cases the online-rate KPI counts in its denominator.
    pub counted: i64,
    /// Cases of the month its definition leaves out (withdrawn, refused, before go-live).
    pub excluded: i64,
}

impl MonthCheck {
    /// `delivered - counted - excluded`: 0 when the month reconciles.
    pub fn difference(&self) -> i64 {
        self.delivered - self.counted - self.excluded
    }

    /// The month as a JSON object (for `warehouse reconcile --json` and `refresh`).
    pub fn to_json(&self) -> Value {
        json!({
            "month": self.month, "delivered": self.delivered, "counted": self.counted,
            "excluded": self.excluded, "difference": self.difference(),
        })
    }
}

fn month_bounds(month: &str) -> Option<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
    };
    Some((first, next.pred_opt()?))
}

/// Reconciles `delivered` (cases per month, from
/// `store::Store::case_counts_by_month`) with the online-rate KPI on the
/// snapshot registered in `ctx`, month by month: every month either side
/// knows, from the first to the last.
pub async fn cases_by_month(
    ctx: &SessionContext,
    delivered: &BTreeMap<String, i64>,
    as_of: DateTime<Utc>,
) -> Result<Vec<MonthCheck>, WarehouseError> {
    let mut months: BTreeSet<String> = delivered.keys().cloned().collect();
    // Every month the snapshot holds, in case it holds one the store no longer does.
    let batches = ctx.sql("SELECT DISTINCT CAST(month AS VARCHAR) AS month FROM cases").await?.collect().await?;
    for row in kpi::batches_to_rows(&batches) {
        if let Some(month) = row.get("month").and_then(Value::as_str) {
            months.insert(month.to_owned());
        }
    }
    let mut checks = Vec::with_capacity(months.len());
    for month in months {
        let Some((from, to)) = month_bounds(&month) else {
            return Err(WarehouseError::BadRequest(format!("not a month: {month:?}")));
        };
        let query = KpiQuery { from, to, by: Vec::new(), as_of, filters: Vec::new() };
        let result = kpi::run(ctx, "online-rate", &query).await?;
        let counted = result.rows.iter().filter_map(|r| r.get("denominator").and_then(Value::as_i64)).sum();
        checks.push(MonthCheck {
            delivered: delivered.get(&month).copied().unwrap_or(0),
            month,
            counted,
            excluded: result.excluded,
        });
    }
    Ok(checks)
}
