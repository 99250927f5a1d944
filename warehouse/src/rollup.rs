//! Analysts' common questions answered from the rollups: an analyzer rule that
//! rewrites an aggregate over a table into the same aggregate over its rollup
//! (each row of which counts the rows sharing its dimension values, in its
//! weight column) when that gives exactly the same answer. Three tables have
//! one ([`ROLLUPS`]): `cases` → `case_counts` (weight `cases`),
//! `evaluations` → `evaluation_counts` (weight `evaluations`; `good`, `bad`
//! and `rectified_within_15` summed per row) and `qc_findings` → `qc_counts`
//! (weight `findings`; `corrected_at IS NULL` kept as `open`). The rewrite
//! happens when:
//!
//! - the aggregate reads the table directly (through filters and at most one
//!   alias; no join, no subquery), with plain grouping expressions;
//! - every column it groups by, filters on or aggregates is one of the
//!   rollup's dimensions, or a derived test it keeps (`corrected_at IS NULL`);
//! - every aggregate is `COUNT(*)` (→ `SUM(weight)`), `COUNT(x)`
//!   (→ `SUM(CASE WHEN x IS NOT NULL THEN weight ELSE 0 END)`), `SUM(x)` of an
//!   integer or boolean-cast-to-integer dimension `x` (→ `SUM(CAST(x AS BIGINT) * weight)`),
//!   or `SUM(CAST(m AS INT))` / `SUM(CASE WHEN m THEN 1 ELSE 0 END)` of a
//!   measure `m` the rollup sums (→ `SUM(m)`), none of them `DISTINCT`,
//!   filtered or ordered;
//! - for a child table, the snapshot has no row of it whose case is unknown
//!   (`month=unmatched`, which its rollup leaves out): the session registers
//!   the rule for it only then.
//!
//! Anything else is left alone. The scan is aliased as the table, so the
//! rest of the plan reads the same names, and `EXPLAIN` shows `TableScan:
//! case_counts` (or the child's rollup) where it happened. Without a
//! grouping, a `COUNT` of no rows is 0 where a `SUM` is NULL: a projection
//! above the aggregate turns that NULL into 0.

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

/// A table and the rollup that counts it (written by the refresh: see
/// `export::ROLLUP_SQL`, `EVALUATION_COUNTS_SQL`, `QC_COUNTS_SQL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupSpec {
    /// The table asked about.
    pub table: &'static str,
    /// Its rollup.
    pub rollup: &'static str,
    /// The columns the rollup groups by (the month is its partition).
    pub dimensions: &'static [&'static str],
    /// The rollup's column counting the rows of each group.
    pub weight: &'static str,
    /// Boolean columns of the table the rollup sums per group, under the same name.
    pub measures: &'static [&'static str],
    /// A nullable column of the table whose `IS NULL` the rollup keeps as a
    /// boolean dimension: (column, rollup column).
    pub null_test: Option<(&'static str, &'static str)>,
}

/// The case dimensions a child table's rows carry and its rollup keeps.
const CHILD_CASE_DIMENSIONS: [&str; 8] =
    ["month", "district", "business_type", "phase", "case_channel", "applicant_kind", "in_scope", "phase_live"];

