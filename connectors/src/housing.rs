//! The housing authority's daily contract-filing exports (`docs/partners.md`
//! §2): one immutable GBK CSV file per day, listed with its SHA-256 and row
//! count. Each file is a page: checked against its listing (a mismatch leaves
//! the cursor where it was), decoded line by line without replacement (a line
//! that is not GBK is quarantined, never guessed), and recorded in
//! `source_files` in the transaction that loads it, so it is loaded exactly
//! once. The cursor is the name of the last file loaded (names sort by day).

use chrono::{DateTime, Utc};
use domain::ident::{CreditCode, UnitNo};
use serde_json::Value;
use sha2::{Digest, Sha256};
use store::records::{ContractFiling, SourceFile};

use crate::fetch::{self, RetryPolicy};
use crate::poll::{BadRow, Page, PageError, Record, Source};
use crate::registry::{RowError, kept_party_id};
use store::findings::Flaw;

/// The source name filings carry.
pub const SOURCE: &str = "housing";

/// The header every export starts with.
pub const HEADER: &str =
    "合同备案号,项目名称,开发企业,开发企业信用代码,不动产单元号,买受人,买受人证件号,合同金额,建筑面积,备案时间,状态";

/// The housing authority's export feed.
#[derive(Debug, Clone)]
pub struct Housing {
    /// Connector name.
    pub name: String,
    /// Base URL, e.g. `http://host/housing/v1`.
    pub base_url: String,
    /// Retries.
    pub policy: RetryPolicy,
    /// HTTP client.
    pub client: reqwest::Client,
}

impl Housing {
    /// A feed with default retries.
    pub fn new(name: &str, base_url: &str) -> Self {
        Self {
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            policy: RetryPolicy::default(),
            client: crate::fetch::client(),
        }
    }
}

/// One entry of the export listing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    file: String,
    rows: usize,
    sha256: String,
}

fn listing(body: &[u8]) -> Result<Vec<Listed>, PageError> {
    let unreadable = |why: &str| PageError::Unreadable(format!("export listing {why}"));
    let value: Value = serde_json::from_slice(body).map_err(|e| unreadable(&format!("is not JSON: {e}")))?;
    let entries = value.as_array().ok_or_else(|| unreadable("is not an array"))?;
    let mut listed = Vec::with_capacity(entries.len());
    for entry in entries {
        let file = entry["file"].as_str().ok_or_else(|| unreadable("entry without file"))?;
        if file.contains('/') || file.contains("..") {
            return Err(unreadable(&format!("names an unsafe file {file:?}")));
        }
        let rows = entry["rows"].as_u64().ok_or_else(|| unreadable("entry without rows"))?;
        let sha256 = entry["sha256"].as_str().ok_or_else(|| unreadable("entry without sha256"))?;
        listed.push(Listed {
            file: file.to_owned(),
            rows: usize::try_from(rows).unwrap_or(usize::MAX),
            sha256: sha256.to_ascii_lowercase(),
        });
    }
    listed.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(listed)
}

/// Splits one CSV line into fields (RFC 4180 quoting).
pub(crate) fn split_csv(line: &str) -> Result<Vec<String>, RowError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err(("malformed", "a quoted field is not closed".to_owned()));
    }
    fields.push(field);
    Ok(fields)
}

/// An amount in yuan with at most two decimals, as exact fen.
pub(crate) fn yuan_to_cents(text: &str, field: &str) -> Result<i64, RowError> {
    let bad = || ("malformed", format!("{field} {text:?} is not an amount in yuan"));
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    if whole.is_empty() || fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    whole.checked_mul(100).and_then(|w| w.checked_add(fraction)).ok_or_else(bad)
}

/// A row's field `text` in `format`, China time; the error names the field.
pub(crate) fn china_time_field(text: &str, field: &str, format: &str) -> Result<DateTime<Utc>, RowError> {
    domain::time::parse_china(text, format)
        .ok_or_else(|| ("malformed", format!("{field} {text:?} is not a time ({format})")))
}

/// Validates one data line of an export.
/// A buyer's ID failing its check is a flaw: the filing is kept with the number masked.
pub fn parse_filing(line: &str, file: &str) -> Result<(ContractFiling, Vec<Flaw>), RowError> {
    let fields = split_csv(line)?;
    if fields.len() != 11 {
        return Err(("malformed", format!("{} fields, expected 11", fields.len())));
    }
    let field = |i: usize, name: &str| -> Result<&str, RowError> {
        let value = fields[i].trim();
        if value.is_empty() { Err(("missing_field", format!("missing field {name}"))) } else { Ok(value) }
    };
    let filing_no = field(0, "合同备案号")?;
    let developer_credit_code = field(3, "开发企业信用代码")?;
    let developer_credit_code = CreditCode::parse(developer_credit_code)
        .map_err(|e| ("bad_identifier", format!("开发企业信用代码: {e}")))?
        .as_str()
        .to_owned();
    let unit = field(4, "不动产单元号")?;
    let unit_no = UnitNo::parse(unit).map_err(|e| ("bad_identifier", format!("不动产单元号 {unit:?}: {e}")))?;
    let buyer_id = field(6, "买受人证件号")?;
    let mut flaws = Vec::new();
    let buyer_id_no = kept_party_id(buyer_id, "买受人证件号", &mut flaws);
    let at = china_time_field(field(9, "备案时间")?, "备案时间", "%Y-%m-%d %H:%M:%S")?;
    let status = match field(10, "状态")? {
        "备案" => "filed",
        "注销" => "cancelled",
        other => return Err(("unknown_code", format!("状态 {other:?} is not 备案 or 注销"))),
    };
    Ok((
        ContractFiling {
            source: SOURCE.into(),
            filing_no: filing_no.to_owned(),
            developer_name: field(2, "开发企业")?.to_owned(),
            developer_credit_code,
            buyer_name: field(5, "买受人")?.to_owned(),
            buyer_id_no,
            unit_no: unit_no.as_str().to_owned(),
            price_cents: yuan_to_cents(field(7, "合同金额")?, "合同金额")?,
            filed_at: at,
            status: status.into(),
            source_file: Some(file.to_owned()),
            source_updated_at: at,
        },
        flaws,
    ))
}

