//! The DataFusion session: one place that sets partitions, batch size and
//! Parquet pruning for every query the warehouse runs.

use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;

/// Builds a session for warehouse queries: Parquet predicate and page-index
/// pruning on, information schema on (for the analyst console), `target_partitions`
/// set from the machine's cores unless given.
pub fn new_session(target_partitions: Option<usize>) -> SessionContext {
    let mut config = SessionConfig::new().with_information_schema(true).with_parquet_pruning(true);
    if let Some(partitions) = target_partitions {
        config = config.with_target_partitions(partitions.max(1));
    }
    config.options_mut().execution.parquet.enable_page_index = true;
    config.options_mut().execution.parquet.pushdown_filters = true;
    SessionContext::new_with_config(config)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int64Array;

    use super::*;

    #[tokio::test]
    async fn the_session_runs_sql() {
        let ctx = new_session(Some(2));
        let batches = ctx.sql("SELECT 40 + 2 AS answer").await.expect("plan").collect().await.expect("run");
        let column = batches[0].column(0).as_any().downcast_ref::<Int64Array>().expect("int64");
        assert_eq!(column.value(0), 42);
        assert_eq!(ctx.state().config().target_partitions(), 2);
    }
}
