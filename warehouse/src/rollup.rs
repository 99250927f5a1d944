//! Analysts' common questions answered from the rollup: an analyzer rule that
//! rewrites an aggregate over `cases` into the same aggregate over
//! `case_counts` (each row of which counts the cases sharing its dimension
//! values, column `cases`) when that gives exactly the same answer:
//!
//! - the aggregate reads `cases` directly (through filters and at most one
//!   alias; no join, no subquery), with plain grouping expressions;
//! - every column it groups by, filters on or aggregates is one of the
//!   rollup's dimensions ([`ROLLUP_DIMENSIONS`]);
//! - every aggregate is `COUNT(*)` (→ `SUM(cases)`), `COUNT(x)`
//!   (→ `SUM(CASE WHEN x IS NOT NULL THEN cases ELSE 0 END)`) or `SUM(x)` of an
//!   integer or boolean-cast-to-integer `x` (→ `SUM(CAST(x AS BIGINT) * cases)`),
//!   none of them `DISTINCT`, filtered or ordered.
//!
//! Anything else is left alone. The scan is aliased `cases`, so the rest of
//! the plan reads the same names, and `EXPLAIN` shows `TableScan:
//! case_counts` where it happened. Without a grouping, a `COUNT` of no rows is
//! 0 where a `SUM` is NULL: a projection above the aggregate turns that NULL
//! into 0.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, ExprSchemable, Filter, LogicalPlan, LogicalPlanBuilder, Projection, SubqueryAlias, cast, lit, when,
};
use datafusion::optimizer::AnalyzerRule;

use crate::session::ROLLUP_TABLE;

/// The columns of `cases` that `case_counts` keeps (the month is its partition).
pub const ROLLUP_DIMENSIONS: [&str; 13] = [
    "business_type",
    "phase",
    "channel",
    "district",
    "applicant_kind",
    "in_scope",
    "phase_live",
    "online",
    "end_to_end",
    "issues_certificate",
    "delivery",
    "on_time",
    "month",
];

/// The rule, holding the snapshot's `case_counts` table.
pub struct RollupRewrite {
    rollup: Arc<dyn TableProvider>,
}

impl std::fmt::Debug for RollupRewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RollupRewrite")
    }
}

impl RollupRewrite {
    /// The rule over `rollup`, the snapshot's `case_counts`.
    pub fn new(rollup: Arc<dyn TableProvider>) -> RollupRewrite {
        RollupRewrite { rollup }
    }

