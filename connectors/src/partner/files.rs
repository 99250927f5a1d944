//! File drops (前置机): a folder the partner's files land in (by FTP or a
//! shared mount), CSV or XML, each read once, exactly, with its checksum.
//!
//! Files are read in name order, one a page: the cursor is the name of the
//! last file read, and the file (its name, SHA-256 and row count) is recorded
//! in `source_files` in the same transaction as its rows, so a file is
//! loaded exactly once. A file newer than `settle_seconds` may still be
//! uploading and waits. With `checksum_suffix`, a file is read only beside
//! its checksum file (`export-20240502.csv.sha256`), and only if it matches;
//! a mismatch stops the run with the cursor where it was. Drop file names
//! must sort in arrival order (the usual date-stamped names do): a file
//! that lands later with a name sorting before the cursor is not read.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::poll::PageError;

/// `[partners.NAME.files]`: a drop folder.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// The folder.
    pub dir: PathBuf,
    /// Which files: `*` matches any run of characters (`export-*.csv`).
    #[serde(default = "any")]
    pub pattern: String,
    /// CSV or XML.
    #[serde(default = "csv")]
    pub format: FileFormat,
    /// `utf-8` (default), `gbk` or `gb18030`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// XML: the list element and the row element (`LoanList/Loan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// CSV: the field separator.
    #[serde(default = "comma")]
    pub delimiter: char,
    /// CSV: the first line names the columns (else they are `c1`, `c2` …).
    #[serde(default = "yes")]
    pub header: bool,
    /// A file modified more recently than this may still be uploading.
    #[serde(default = "settle")]
    pub settle_seconds: u64,
    /// A checksum file beside each file (`.sha256`: hex SHA-256, first word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_suffix: Option<String>,
}

/// A drop file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Comma (or `delimiter`) separated, one record a line.
    Csv,
    /// XML rows.
    Xml,
}

fn any() -> String {
    "*".into()
}
fn csv() -> FileFormat {
    FileFormat::Csv
}
fn comma() -> char {
    ','
}
fn yes() -> bool {
    true
}
fn settle() -> u64 {
    30
}

/// Whether `name` matches `pattern` (`*` any run of characters).
pub fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name.ends_with(last) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// One file, read.
#[derive(Debug)]
pub struct DropFile {
    /// Its name.
    pub name: String,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its records as JSON objects, each with its raw text and where it was.
    pub records: Vec<(Value, Vec<u8>, String)>,
    /// Whether another file waits after it.
    pub more: bool,
}

/// A drop folder.
#[derive(Debug, Clone)]
pub struct Files {
    config: FilesConfig,
}

