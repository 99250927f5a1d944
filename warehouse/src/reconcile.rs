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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    check_months(delivered, months, online_rate).await
}

/// Checks each of `months` against `delivered`, `online_rate` answering the
/// KPI for one month as (denominator, excluded).
async fn check_months<F, Fut>(
    delivered: &Delivered,
    months: BTreeSet<String>,
    online_rate: F,
) -> Result<Vec<MonthCheck>, WarehouseError>
where
    F: Fn(KpiRequest) -> Fut,
    Fut: Future<Output = Result<(i64, i64), WarehouseError>>,
{
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

/// The reconciliation a refresh keeps with its snapshot: the months it
/// rewrote (and any the previous snapshot had no check for) are reconciled
/// now, the store read for those months only (through its submission-time
/// index) and the online rate answered from the rollup; the months it carried
/// over keep their checks, which the refresh copied. The result is written
/// into the snapshot's manifest (`reconciliation`), where the connectors page
/// reads it: no page view and no later refresh scans the whole store for it.
pub async fn after_refresh(
    store: &store::Store,
    root: &std::path::Path,
    memory_limit: Option<usize>,
) -> Result<Vec<MonthCheck>, WarehouseError> {
    let warehouse = crate::snapshot::Warehouse::open(root)?;
    let Some(mut manifest) = warehouse.current()? else {
        return Err(WarehouseError::NoSnapshot(format!("{} has no snapshot yet", root.display())));
    };
    let checked: BTreeSet<String> = manifest.reconciliation.iter().map(|c| c.month.clone()).collect();
    let months: Vec<String> = manifest.cases.keys().filter(|m| !checked.contains(*m)).cloned().collect();
    let (Some(first), Some(last)) = (months.first(), months.last()) else {
        return Ok(manifest.reconciliation);
    };
    let (from, _) = crate::export::month_bounds(first)?;
    let (_, to) = crate::export::month_bounds(last)?;
    let (cases, flawed) = store.case_counts_by_month_between(from, to).await?;
    let delivered = Delivered {
        cases: cases.into_iter().filter(|(m, _)| months.contains(m)).collect(),
        flawed: flawed.into_iter().filter(|(m, _)| months.contains(m)).collect(),
    };
    let ctx = crate::session::session_with_limit(None, memory_limit)?;
    let as_of = crate::session::register_manifest(&ctx, &warehouse, manifest.clone()).await?.created()?;
    let ctx = &ctx;
    let fresh = check_months(&delivered, months.iter().cloned().collect(), |request| async move {
        Ok(kpi::run(ctx, Kpi::OnlineRate, &request.on(as_of)?).await?.counted_and_excluded())
    })
    .await?;
    manifest.reconciliation.extend(fresh);
    manifest.reconciliation.sort_by(|a, b| a.month.cmp(&b.month));
    warehouse.amend(&manifest)?;
    Ok(manifest.reconciliation)
}

/// A child row whose case the snapshot lacks (kept under the month
/// `unmatched`, counted in no KPI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedChild {
    /// `evaluations` or `qc_findings`.
    pub table: &'static str,
    /// The row's own id (`evaluation_id`, `finding_id`).
    pub id: String,
    /// The case number it names.
    pub case_no: String,
}

/// Every child row of the snapshot registered in `ctx` whose case it lacks, by table and id.
pub async fn unmatched_children(ctx: &SessionContext) -> Result<Vec<UnmatchedChild>, WarehouseError> {
    let mut out = Vec::new();
    for (table, key) in [("evaluations", "evaluation_id"), ("qc_findings", "finding_id")] {
        let sql = format!(
            "SELECT CAST({key} AS VARCHAR) AS id, CAST(case_no AS VARCHAR) AS case_no FROM {table} \
             WHERE month = '{}' ORDER BY id",
            crate::snapshot::UNMATCHED
        );
        for row in kpi::batches_to_rows(&ctx.sql(&sql).await?.collect().await?) {
            let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
            out.push(UnmatchedChild { table, id: text("id"), case_no: text("case_no") });
        }
    }
    Ok(out)
}