/// [`CHILD_CASE_DIMENSIONS`] followed by a child table's own dimensions `own`
/// (`M` is their count together).
const fn child_dimensions<const N: usize, const M: usize>(own: [&'static str; N]) -> [&'static str; M] {
    assert!(M == CHILD_CASE_DIMENSIONS.len() + N, "M counts the case's dimensions and the child's own");
    let mut out = [""; M];
    let mut i = 0;
    while i < M {
        out[i] = if i < CHILD_CASE_DIMENSIONS.len() {
            CHILD_CASE_DIMENSIONS[i]
        } else {
            own[i - CHILD_CASE_DIMENSIONS.len()]
        };
        i += 1;
    }
    out
}

const EVALUATION_DIMENSIONS: [&str; 9] = child_dimensions(["channel"]);

const QC_DIMENSIONS: [&str; 12] = child_dimensions(["category", "severity", "section", "open"]);

/// Every table with a rollup the rule can answer from.
pub const ROLLUPS: [RollupSpec; 3] = [
    RollupSpec {
        table: "cases",
        rollup: ROLLUP_TABLE,
        dimensions: &ROLLUP_DIMENSIONS,
        weight: "cases",
        measures: &[],
        null_test: None,
    },
    RollupSpec {
        table: "evaluations",
        rollup: "evaluation_counts",
        dimensions: &EVALUATION_DIMENSIONS,
        weight: "evaluations",
        measures: &["good", "bad", "rectified_within_15"],
        null_test: None,
    },
    RollupSpec {
        table: "qc_findings",
        rollup: "qc_counts",
        dimensions: &QC_DIMENSIONS,
        weight: "findings",
        measures: &[],
        null_test: Some(("corrected_at", "open")),
    },
];

/// The rule, holding the snapshot's rollup tables, each with its spec.
pub struct RollupRewrite {
    rollups: Vec<(RollupSpec, Arc<dyn TableProvider>)>,
}

impl std::fmt::Debug for RollupRewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.rollups.iter().map(|(spec, _)| spec.rollup)).finish()
    }
}

impl RollupRewrite {
    /// The rule over `rollups`: each spec's rollup table, as the snapshot has it.
    pub fn new(rollups: Vec<(RollupSpec, Arc<dyn TableProvider>)>) -> RollupRewrite {
        RollupRewrite { rollups }
    }

    fn rewrite(&self, aggregate: &Aggregate) -> Result<Option<LogicalPlan>> {
        if aggregate.group_expr.iter().any(|e| matches!(e, Expr::GroupingSet(_))) {
            return Ok(None);
        }
        // Filters (outermost first) and the alias between the aggregate and the scan.
        let mut filters = Vec::new();
        let mut node = aggregate.input.as_ref();
        let mut alias = None;
        let (spec, provider) = loop {
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
                    let found = self.rollups.iter().find(|(spec, _)| scan.table_name.table() == spec.table);
                    let plain = scan.table_name.schema().is_none_or(|s| s == "public")
                        && scan.filters.is_empty()
                        && scan.fetch.is_none();
                    match found {
                        Some(found) if plain => break found,
                        _ => return Ok(None),
                    }
                }
                _ => return Ok(None),
            }
        };
        let qualifier = alias.clone().unwrap_or_else(|| spec.table.into());
        // `corrected_at IS NULL` becomes the rollup's `open`, in filters and groupings.
        let filters = filters.into_iter().map(|f| kept_null_test(f, spec, &qualifier)).collect::<Result<Vec<_>>>()?;
        let group_expr = aggregate
            .group_expr
            .iter()
            .map(|g| {
                let rewritten = kept_null_test(g.clone(), spec, &qualifier)?;
                Ok(if &rewritten == g { rewritten } else { rewritten.alias(g.schema_name().to_string()) })
            })
            .collect::<Result<Vec<_>>>()?;
        // A volatile expression (`random() < 0.01`) names no column, yet is no dimension filter: it is
        // evaluated once per row, and the rollup has one row for many.
        let eligible = |e: &Expr| {
            !has_subquery(e)
                && !e.is_volatile()
                && e.column_refs().iter().all(|c| spec.dimensions.contains(&c.name.as_str()))
        };
        if !filters.iter().all(eligible) || !group_expr.iter().all(eligible) {
            return Ok(None);
        }
        let weight = Expr::Column(Column::new(Some(qualifier.clone()), spec.weight));
        let input_schema = aggregate.input.schema();
        let group_len = aggregate.group_expr.len();
        let mut aggr_expr = Vec::with_capacity(aggregate.aggr_expr.len());
        let mut counts = Vec::new();
        for (i, expr) in aggregate.aggr_expr.iter().enumerate() {
            let name = aggregate.schema.field(group_len + i).name().clone();
            let Some((rewritten, is_count)) =
                rewrite_aggregate(expr, (&weight, &qualifier), spec, input_schema, &eligible)?
            else {
                return Ok(None);
            };
            aggr_expr.push(rewritten.alias(name.clone()));
            if is_count {
                counts.push(name);
            }
        }
        // The rollup aliased as the scan was, then the same filters, innermost first.
        let scan = LogicalPlanBuilder::scan(spec.rollup, provider_as_source(provider.clone()), None)?.build()?;
        let mut input = LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(scan), qualifier)?);
        for predicate in filters.into_iter().rev() {
            input = LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(input))?);
        }
        let rewritten = LogicalPlan::Aggregate(Aggregate::try_new(Arc::new(input), group_expr, aggr_expr)?);
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

