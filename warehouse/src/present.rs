//! A snapshot's files must be there when a query reads them.
//!
//! A Parquet table over a directory lists its files when a query is planned
//! for execution, and DataFusion's local object store lists a directory that
//! no longer exists as empty: a statement planned against a snapshot that a
//! refresh has since removed would answer `COUNT(*) = 0` with no error.
//! [`Present`] wraps such a table: its scan first checks that the directory
//! is still there and fails, naming it, when it is not. Everything else
//! (schema, filter pushdown, statistics, the scan itself) is the wrapped
//! table's.
//!
//! Only local sessions wrap their tables: a Ballista session sends its plans
//! to a scheduler, whose codec knows the Parquet table and not this wrapper
//! (see [`Distributed`]).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

/// Marks a session whose plans run elsewhere (Ballista): its tables are not wrapped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Distributed;

/// A table whose directory must exist when it is scanned.
#[derive(Debug)]
pub struct Present {
    inner: Arc<dyn TableProvider>,
    dir: PathBuf,
}

impl Present {
    /// Wraps `inner`, the table over `dir`.
    pub fn new(inner: Arc<dyn TableProvider>, dir: PathBuf) -> Self {
        Present { inner, dir }
    }

    fn check(&self) -> Result<()> {
        match std::fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(missing(&self.dir, "is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(missing(&self.dir, "is gone (a later refresh removed the snapshot)"))
            }
            Err(e) => Err(missing(&self.dir, &e.to_string())),
        }
    }
}

/// The error of a scan whose files are missing.
fn missing(dir: &std::path::Path, why: &str) -> DataFusionError {
    DataFusionError::Execution(format!(
        "the snapshot's files are missing: {} {why}; ask again to read the current snapshot",
        dir.display()
    ))
}

#[async_trait]
impl TableProvider for Present {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.check()?;
        self.inner.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(&self, state: &dyn Session, args: ScanArgs<'a>) -> Result<ScanResult> {
        self.check()?;
        self.inner.scan_with_args(state, args).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }
}