/// Checks a downloaded export against its listing and turns its lines into rows.
fn parse_export(listed: &Listed, bytes: &[u8]) -> Result<Vec<Result<Record, BadRow>>, PageError> {
    let digest = hex::encode(Sha256::digest(bytes));
    if digest != listed.sha256 {
        return Err(PageError::Unreadable(format!(
            "{}: SHA-256 {digest} does not match the listing's {}",
            listed.file, listed.sha256
        )));
    }
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let Some((header, data)) = lines.split_first() else {
        return Err(PageError::Unreadable(format!("{}: empty file, not even a header", listed.file)));
    };
    let header = encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(header);
    if header.as_deref() != Some(HEADER) {
        return Err(PageError::Unreadable(format!("{}: the header is not the agreed one", listed.file)));
    }
    if data.len() != listed.rows {
        return Err(PageError::Unreadable(format!(
            "{}: {} data rows, the listing says {}",
            listed.file,
            data.len(),
            listed.rows
        )));
    }
    Ok(data
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let position = format!("{} 第 {} 行", listed.file, i + 2);
            let bad = |(reason_code, reason): RowError| BadRow {
                position: position.clone(),
                reason_code,
                reason,
                raw: raw.to_vec(),
            };
            let line = encoding_rs::GBK
                .decode_without_bom_handling_and_without_replacement(raw)
                .ok_or_else(|| bad(("undecodable", "the line is not valid GBK".to_owned())))?;
            parse_filing(&line, &listed.file).map(|(f, flaws)| Record::Filing(f, flaws)).map_err(bad)
        })
        .collect())
}

impl Source for Housing {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch_page(&self, cursor: Option<&str>) -> Result<Page, PageError> {
        let base = self.base_url.trim_end_matches('/');
        let body = fetch::get(&self.client, &format!("{base}/exports"), None, &self.policy).await?;
        let listed = listing(&body)?;
        let after = cursor.unwrap_or_default();
        let mut pending = listed.into_iter().filter(|l| l.file.as_str() > after);
        let Some(next) = pending.next() else {
            return Ok(Page::new(Vec::new(), after.to_owned(), false));
        };
        let has_more = pending.next().is_some();
        let bytes = fetch::get(&self.client, &format!("{base}/exports/{}", next.file), None, &self.policy).await?;
        let rows = parse_export(&next, &bytes)?;
        let file = SourceFile {
            source: SOURCE.into(),
            file_name: next.file.clone(),
            sha256: next.sha256.clone(),
            row_count: i64::try_from(next.rows).unwrap_or(i64::MAX),
        };
        Ok(Page { file: Some(file), ..Page::new(rows, next.file, has_more) })
    }
}

/// Parses a whole export file as the connector would after downloading it,
/// with a listing entry made from the bytes themselves (their SHA-256 and line
/// count), so that every line reaches the row parser. For fuzzing and property
/// tests: whatever the bytes, the answer is rows and bad rows, or a page error.
pub fn parse_export_file(file: &str, bytes: &[u8]) -> Result<Vec<Result<Record, BadRow>>, PageError> {
    let lines = bytes.split(|b| *b == b'\n').count();
    let rows = if bytes.ends_with(b"\n") { lines.saturating_sub(2) } else { lines.saturating_sub(1) };
    let listed = Listed { file: file.to_owned(), rows, sha256: hex::encode(Sha256::digest(bytes)) };
    parse_export(&listed, bytes)
}

/// Parses an export listing (JSON) as the connector does; the number of entries.
pub fn parse_listing(body: &[u8]) -> Result<usize, PageError> {
    listing(body).map(|l| l.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_honour_quotes() {
        assert_eq!(split_csv("a,\"b,c\",\"d\"\"e\"").expect("split"), ["a", "b,c", "d\"e"]);
        assert!(split_csv("a,\"b").is_err());
    }

    #[test]
    fn amounts_are_exact_cents() {
        assert_eq!(yuan_to_cents("1234.5", "x"), Ok(123_450));
        assert_eq!(yuan_to_cents("1234.05", "x"), Ok(123_405));
        assert_eq!(yuan_to_cents("7", "x"), Ok(700));
        assert!(yuan_to_cents("1.234", "x").is_err());
        assert!(yuan_to_cents("abc", "x").is_err());
        assert!(yuan_to_cents("1e5", "x").is_err());
        assert_eq!(yuan_to_cents("350000.00", "x"), Ok(35_000_000));
    }

    #[test]
    fn a_file_that_does_not_match_its_listing_is_not_a_page() {
        let bytes = encoding_rs::GBK.encode(&format!("{HEADER}\r\n")).0.into_owned();
        let listed = Listed { file: "f.csv".into(), rows: 0, sha256: hex::encode(Sha256::digest(&bytes)) };
        assert_eq!(parse_export(&listed, &bytes).expect("empty day"), Vec::new());
        let wrong_rows = Listed { rows: 1, ..listed.clone() };
        assert!(matches!(parse_export(&wrong_rows, &bytes), Err(PageError::Unreadable(_))));
        let wrong_hash = Listed { sha256: "00".into(), ..listed };
        assert!(matches!(parse_export(&wrong_hash, &bytes), Err(PageError::Unreadable(_))));
    }
}
