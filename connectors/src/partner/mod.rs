//! Partners by configuration: one engine, many configurations.
//!
//! A [`Partner`] is a [`config::PartnerConfig`] made runnable: its access (an
//! exchange table through [`table`], or an HTTP feed through [`http`]) reads
//! raw rows, its [`mapping::Mapping`] turns each into one of our records, and
//! [`crate::poll::poll_once`] does the rest as for every feed: a page and its
//! cursor in one transaction, bad rows to quarantine, findings beside kept
//! records. Our own registry feeds and banks run this way too, from adapter
//! files shipped in `connectors/adapters/` ([`shipped`]).

pub mod config;
pub mod days;
pub mod files;
pub mod http;
pub mod inspect;
pub mod mapping;
pub mod table;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::Value;

use self::config::PartnerConfig;
use self::http::{Http, HttpPosition};
use self::mapping::Mapping;
use self::table::{Table, TablePosition, TextRow};
use crate::poll::{BadRow, Ended, Mark, Page, PageError, Record, Source};

/// How a partner's rows are reached.
#[derive(Debug)]
enum Access {
    Table(Table),
    Http(Http),
    Files(files::Files),
}

/// A configured partner, ready to run.
#[derive(Debug, Clone)]
pub struct Partner {
    name: String,
    config: Arc<PartnerConfig>,
    mapping: Arc<Mapping>,
    access: Arc<Access>,
}

/// Why a partner's configuration cannot run: every problem, each naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("partners.{name}: {}", problems.join("; "))]
pub struct ConfigError {
    /// The partner.
    pub name: String,
    /// What is wrong.
    pub problems: Vec<String>,
}

fn mappings() -> &'static RwLock<HashMap<String, Arc<Mapping>>> {
    static MAPPINGS: OnceLock<RwLock<HashMap<String, Arc<Mapping>>>> = OnceLock::new();
    MAPPINGS.get_or_init(Default::default)
}

/// The mapping of a configured partner by connector name (for replaying its
/// quarantined rows), if one was built in this process.
pub fn mapping_of(name: &str) -> Option<Arc<Mapping>> {
    mappings().read().ok()?.get(name).cloned()
}

