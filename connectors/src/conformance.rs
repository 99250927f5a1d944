//! The onboarding kit's conformance suite (`wangban partner check`): reads a
//! partner's test endpoint the way its connector would and checks it against
//! the contract (`docs/partners.md`, `contracts/`), without writing anything.
//!
//! Every feed is read to its end twice, with two page sizes (where the feed
//! takes one), through the same page decoders the connectors use. Checks:
//!
//! - `decode`: every record decodes (the offending rows and reasons listed);
//! - `identifiers`: no record is kept only with a flawed field (a registry case
//!   whose ID number fails its check …);
//! - `paging`: both reads deliver the same records in the same order, so no
//!   page boundary loses or repeats one;
//! - `order`: the stream is in its contract's order (`gxsj`, `(updatedAt,
//!   applicationId)`, `GXSJ`, `seq`, the listing's dates);
//! - `end_of_stream`: the last page's cursor stays valid and returns nothing
//!   new; an empty last page whose `next_cursor` is null is tolerated (the
//!   connector keeps its cursor) but named as a deviation;
//! - `encoding`: pages and files in the agreed encoding (UTF-8, GBK, GB18030);
//! - `files` (housing): each file's SHA-256 and row count equal its listing entry;
//! - `retry_after`: every 503 or 429 carried a `Retry-After` (seconds or an HTTP date).
//!
//! A report is a list of checks, each passed or failed with a detail and up to
//! [`MAX_SAMPLES`] offending samples, in Chinese and English.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::fetch::retry_after_wait;
use crate::lenders::{Bank, decode_loans};
use crate::poll::{BadRow, Record};
use crate::registry::{RegistryFeed, decode_page};
use crate::{court_platform, housing};

/// Offending samples kept per check.
pub const MAX_SAMPLES: usize = 5;

/// Which kind of partner is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerKind {
    /// The registry's business system: cases, QC findings, evaluations.
    Registry,
    /// The housing authority's daily export files.
    Housing,
    /// A bank's mortgage-application feed.
    Bank,
    /// The housing provident fund's loans.
    ProvidentFund,
    /// The courts' control platform's requests.
    CourtPlatform,
}

impl PartnerKind {
    /// Parses `registry|housing|bank|provident_fund|court_platform`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "registry" => Some(Self::Registry),
            "housing" => Some(Self::Housing),
            "bank" => Some(Self::Bank),
            "provident_fund" => Some(Self::ProvidentFund),
            "court_platform" => Some(Self::CourtPlatform),
            _ => None,
        }
    }

    /// The name `parse` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Housing => "housing",
            Self::Bank => "bank",
            Self::ProvidentFund => "provident_fund",
            Self::CourtPlatform => "court_platform",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Which feed (`cases`, `exports`, …).
    pub feed: String,
    /// `decode`, `identifiers`, `paging`, `order`, `end_of_stream`, `encoding`, `files`, `retry_after`.
    pub id: &'static str,
    /// Passed (a deviation the connector tolerates still passes, with a note).
    pub passed: bool,
    /// What was found, in English (the Chinese report adds its own titles).
    pub detail: String,
    /// Offending records or answers, at most [`MAX_SAMPLES`].
    pub samples: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The kind checked.
    pub kind: PartnerKind,
    /// Its base URL.
    pub base_url: String,
    /// Records read (first read).
    pub records: usize,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.name(), "base_url": self.base_url, "records": self.records, "passed": self.passed(),
            "checks": self.checks.iter().map(|c| json!({
                "feed": c.feed, "check": c.id, "passed": c.passed, "detail": c.detail, "samples": c.samples,
            })).collect::<Vec<_>>(),
        })
    }

    /// The report as text, in Chinese (`english` false) or English.
    pub fn render(&self, english: bool) -> String {
        let mut out = if english {
            format!("Conformance of {} at {} ({} records read)\n", self.kind.name(), self.base_url, self.records)
        } else {
            format!("对接规范检查：{}（{}），读取记录 {} 条\n", kind_zh(self.kind), self.base_url, self.records)
        };
        for c in &self.checks {
            let verdict = match (c.passed, english) {
                (true, true) => "PASS",
                (false, true) => "FAIL",
                (true, false) => "通过",
                (false, false) => "不通过",
            };
            let title = if english { c.id.to_owned() } else { check_zh(c.id).to_owned() };
            out.push_str(&format!("[{verdict}] {} {title}: {}\n", c.feed, c.detail));
            for sample in &c.samples {
                out.push_str(&format!("        {sample}\n"));
            }
        }
        let failed = self.checks.iter().filter(|c| !c.passed).count();
        out.push_str(&match (failed, english) {
            (0, true) => "Every check passed.\n".to_owned(),
            (n, true) => format!("{n} of {} checks failed.\n", self.checks.len()),
            (0, false) => "全部检查通过。\n".to_owned(),
            (n, false) => format!("{} 项检查中 {n} 项不通过。\n", self.checks.len()),
        });
        out
    }
}