impl Files {
    /// Checks the configuration (the folder is read at each run).
    pub fn new(config: FilesConfig) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        if let Some(encoding) = &config.encoding
            && super::http::encoding_of(encoding).is_none()
        {
            problems.push(format!("encoding {encoding:?} is not utf-8, gbk or gb18030"));
        }
        if config.format == FileFormat::Xml && !config.records.as_deref().is_some_and(|r| r.contains('/')) {
            problems.push("XML files need records = \"List/Row\"".into());
        }
        if config.pattern.contains('/') {
            problems.push(format!("pattern {:?} names files, not folders", config.pattern));
        }
        if problems.is_empty() { Ok(Self { config }) } else { Err(problems) }
    }

    /// Its configuration.
    pub fn config(&self) -> &FilesConfig {
        &self.config
    }

    /// The matching files, by name, that have settled.
    pub fn list(&self, now: SystemTime) -> Result<Vec<String>, PageError> {
        let dir = &self.config.dir;
        let entries =
            std::fs::read_dir(dir).map_err(|e| PageError::Unreadable(format!("drop folder {}: {e}", dir.display())))?;
        let settle = Duration::from_secs(self.config.settle_seconds);
        let mut names = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let suffix = self.config.checksum_suffix.as_deref();
            if !matches(&self.config.pattern, &name) || suffix.is_some_and(|s| name.ends_with(s)) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let settled =
                meta.modified().ok().and_then(|m| now.duration_since(m).ok()).is_some_and(|age| age >= settle);
            if meta.is_file() && settled {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The first settled file after `after` (by name), read and split into records.
    pub fn next(&self, after: Option<&str>, now: SystemTime) -> Result<Option<DropFile>, PageError> {
        let names = self.list(now)?;
        let mut waiting = names.into_iter().filter(|n| after.is_none_or(|a| n.as_str() > a));
        let Some(name) = waiting.next() else { return Ok(None) };
        let more = waiting.next().is_some();
        let path = self.config.dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|e| PageError::Unreadable(format!("{}: {e}", path.display())))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(suffix) = &self.config.checksum_suffix {
            let sidecar = PathBuf::from(format!("{}{suffix}", path.display()));
            let expected = std::fs::read_to_string(&sidecar)
                .map_err(|e| PageError::Unreadable(format!("{name}: checksum file {}: {e}", sidecar.display())))?;
            let expected = expected.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
            if expected != sha256 {
                return Err(PageError::Unreadable(format!(
                    "{name}: SHA-256 {sha256} does not match its checksum file ({expected}); not read"
                )));
            }
        }
        let records = self.split(&name, &bytes)?;
        Ok(Some(DropFile { name, sha256, records, more }))
    }

    fn decode<'a>(&self, name: &str, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, str>, PageError> {
        match self.config.encoding.as_deref().and_then(super::http::encoding_of).filter(|e| *e != encoding_rs::UTF_8) {
            None => std::str::from_utf8(bytes)
                .map(|s| std::borrow::Cow::Borrowed(s.trim_start_matches('\u{feff}')))
                .map_err(|_| PageError::Unreadable(format!("{name} is not valid UTF-8"))),
            Some(encoding) => encoding
                .decode_without_bom_handling_and_without_replacement(bytes)
                .ok_or_else(|| PageError::Unreadable(format!("{name} is not valid {}", encoding.name()))),
        }
    }

    fn split(&self, name: &str, bytes: &[u8]) -> Result<Vec<(Value, Vec<u8>, String)>, PageError> {
        let text = self.decode(name, bytes)?;
        match self.config.format {
            FileFormat::Xml => {
                let records = self.config.records.as_deref().unwrap_or_default();
                let (list, row) = records.split_once('/').unwrap_or(("", records));
                let parsed = crate::xmlrows::split(&text, list, row)?;
                Ok(parsed
                    .rows
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let value = match r.fields {
                            Ok(fields) => {
                                Value::Object(fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
                            }
                            Err(e) => Value::String(format!("unreadable row: {e}")),
                        };
                        (value.clone(), kept(&value, r.raw.into_bytes()), format!("{name} 第 {} 条", i + 1))
                    })
                    .collect())
            }
            FileFormat::Csv => {
                let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
                let columns: Vec<String> = if self.config.header {
                    match lines.next() {
                        Some((_, header)) => split_line(header, self.config.delimiter)
                            .map_err(|(_, why)| PageError::Unreadable(format!("{name}: header: {why}")))?
                            .into_iter()
                            .map(|c| c.trim().to_owned())
                            .collect(),
                        None => return Ok(Vec::new()),
                    }
                } else {
                    Vec::new()
                };
                Ok(lines
                    .map(|(i, line)| {
                        let value = match split_line(line, self.config.delimiter) {
                            Ok(fields) => {
                                let mut row = Map::new();
                                for (j, field) in fields.into_iter().enumerate() {
                                    let column = columns.get(j).cloned().unwrap_or_else(|| format!("c{}", j + 1));
                                    row.insert(column, Value::String(field));
                                }
                                Value::Object(row)
                            }
                            Err((_, why)) => Value::String(format!("unreadable line: {why}")),
                        };
                        (value.clone(), kept(&value, line.as_bytes().to_vec()), format!("{name} 第 {} 行", i + 1))
                    })
                    .collect())
            }
        }
    }
}

/// What a quarantined row keeps: its columns as JSON when it could be split
/// (a replay maps them again, as for a table's row), else the raw text.
fn kept(value: &Value, raw: Vec<u8>) -> Vec<u8> {
    match value {
        Value::Object(_) => serde_json::to_vec(value).unwrap_or(raw),
        _ => raw,
    }
}

/// A CSV line split on `delimiter` (quotes as RFC 4180).
fn split_line(line: &str, delimiter: char) -> Result<Vec<String>, crate::registry::RowError> {
    if delimiter == ',' {
        return crate::housing::split_csv(line);
    }
    Ok(line.split(delimiter).map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("export-*.csv", "export-20240502.csv"));
        assert!(!matches("export-*.csv", "export-20240502.csv.sha256"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXcYYb"));
        assert!(matches("exact.xml", "exact.xml"));
    }
}