    fn rewrite(&self, aggregate: &Aggregate) -> Result<Option<LogicalPlan>> {
        if aggregate.group_expr.iter().any(|e| matches!(e, Expr::GroupingSet(_))) {
            return Ok(None);
        }
        // Filters (outermost first) and the alias between the aggregate and the scan.
        let mut filters = Vec::new();
        let mut node = aggregate.input.as_ref();
        let mut alias = None;
        loop {
            match node {
                LogicalPlan::Filter(f) => {
                    filters.push(f.predicate.clone());
                    node = f.input.as_ref();
                }
                LogicalPlan::SubqueryAlias(a) if alias.is_none() => {
                    alias = Some(a.alias.clone());
                    node = a.input.as_ref();
                }
                LogicalPlan::TableScan(scan) => {
                    let plain = scan.table_name.table() == "cases"
                        && scan.table_name.schema().is_none_or(|s| s == "public")
                        && scan.filters.is_empty()
                        && scan.fetch.is_none();
                    if !plain {
                        return Ok(None);
                    }
                    break;
                }
                _ => return Ok(None),
            }
        }
        // A volatile expression (`random() < 0.01`) names no column, yet is no dimension filter: it is
        // evaluated once per case, and the rollup has one row for many.
        let eligible = |e: &Expr| {
            !has_subquery(e)
                && !e.is_volatile()
                && e.column_refs().iter().all(|c| ROLLUP_DIMENSIONS.contains(&c.name.as_str()))
        };
        if !filters.iter().all(eligible) || !aggregate.group_expr.iter().all(eligible) {
            return Ok(None);
        }
        let qualifier = alias.clone().unwrap_or_else(|| "cases".into());
        let weight = Expr::Column(Column::new(Some(qualifier.clone()), "cases"));
        let input_schema = aggregate.input.schema();
        let group_len = aggregate.group_expr.len();
        let mut aggr_expr = Vec::with_capacity(aggregate.aggr_expr.len());
        let mut counts = Vec::new();
        for (i, expr) in aggregate.aggr_expr.iter().enumerate() {
            let name = aggregate.schema.field(group_len + i).name().clone();
            let Some((rewritten, is_count)) = rewrite_aggregate(expr, &weight, input_schema, &eligible)? else {
                return Ok(None);
            };
            aggr_expr.push(rewritten.alias(name.clone()));
            if is_count {
                counts.push(name);
            }
        }
        // The rollup aliased as the scan was, then the same filters, innermost first.
        let scan = LogicalPlanBuilder::scan(ROLLUP_TABLE, provider_as_source(self.rollup.clone()), None)?.build()?;
        let mut input = LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(scan), qualifier)?);
        for predicate in filters.into_iter().rev() {
            input = LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(input))?);
        }
        let rewritten =
            LogicalPlan::Aggregate(Aggregate::try_new(Arc::new(input), aggregate.group_expr.clone(), aggr_expr)?);
        if !aggregate.group_expr.is_empty() || counts.is_empty() {
            return Ok(Some(rewritten));
        }
        // No grouping: one row even without input, where COUNT says 0 and SUM says NULL.
        let exprs = rewritten
            .schema()
            .iter()
            .map(|(q, field)| {
                let column = Expr::Column(Column::new(q.cloned(), field.name()));
                if counts.contains(field.name()) {
                    when(column.clone().is_null(), lit(0i64)).otherwise(column).map(|e| e.alias(field.name()))
                } else {
                    Ok(column)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(rewritten))?)))
    }
}

/// An aggregate over the rollup answering `expr` over `cases` (and whether it
/// is a count), or `None` when it cannot be answered exactly.
fn rewrite_aggregate(
    expr: &Expr,
    weight: &Expr,
    schema: &DFSchema,
    eligible: &dyn Fn(&Expr) -> bool,
) -> Result<Option<(Expr, bool)>> {
    let inner = match expr {
        Expr::Alias(alias) => alias.expr.as_ref(),
        other => other,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = inner else { return Ok(None) };
    if params.distinct || params.filter.is_some() || !params.order_by.is_empty() || params.null_treatment.is_some() {
        return Ok(None);
    }
    let sum = |arg: Expr| {
        Expr::AggregateFunction(AggregateFunction::new_udf(func_sum(), vec![arg], false, None, vec![], None))
    };
    match (func.name(), params.args.as_slice()) {
        ("count", []) => Ok(Some((sum(weight.clone()), true))),
        ("count", [Expr::Literal(value, _)]) if !value.is_null() => Ok(Some((sum(weight.clone()), true))),
        ("count", [arg]) if eligible(arg) => {
            let counted =
                when(arg.clone().is_not_null(), weight.clone()).otherwise(lit(ScalarValue::Int64(Some(0))))?;
            Ok(Some((sum(counted), true)))
        }
        ("sum", [arg]) if eligible(arg) => {
            let integer = matches!(
                arg.get_type(schema)?,
                DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::UInt8
                    | DataType::UInt16
                    | DataType::UInt32
            );
            if !integer {
                return Ok(None);
            }
            Ok(Some((sum(cast(arg.clone(), DataType::Int64) * weight.clone()), false)))
        }
        _ => Ok(None),
    }
}

fn func_sum() -> Arc<datafusion::logical_expr::AggregateUDF> {
    datafusion::functions_aggregate::sum::sum_udaf()
}

fn has_subquery(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)))).unwrap_or(true)
}

impl AnalyzerRule for RollupRewrite {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up(|node| {
            if let LogicalPlan::Aggregate(aggregate) = &node
                && let Some(rewritten) = self.rewrite(aggregate)?
            {
                return Ok(Transformed::yes(rewritten));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "rollup_rewrite"
    }
}