impl Partner {
    /// Checks `config` and builds the partner named `name` (no connection yet).
    pub fn new(name: &str, config: PartnerConfig) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        if let Err(e) = crate::schedule::Schedule::parse(&config.schedule) {
            problems.push(format!("schedule: {e}"));
        }
        let source = match config.kind.fixed_source() {
            Some(fixed) => fixed.to_owned(),
            None => config.source.clone().unwrap_or_else(|| format!("bank:{name}")),
        };
        let mapping = match Mapping::new(config.kind, &source, &config.fields, &config.codes) {
            Ok(m) => Some(m),
            Err(found) => {
                problems.extend(found.into_iter().map(|p| format!("fields.{p}")));
                None
            }
        };
        let access = match (&config.table, &config.http) {
            (None, None) if config.files.is_some() => {
                let files = config.files.clone().unwrap_or_else(|| unreachable!("checked just above"));
                files::Files::new(files)
                    .map(Access::Files)
                    .map_err(|e| e.into_iter().map(|p| format!("files: {p}")).collect::<Vec<_>>())
            }
            _ if config.files.is_some() => Err(vec!["give one of [table], [http] and [files]".to_owned()]),
            (Some(table), None) => {
                let mapped = mapping::referenced_columns(&config.fields);
                Table::new(table.clone(), mapped)
                    .map(Access::Table)
                    .map_err(|e| e.into_iter().map(|p| format!("table: {p}")).collect::<Vec<_>>())
            }
            (None, Some(http)) => Http::new(http.clone())
                .map(Access::Http)
                .map_err(|e| e.into_iter().map(|p| format!("http: {p}")).collect::<Vec<_>>()),
            (Some(_), Some(_)) => Err(vec!["give [table] or [http], not both".to_owned()]),
            (None, None) => Err(vec!["give where the rows are: a [table], [http] or [files] section".to_owned()]),
        };
        let access = match access {
            Ok(a) => Some(a),
            Err(found) => {
                problems.extend(found);
                None
            }
        };
        match (mapping, access) {
            (Some(mapping), Some(access)) if problems.is_empty() => {
                let mapping = Arc::new(mapping);
                if let Ok(mut all) = mappings().write() {
                    all.insert(name.to_owned(), mapping.clone());
                }
                Ok(Self { name: name.to_owned(), config: Arc::new(config), mapping, access: Arc::new(access) })
            }
            _ => Err(ConfigError { name: name.to_owned(), problems }),
        }
    }

    /// The same partner with other retries and extra query parameters for an
    /// HTTP feed (a page size); an exchange table is left as it is.
    pub fn with_http(self, policy: crate::fetch::RetryPolicy, query: &[(&str, &str)]) -> Self {
        let tuned = match self.access.as_ref() {
            Access::Http(http) => http.tuned(policy, query),
            Access::Table(_) | Access::Files(_) => return self,
        };
        Self { access: Arc::new(Access::Http(tuned)), ..self }
    }

    /// Its configuration.
    pub fn config(&self) -> &PartnerConfig {
        &self.config
    }

    /// Its mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The exchange table, if it reads one.
    pub fn table(&self) -> Option<&Table> {
        match self.access.as_ref() {
            Access::Table(t) => Some(t),
            Access::Http(_) | Access::Files(_) => None,
        }
    }

    /// The HTTP feed, if it reads one.
    pub fn http(&self) -> Option<&Http> {
        match self.access.as_ref() {
            Access::Http(h) => Some(h),
            Access::Table(_) | Access::Files(_) => None,
        }
    }

    /// The drop folder, if it reads one.
    pub fn files(&self) -> Option<&files::Files> {
        match self.access.as_ref() {
            Access::Files(f) => Some(f),
            Access::Table(_) | Access::Http(_) => None,
        }
    }

    /// Maps one raw row: the record or the bad row (with `position` and the raw bytes).
    pub fn map_row(&self, row: &Value, raw: &[u8], position: &str) -> Result<Record, BadRow> {
        self.mapping.record(row).map_err(|(reason_code, reason)| BadRow {
            position: position.to_owned(),
            reason_code,
            reason,
            raw: raw.to_vec(),
        })
    }

    /// The raw rows of the first page from the start (for `partner map`), at most `limit`.
    pub async fn sample(&self, limit: usize) -> Result<Vec<(Value, Vec<u8>, String)>, PageError> {
        match self.access.as_ref() {
            Access::Table(table) => {
                let rows = table.peek(u32::try_from(limit).unwrap_or(u32::MAX)).await?;
                Ok(rows.into_iter().map(|row| self.table_row(table, row)).collect())
            }
            Access::Files(files) => {
                let file = files.next(None, std::time::SystemTime::now())?;
                Ok(file.map(|f| f.records.into_iter().take(limit).collect()).unwrap_or_default())
            }
            Access::Http(http) => {
                let at = HttpPosition::default();
                let page = http.read(&at).await?;
                let place = at.describe();
                Ok(page
                    .records
                    .into_iter()
                    .take(limit)
                    .enumerate()
                    .map(|(i, (value, raw))| (value, raw, format!("{place}第 {} 条", i + 1)))
                    .collect())
            }
        }
    }

    fn table_row(&self, table: &Table, row: TextRow) -> (Value, Vec<u8>, String) {
        let cfg = table.config();
        let mut position = format!("表 {} 键 {}", cfg.table, table.key_of(&row));
        if let Some(cursor) = &cfg.cursor {
            let value = row.columns.get(cursor).and_then(Value::as_str).unwrap_or_default();
            position.push_str(&format!("（{cursor} {value}）"));
        }
        let value = Value::Object(row.columns);
        let raw = value.to_string().into_bytes();
        (value, raw, position)
    }
}