fn kind_zh(kind: PartnerKind) -> &'static str {
    match kind {
        PartnerKind::Registry => "登记业务系统",
        PartnerKind::Housing => "住建网签备案",
        PartnerKind::Bank => "银行",
        PartnerKind::ProvidentFund => "公积金中心",
        PartnerKind::CourtPlatform => "法院网络查控平台",
    }
}

fn check_zh(id: &str) -> &'static str {
    match id {
        "decode" => "记录可解析",
        "identifiers" => "证件号、编码有效",
        "paging" => "分页不丢不重",
        "order" => "数据流顺序",
        "end_of_stream" => "游标到末尾",
        "encoding" => "字符编码",
        "files" => "文件校验和与行数",
        "retry_after" => "Retry-After",
        _ => "其他",
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The partner's base URL (as a connector is configured).
    pub base_url: String,
    /// Bearer token (banks).
    pub token: Option<String>,
    /// The two page sizes of the two reads.
    pub page_sizes: (usize, usize),
    /// Longest wait a `Retry-After` may ask for before the check gives up on the answer.
    pub max_wait: Duration,
}

impl CheckOptions {
    /// The defaults: pages of 1000 and 997 records (so boundaries fall elsewhere), waits up to 10 s.
    pub fn new(base_url: &str, token: Option<&str>) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
            page_sizes: (1000, 997),
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Fetches for the checks, counting 503/429 answers and their `Retry-After`.
struct Probe {
    client: reqwest::Client,
    token: Option<String>,
    max_wait: Duration,
    busy: usize,
    busy_without_retry_after: Vec<String>,
}

impl Probe {
    /// GETs `url`; 503 and 429 are retried (after their `Retry-After`, at most
    /// `max_wait`) up to five times; anything else not 200 is an error.
    async fn get(&mut self, url: &str) -> Result<Vec<u8>, String> {
        for _ in 0..5 {
            let mut request = self.client.get(url).timeout(Duration::from_secs(60));
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = response.status().as_u16();
            if status == 503 || status == 429 {
                self.busy += 1;
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after_wait(v, Utc::now()));
                match wait {
                    Some(wait) => tokio::time::sleep(wait.min(self.max_wait)).await,
                    None => {
                        self.busy_without_retry_after.push(format!("{status} from {url}"));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                continue;
            }
            if status != 200 {
                let body = response.text().await.unwrap_or_default();
                return Err(format!("{url}: HTTP {status} {}", body.chars().take(200).collect::<String>()));
            }
            return response.bytes().await.map(|b| b.to_vec()).map_err(|e| format!("{url}: body cut short ({e})"));
        }
        Err(format!("{url}: still busy after five tries"))
    }
}

/// One read of a feed: what each record is and where.
#[derive(Debug, Default)]
struct Read {
    /// (key, version) of every record in stream order, bad ones included when their key can be read.
    sequence: Vec<(String, String)>,
    /// Rows that did not decode: position and reason.
    bad: Vec<String>,
    /// Records kept with a flawed field: key, field and rule.
    flawed: Vec<String>,
    /// Pages that could not be read at all.
    unreadable: Vec<String>,
    /// Deviations the connector tolerates.
    deviations: Vec<String>,
}

impl Read {
    fn take(&mut self, rows: Vec<Result<Record, BadRow>>, keys: &[(String, String)]) {
        for (row, key) in rows.into_iter().zip(keys) {
            if let Err(bad) = &row {
                self.bad.push(format!("{}: {} {}", bad.position, bad.reason_code, bad.reason));
            }
            if let Ok(Record::Case(case, flaws)) = &row {
                for flaw in flaws {
                    self.flawed.push(format!("{} {}: {} ({})", case.external_id, flaw.field, flaw.rule, flaw.detail));
                }
            }
            self.sequence.push(key.clone());
        }
    }
}

fn text_of(value: &Value, field: &str) -> String {
    match value.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Runs the suite against `kind` at `options.base_url`.
pub async fn check(kind: PartnerKind, options: &CheckOptions) -> Report {
    let mut probe = Probe {
        client: crate::fetch::client(),
        token: options.token.clone(),
        max_wait: options.max_wait,
        busy: 0,
        busy_without_retry_after: Vec::new(),
    };
    let mut checks = Vec::new();
    let mut records = 0;
    match kind {
        PartnerKind::Registry => {
            for feed in [RegistryFeed::Cases, RegistryFeed::QcFindings, RegistryFeed::Evaluations] {
                let (a, b) = (
                    read_registry(&mut probe, options, feed, options.page_sizes.0).await,
                    read_registry(&mut probe, options, feed, options.page_sizes.1).await,
                );
                records += a.sequence.len();
                judge(&mut checks, feed.path(), &a, &b, |x, y| time_key(x) <= time_key(y));
            }
        }
        PartnerKind::Bank => {
            let (a, b) = (
                read_bank(&mut probe, options, options.page_sizes.0).await,
                read_bank(&mut probe, options, options.page_sizes.1).await,
            );
            records += a.sequence.len();
            // Ordered by (updatedAt, applicationId): the version first, then the key.
            judge(&mut checks, "mortgage-applications", &a, &b, |x, y| (time_key(x), &x.0) <= (time_key(y), &y.0));
        }
        PartnerKind::ProvidentFund => {
            let (a, b) = (read_gjj(&mut probe, options).await, read_gjj(&mut probe, options).await);
            records += a.sequence.len();
            judge(&mut checks, "loans", &a, &b, |x, y| x.1 <= y.1);
        }
        PartnerKind::CourtPlatform => {
            let (a, b) = (
                read_court(&mut probe, options, options.page_sizes.0).await,
                read_court(&mut probe, options, options.page_sizes.1).await,
            );
            records += a.sequence.len();
            let seq = |k: &(String, String)| k.1.parse::<i64>().unwrap_or(i64::MIN);
            judge(&mut checks, "requests", &a, &b, |x, y| seq(x) < seq(y));
        }
        PartnerKind::Housing => records += check_housing(&mut probe, options, &mut checks).await,
    }
    checks.push(Check {
        feed: "*".into(),
        id: "retry_after",
        passed: probe.busy_without_retry_after.is_empty(),
        detail: if probe.busy == 0 {
            "no 503 or 429 was answered during the check".into()
        } else {
            format!("{} answers 503 or 429, {} without Retry-After", probe.busy, probe.busy_without_retry_after.len())
        },
        samples: probe.busy_without_retry_after.into_iter().take(MAX_SAMPLES).collect(),
    });
    Report { kind, base_url: options.base_url.clone(), records, checks }
}

/// Orders versions that are times by their instant (offsets differ), others as text.
fn time_key(key: &(String, String)) -> (Option<DateTime<Utc>>, &str) {
    (crate::registry::iso_time(&key.1), key.1.as_str())
}

fn samples(list: &[String]) -> Vec<String> {
    list.iter().take(MAX_SAMPLES).cloned().collect()
}

/// The common checks of a feed read twice.
fn judge(
    checks: &mut Vec<Check>,
    feed: &str,
    a: &Read,
    b: &Read,
    in_order: impl Fn(&(String, String), &(String, String)) -> bool,
) {
    let check =
        |id, passed, detail: String, samples: Vec<String>| Check { feed: feed.to_owned(), id, passed, detail, samples };
    let mut unreadable = a.unreadable.clone();
    unreadable.extend(b.unreadable.iter().cloned());
    checks.push(check(
        "encoding",
        unreadable.is_empty(),
        if unreadable.is_empty() {
            "every page read and decoded as agreed".into()
        } else {
            format!("{} pages could not be read", unreadable.len())
        },
        samples(&unreadable),
    ));
    checks.push(check(
        "decode",
        a.bad.is_empty(),
        format!("{} of {} records do not decode", a.bad.len(), a.sequence.len()),
        samples(&a.bad),
    ));
    checks.push(check(
        "identifiers",
        a.flawed.is_empty(),
        format!("{} flawed fields in records kept (identifiers failing their check, unknown codes)", a.flawed.len()),
        samples(&a.flawed),
    ));
    let (lost, repeated) = sequence_difference(&a.sequence, &b.sequence);
    let same = a.sequence == b.sequence;
    checks.push(check(
        "paging",
        same && unreadable.is_empty(),
        if same {
            format!("two reads with different page sizes gave the same {} records in the same order", a.sequence.len())
        } else {
            format!(
                "two reads differ: {} records in one read only, {} delivered a different number of times",
                lost.len(),
                repeated.len()
            )
        },
        samples(&[lost, repeated].concat()),
    ));
    let out_of_order: Vec<String> = a
        .sequence
        .windows(2)
        .filter(|w| !in_order(&w[0], &w[1]))
        .map(|w| format!("{} ({}) after {} ({})", w[1].0, w[1].1, w[0].0, w[0].1))
        .collect();
    checks.push(check(
        "order",
        out_of_order.is_empty(),
        format!("{} records out of the stream's order", out_of_order.len()),
        samples(&out_of_order),
    ));
    let end_failures: Vec<&String> = a.deviations.iter().filter(|d| d.starts_with("FAIL ")).collect();
    checks.push(check(
        "end_of_stream",
        end_failures.is_empty(),
        if a.deviations.is_empty() {
            "the last cursor stays valid and returns nothing new".into()
        } else {
            a.deviations.join("; ")
        },
        Vec::new(),
    ));
}

/// Records in one sequence and not the other, and records delivered a different number of times.
fn sequence_difference(a: &[(String, String)], b: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let mut counts: HashMap<&(String, String), (usize, usize)> = HashMap::new();
    for key in a {
        counts.entry(key).or_default().0 += 1;
    }
    for key in b {
        counts.entry(key).or_default().1 += 1;
    }
    let (mut lost, mut repeated) = (Vec::new(), Vec::new());
    for ((key, version), (x, y)) in counts {
        if x == 0 || y == 0 {
            lost.push(format!(
                "{key} ({version}) read only with the {} page size",
                if x == 0 { "second" } else { "first" }
            ));
        } else if x != y {
            repeated.push(format!("{key} ({version}) delivered {x} times in one read, {y} in the other"));
        }
    }
    lost.sort();
    repeated.sort();
    (lost, repeated)
}

async fn read_registry(probe: &mut Probe, options: &CheckOptions, feed: RegistryFeed, limit: usize) -> Read {
    let (key_field, version_field) = ("ywh", "gxsj");
    let key_field = if feed == RegistryFeed::Cases { key_field } else { "id" };
    let mut read = Read::default();
    let mut cursor = String::new();
    loop {
        let url = format!("{}/{}?limit={limit}&cursor={cursor}", options.base_url, feed.path());
        let body = match probe.get(&url).await {
            Ok(body) => body,
            Err(e) => {
                read.unreadable.push(e);
                return read;
            }
        };
        let envelope: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let data = envelope["data"].as_array().cloned().unwrap_or_default();
        if data.is_empty() && envelope.get("next_cursor") == Some(&Value::Null) {
            read.deviations.push("an empty last page has next_cursor null (tolerated: the cursor is kept; the contract keeps next_cursor a string)".into());
        }
        let page = match decode_page(feed, &body, Some(&cursor)) {
            Ok(page) => page,
            Err(e) => {
                read.unreadable.push(e.from_where(&url).to_string());
                return read;
            }
        };
        let keys: Vec<(String, String)> =
            data.iter().map(|r| (text_of(r, key_field), text_of(r, version_field))).collect();
        read.take(page.rows, &keys);
        if !page.has_more {
            // The last cursor stays valid: polled again it answers an empty page.
            let again = format!("{}/{}?limit={limit}&cursor={}", options.base_url, feed.path(), page.next_cursor);
            match probe.get(&again).await.ok().and_then(|b| decode_page(feed, &b, Some(&page.next_cursor)).ok()) {
                Some(after) if after.rows.is_empty() && !after.has_more => {}
                Some(after) => {
                    read.deviations.push(format!("FAIL the last cursor answered {} more records", after.rows.len()))
                }
                None => read
                    .deviations
                    .push(format!("FAIL the last cursor {:?} is refused or unreadable", page.next_cursor)),
            }
            return read;
        }
        cursor = page.next_cursor;
    }
}

async fn read_bank(probe: &mut Probe, options: &CheckOptions, page_size: usize) -> Read {
    let bank = Bank::new("check", &options.base_url, options.token.as_deref().unwrap_or_default());
    let mut read = Read::default();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("{}/bank/v1/mortgage-applications?page_size={page_size}", options.base_url);
        if let Some(t) = &token {
            url.push_str(&format!("&page_token={t}"));
        }
        let body = match probe.get(&url).await {
            Ok(body) => body,
            Err(e) => {
                read.unreadable.push(e);
                return read;
            }
        };
        let page = match bank.decode_items(&body, &format!("page_token {:?}", token.as_deref().unwrap_or_default())) {
            Ok(page) => page,
            Err(e) => {
                read.unreadable.push(e.from_where(&url).to_string());
                return read;
            }
        };
        let envelope: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let keys: Vec<(String, String)> = envelope["items"]
            .as_array()
            .map(|items| items.iter().map(|i| (text_of(i, "applicationId"), text_of(i, "updatedAt"))).collect())
            .unwrap_or_default();
        read.take(page.rows, &keys);
        match page.next_page {
            Some(next) => token = Some(next),
            None => return read,
        }
    }
}

async fn read_gjj(probe: &mut Probe, options: &CheckOptions) -> Read {
    let mut read = Read::default();
    let mut page = 1u64;
    loop {
        let url = format!("{}/loans?page={page}", options.base_url);
        let body = match probe.get(&url).await {
            Ok(body) => body,
            Err(e) if page == 1 && e.contains("HTTP 400") && e.contains("page must be") => return read,
            Err(e) => {
                read.unreadable.push(e);
                return read;
            }
        };
        let decoded = match decode_loans(&body, &format!("page {page}")) {
            Ok(decoded) => decoded,
            Err(e) => {
                read.unreadable.push(e.from_where(&url).to_string());
                return read;
            }
        };
        let keys = xml_keys(&body, "Loan", "DKBH", "GXSJ", true);
        read.take(decoded.rows, &keys);
        if page >= decoded.pages {
            return read;
        }
        page += 1;
    }
}

async fn read_court(probe: &mut Probe, options: &CheckOptions, limit: usize) -> Read {
    let mut read = Read::default();
    let mut after = 0i64;
    loop {
        let url = format!("{}/requests?after_seq={after}&limit={limit}", options.base_url);
        let body = match probe.get(&url).await {
            Ok(body) => body,
            Err(e) => {
                read.unreadable.push(e);
                return read;
            }
        };
        let (rows, last) = match court_platform::decode_requests(&body, after) {
            Ok(decoded) => decoded,
            Err(e) => {
                read.unreadable.push(e.from_where(&url).to_string());
                return read;
            }
        };
        let keys = xml_keys(&body, "KZQQ", "CXQQDH", "seq", false);
        let count = rows.len();
        read.take(rows, &keys);
        if count < limit {
            return read;
        }
        after = last;
    }
}

/// (key, version) of each row element of an XML page, read loosely (a row
/// too broken to read still takes its place, with empty texts).
fn xml_keys(body: &[u8], row: &str, key: &str, version: &str, gb18030: bool) -> Vec<(String, String)> {
    let text = if gb18030 {
        encoding_rs::GB18030.decode_without_bom_handling(body).0.into_owned()
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    let between = |s: &str, open: &str, close: &str| -> String {
        s.find(open)
            .and_then(|i| s[i + open.len()..].find(close).map(|j| s[i + open.len()..i + open.len() + j].to_owned()))
            .unwrap_or_default()
    };
    text.split(&format!("<{row}"))
        .skip(1)
        .filter(|chunk| chunk.starts_with('>') || chunk.starts_with(' '))
        .map(|chunk| {
            let version_text = if version == "seq" {
                between(chunk, "seq=\"", "\"")
            } else {
                between(chunk, &format!("<{version}>"), &format!("</{version}>"))
            };
            (between(chunk, &format!("<{key}>"), &format!("</{key}>")), version_text)
        })
        .collect()
}

async fn check_housing(probe: &mut Probe, options: &CheckOptions, checks: &mut Vec<Check>) -> usize {
    let feed = "exports";
    let check =
        |id, passed, detail: String, samples: Vec<String>| Check { feed: feed.to_owned(), id, passed, detail, samples };
    let url = format!("{}/exports", options.base_url);
    let listing = match probe.get(&url).await {
        Ok(body) => body,
        Err(e) => {
            checks.push(check("encoding", false, "the listing could not be read".into(), vec![e]));
            return 0;
        }
    };
    if let Err(e) = housing::parse_listing(&listing) {
        checks.push(check("decode", false, "the listing is not as agreed".into(), vec![e.to_string()]));
        return 0;
    }
    let entries: Vec<Value> =
        serde_json::from_slice::<Value>(&listing).ok().and_then(|v| v.as_array().cloned()).unwrap_or_default();
    let dates: Vec<String> = entries.iter().map(|e| text_of(e, "date")).collect();
    let unordered: Vec<String> =
        dates.windows(2).filter(|w| w[0] >= w[1]).map(|w| format!("{} after {}", w[1], w[0])).collect();
    let (mut files_wrong, mut unreadable, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    let mut records = 0;
    for entry in &entries {
        let file = text_of(entry, "file");
        let bytes = match probe.get(&format!("{}/exports/{file}", options.base_url)).await {
            Ok(bytes) => bytes,
            Err(e) => {
                unreadable.push(e);
                continue;
            }
        };
        let digest = hex::encode(Sha256::digest(&bytes));
        if !digest.eq_ignore_ascii_case(&text_of(entry, "sha256")) {
            files_wrong.push(format!("{file}: SHA-256 {digest}, the listing says {}", text_of(entry, "sha256")));
        }
        let lines = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty() && *l != b"\r").count();
        let data_lines = lines.saturating_sub(1);
        if Some(data_lines as u64) != entry.get("rows").and_then(Value::as_u64) {
            files_wrong.push(format!("{file}: {data_lines} data rows, the listing says {}", text_of(entry, "rows")));
        }
        if !bytes.ends_with(b"\r\n") || bytes.split(|b| *b == b'\n').any(|l| !l.is_empty() && !l.ends_with(b"\r")) {
            files_wrong.push(format!("{file}: lines do not end with CRLF"));
        }
        match housing::parse_export_file(&file, &bytes) {
            Ok(rows) => {
                records += rows.len();
                bad.extend(
                    rows.iter()
                        .filter_map(|r| r.as_ref().err())
                        .map(|b| format!("{}: {} {}", b.position, b.reason_code, b.reason)),
                );
            }
            Err(e) => unreadable.push(format!("{file}: {e}")),
        }
    }
    checks.push(check(
        "encoding",
        unreadable.is_empty(),
        format!("{} of {} files could not be read as GBK CSV with the agreed header", unreadable.len(), entries.len()),
        samples(&unreadable),
    ));
    checks.push(check(
        "files",
        files_wrong.is_empty(),
        format!("{} problems with file checksums, row counts or line ends", files_wrong.len()),
        samples(&files_wrong),
    ));
    checks.push(check(
        "decode",
        bad.is_empty(),
        format!("{} of {records} rows do not decode", bad.len()),
        samples(&bad),
    ));
    checks.push(check(
        "order",
        unordered.is_empty(),
        format!("{} listing entries out of date order", unordered.len()),
        samples(&unordered),
    ));
    records
}
