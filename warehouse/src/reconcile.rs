//! The month-by-month reconciliation of cases: the cases the registry
//! delivered (what the store holds, flawed or not) equal the cases the
//! online-rate KPI counts plus those its definition leaves out, in every
//! month. A difference means a case was lost or counted twice between the
//! store and the figures leadership sees (or arrived after the snapshot).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::execution::context::SessionContext;
use serde_json::{Value, json};

use crate::WarehouseError;
use crate::kpi::{self, Kpi, KpiRequest};

/// One month of the reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthCheck {
    /// `YYYY-MM`, China time of submission.
    pub month: String,
    /// Cases the store holds (what the registry delivered).
    pub delivered: i64,
    /// Of those, kept with a flawed field (a data-quality finding): counted all the same.
    pub flawed: i64,
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
            "month": self.month, "delivered": self.delivered, "flawed": self.flawed, "counted": self.counted,
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

/// What the store holds per month: every case, and those kept with a
/// data-quality finding (from `store::Store::case_counts_by_month` and
/// `store::Store::flawed_case_counts_by_month`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Cases per `YYYY-MM`.
    pub cases: BTreeMap<String, i64>,
    /// Of those, cases kept with a flawed field.
    pub flawed: BTreeMap<String, i64>,
}

impl Delivered {
    /// What `store` holds now.
    pub async fn from_store(store: &store::Store) -> Result<Self, WarehouseError> {
        Ok(Self { cases: store.case_counts_by_month().await?, flawed: store.flawed_case_counts_by_month().await? })
    }
}

/// The SQL that lists the months the snapshot's `cases` hold.
pub const SNAPSHOT_MONTHS_SQL: &str = "SELECT DISTINCT CAST(month AS VARCHAR) AS month FROM cases ORDER BY month";

/// Reconciles `delivered` with the online rate month by month, over every
/// month either side knows (`snapshot_months`: the rows of
/// [`SNAPSHOT_MONTHS_SQL`]); `online_rate` answers the KPI for one month as
/// (denominator, excluded). The one rule, whichever engine or cache answers.
pub async fn reconcile_months<F, Fut>(
    delivered: &Delivered,
    snapshot_months: &[RecordBatch],
    online_rate: F,
) -> Result<Vec<MonthCheck>, WarehouseError>
where
    F: Fn(KpiRequest) -> Fut,
    Fut: Future<Output = Result<(i64, i64), WarehouseError>>,
{
    let mut months: BTreeSet<String> = delivered.cases.keys().cloned().collect();
    for row in kpi::batches_to_rows(snapshot_months) {
        if let Some(month) = row.get("month").and_then(Value::as_str) {
            months.insert(month.to_owned());
        }
    }
    let mut checks = Vec::with_capacity(months.len());
    for month in months {
        let Some((from, to)) = month_bounds(&month) else {
            return Err(WarehouseError::BadRequest(format!("not a month: {month:?}")));
        };
        let (counted, excluded) = online_rate(KpiRequest::new(from, to, &[])).await?;
        checks.push(MonthCheck {
            delivered: delivered.cases.get(&month).copied().unwrap_or(0),
            flawed: delivered.flawed.get(&month).copied().unwrap_or(0),
            month,
            counted,
            excluded,
        });
    }
    Ok(checks)
}

/// [`reconcile_months`] on the snapshot registered in `ctx` (the CLI).
pub async fn cases_by_month(
    ctx: &SessionContext,
    delivered: &Delivered,
    as_of: DateTime<Utc>,
) -> Result<Vec<MonthCheck>, WarehouseError> {
    let months = ctx.sql(SNAPSHOT_MONTHS_SQL).await?.collect().await?;
    reconcile_months(delivered, &months, |request| async move {
        Ok(kpi::run(ctx, Kpi::OnlineRate, &request.on(as_of)?).await?.counted_and_excluded())
    })
    .await
}