/// `expr` with `column IS NULL` (`IS NOT NULL`) of the spec's null test
/// replaced by the rollup's boolean column (its negation).
fn kept_null_test(expr: Expr, spec: &RollupSpec, qualifier: &datafusion::common::TableReference) -> Result<Expr> {
    let Some((column, kept)) = spec.null_test else { return Ok(expr) };
    let kept = Expr::Column(Column::new(Some(qualifier.clone()), kept));
    let is = |e: &Expr| matches!(e, Expr::Column(c) if c.name == column);
    expr.transform_up(|e| {
        Ok(match &e {
            Expr::IsNull(inner) if is(inner) => Transformed::yes(kept.clone()),
            Expr::IsNotNull(inner) if is(inner) => Transformed::yes(Expr::Not(Box::new(kept.clone()))),
            _ => Transformed::no(e),
        })
    })
    .map(|t| t.data)
}

/// An aggregate over the rollup answering `expr` over the table (and whether
/// it is a count), or `None` when it cannot be answered exactly. `weight` is
/// the rollup's count column, qualified as the scan.
fn rewrite_aggregate(
    expr: &Expr,
    (weight, qualifier): (&Expr, &datafusion::common::TableReference),
    spec: &RollupSpec,
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
            if !is_integer(&arg.get_type(schema)?) {
                return Ok(None);
            }
            Ok(Some((sum(cast(arg.clone(), DataType::Int64) * weight.clone()), false)))
        }
        ("sum", [arg]) => match summed_measure(arg, spec, schema)? {
            Some(measure) => {
                let column = Expr::Column(Column::new(Some(qualifier.clone()), measure));
                Ok(Some((sum(cast(column, DataType::Int64)), false)))
            }
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

fn is_integer(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

/// The measure `arg` sums as 0 or 1 per row, if it is one the rollup sums:
/// `CAST(m AS <integer>)` or `CASE WHEN m THEN 1 ELSE 0 END` of a boolean measure `m`.
fn summed_measure(arg: &Expr, spec: &RollupSpec, schema: &DFSchema) -> Result<Option<&'static str>> {
    let measure = |e: &Expr| match e {
        Expr::Column(c) => spec.measures.iter().copied().find(|m| *m == c.name),
        _ => None,
    };
    let literal = |e: &Expr, want: i64| match e {
        Expr::Literal(value, _) => value.cast_to(&DataType::Int64).ok() == Some(ScalarValue::Int64(Some(want))),
        _ => false,
    };
    // Type coercion may cast again (`CAST(CAST(good AS INT) AS BIGINT)` under SUM).
    let mut peeled = arg;
    while let Expr::Cast(c) = peeled
        && is_integer(c.field.data_type())
        && matches!(c.expr.as_ref(), Expr::Cast(_))
    {
        peeled = c.expr.as_ref();
    }
    Ok(match peeled {
        Expr::Cast(c) if is_integer(c.field.data_type()) => measure(&c.expr),
        Expr::Case(case) if case.expr.is_none() && case.when_then_expr.len() == 1 => {
            let (when_expr, then_expr) = &case.when_then_expr[0];
            let otherwise_zero = case.else_expr.as_deref().is_some_and(|e| literal(e, 0));
            match measure(when_expr) {
                Some(m) if literal(then_expr, 1) && otherwise_zero && is_integer(&arg.get_type(schema)?) => Some(m),
                _ => None,
            }
        }
        _ => None,
    })
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
