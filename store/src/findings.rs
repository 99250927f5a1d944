//! Data-quality findings: a field of a stored record that broke its rule.
//! The record is kept (a case that happened is counted whatever is wrong with
//! one of its fields) and each flawed field is recorded here with the rule it
//! broke and its value masked, so the partner can be told and the flaw
//! counted. A newer version of the record replaces its findings: a corrected
//! record clears them.

use chrono::{DateTime, Utc};

use crate::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// One flawed field of a record, as a connector found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flaw {
    /// The partner's field name, e.g. `sqr[0].zjh`.
    pub field: String,
    /// The rule broken: `check_digit`, `length`, `character`, `birth_date`,
    /// `segment`, `unknown_code`, `malformed`, `missing_field`.
    pub rule: &'static str,
    /// What is wrong, for a person.
    pub detail: String,
    /// The value as received, masked where it identifies a person.
    pub value_masked: String,
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFinding {
    /// Connector the record came from.
    pub source: String,
    /// The record's key in its source (a case's `ywh`).
    pub record_key: String,
    /// The flaw.
    pub field: String,
    /// The rule broken.
    pub rule: String,
    /// What is wrong.
    pub detail: String,
    /// The value, masked.
    pub value_masked: String,
    /// When the version carrying it was written.
    pub found_at: DateTime<Utc>,
}

/// Findings counted by source, field and rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingCount {
    /// Connector.
    pub source: String,
    /// Field.
    pub field: String,
    /// Rule.
    pub rule: String,
    /// Records with that flaw now.
    pub records: i64,
}

/// Keys per DELETE statement.
const CHUNK: usize = 500;

impl StoreTx {
    /// Replaces the findings of records just written: every key in `written`
    /// loses its old findings, then each record's current flaws are stored.
    pub async fn replace_data_findings(
        &mut self,
        source: &str,
        written: &[(&str, &[Flaw])],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        for chunk in written.chunks(CHUNK) {
            let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql =
                format!("DELETE FROM data_findings WHERE source = $1 AND record_key IN ({})", placeholders.join(", "));
            on_tx!(self, conn => {
                // Only placeholders are formatted in: the keys are bound.
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(source);
                for (key, _) in chunk {
                    query = query.bind(*key);
                }
                query.execute(conn).await?;
            });
        }
        for (key, flaws) in written {
            for flaw in flaws.iter() {
                on_tx!(self, conn => {
                    sqlx::query(
                        "INSERT INTO data_findings (source, record_key, field, rule, detail, value_masked, found_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (source, record_key, field) DO UPDATE SET rule = excluded.rule, \
                         detail = excluded.detail, value_masked = excluded.value_masked, found_at = excluded.found_at",
                    )
                    .bind(source)
                    .bind(*key)
                    .bind(&flaw.field)
                    .bind(flaw.rule)
                    .bind(&flaw.detail)
                    .bind(&flaw.value_masked)
                    .bind(now)
                    .execute(conn)
                    .await?;
                });
            }
        }
        Ok(())
    }
}

type FindingRow = (String, String, String, String, String, String, DateTime<Utc>);

impl Store {
    /// The latest findings, newest first, of one source or of all.
    pub async fn list_data_findings(&self, source: Option<&str>, limit: i64) -> StoreResult<Vec<DataFinding>> {
        let rows: Vec<FindingRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT source, record_key, field, rule, detail, value_masked, found_at FROM data_findings \
                 WHERE ($1 IS NULL OR source = $1) ORDER BY found_at DESC, id DESC LIMIT $2",
            )
            .bind(source)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(source, record_key, field, rule, detail, value_masked, found_at)| DataFinding {
                source,
                record_key,
                field,
                rule,
                detail,
                value_masked,
                found_at,
            })
            .collect())
    }

    /// Records with each kind of flaw, by source, field and rule.
    pub async fn count_data_findings(&self) -> StoreResult<Vec<FindingCount>> {
        let rows: Vec<(String, String, String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT source, field, rule, COUNT(*) FROM data_findings GROUP BY source, field, rule \
                 ORDER BY source, field, rule",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(source, field, rule, records)| FindingCount { source, field, rule, records })
            .collect())
    }
}