impl Source for Partner {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch_page(&self, cursor: Option<&str>) -> Result<Page, PageError> {
        match self.access.as_ref() {
            Access::Table(table) => {
                let at = TablePosition::parse(cursor)?;
                let read = table.read(&at).await?;
                let sync = table.config().mode == config::ReadMode::SyncFlag;
                let mut page = Page::new(Vec::with_capacity(read.rows.len()), read.next.render(), read.has_more);
                for row in read.rows {
                    let key = table.key_of(&row);
                    let version = table.version_of(&row);
                    let delete = table.is_delete(&row);
                    let (value, raw, position) = self.table_row(table, row);
                    let mut mapped = self.map_row(&value, &raw, &position);
                    if delete {
                        mapped = mapped.and_then(|record| {
                            mapping::ended(record).ok_or_else(|| BadRow {
                                position: position.clone(),
                                reason_code: "unsupported_delete",
                                reason: format!(
                                    "the partner deleted this {} ({}), which has no ended state here: kept for inspection",
                                    self.config.kind.label(),
                                    self.config.kind.name()
                                ),
                                raw: raw.clone(),
                            })
                        });
                        if mapped.is_ok() {
                            page.ended.push(Ended { kind: self.config.kind.name(), key: key.clone(), position });
                        }
                    }
                    if sync {
                        let error = mapped.as_ref().err().map(|bad| format!("{}: {}", bad.reason_code, bad.reason));
                        page.marks.push(Mark { key, version, error });
                    }
                    page.rows.push(mapped);
                }
                Ok(page)
            }
            Access::Files(files) => {
                let after = cursor.filter(|c| !c.is_empty());
                let Some(file) = files.next(after, std::time::SystemTime::now())? else {
                    return Ok(Page::new(Vec::new(), after.unwrap_or_default().to_owned(), false));
                };
                let rows: Vec<_> =
                    file.records.iter().map(|(value, raw, position)| self.map_row(value, raw, position)).collect();
                let source_file = store::records::SourceFile {
                    source: self.name.clone(),
                    file_name: file.name.clone(),
                    sha256: file.sha256,
                    row_count: i64::try_from(rows.len()).unwrap_or(i64::MAX),
                };
                Ok(Page { file: Some(source_file), ..Page::new(rows, file.name, file.more) })
            }
            Access::Http(http) => {
                let at = HttpPosition::parse(cursor);
                let read = http.read(&at).await.map_err(|e| e.from_where(&self.name))?;
                let place = at.describe();
                let rows = read
                    .records
                    .iter()
                    .enumerate()
                    .map(|(i, (value, raw))| self.map_row(value, raw, &format!("{place}第 {} 条", i + 1)))
                    .collect();
                Ok(Page::new(rows, read.next.render(), read.has_more))
            }
        }
    }

    async fn after_page(&self, marks: &[Mark]) -> Result<(), PageError> {
        match self.access.as_ref() {
            Access::Table(table) => table.mark(marks).await.map(|_| ()),
            Access::Http(_) | Access::Files(_) => Ok(()),
        }
    }
}

/// The adapter files shipped for our own partners, by name: the registry's
/// three feeds and a bank's JSON feed, in the same form a new partner's
/// section takes (`{base_url}` is the configured base URL).
pub mod shipped {
    /// The registry's case feed.
    pub const REGISTRY_CASES: &str = include_str!("../../adapters/registry-cases.toml");
    /// The registry's QC findings.
    pub const REGISTRY_QC: &str = include_str!("../../adapters/registry-qc.toml");
    /// The registry's evaluations.
    pub const REGISTRY_EVALUATIONS: &str = include_str!("../../adapters/registry-evaluations.toml");
    /// A bank's mortgage applications (our bank JSON contract).
    pub const BANK: &str = include_str!("../../adapters/bank.toml");

    /// An adapter file with its `{base_url}` and schedule filled in, parsed.
    pub fn config(text: &str, base_url: &str, schedule: &str) -> Result<super::PartnerConfig, String> {
        let text = text.replace("{base_url}", base_url.trim_end_matches('/'));
        let mut value: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
        value.insert("schedule".into(), toml::Value::String(schedule.to_owned()));
        value.try_into().map_err(|e: toml::de::Error| e.to_string())
    }
}
