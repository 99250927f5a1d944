//! An HTTP feed described in configuration: JSON or XML, UTF-8, GBK or
//! GB18030, paged by a cursor token, page numbers, offsets or a next link,
//! with no authentication, a bearer token or HTTP basic. Retries, backoff and
//! `Retry-After` are [`crate::fetch`]'s, as for every feed.
//!
//! The saved cursor holds the `since` bound the pages are for (the newest
//! version seen by the last finished pass), the page within them, and the
//! newest version seen so far; the bound moves only after the last page.
//! A feed paged by a cursor token without a `since` parameter keeps its last
//! token between passes (the registry's feed is resumed that way).

use serde_json::{Map, Value};

use super::config::{AuthConfig, BodyFormat, HttpConfig, Pagination};
use super::mapping::{get_path, value_text};
use crate::fetch::{self, Auth, RetryPolicy};
use crate::poll::PageError;

/// Where an HTTP feed is.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpPosition {
    /// The `since` bound of this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The page within it: a token, a number, an offset or a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// The newest version seen in this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// Pages read in this pass.
    #[serde(default)]
    pub n: u64,
}

impl HttpPosition {
    /// Parses a saved cursor; a bare string (a cursor saved by the
    /// hand-written registry connector before) is taken as the page token.
    pub fn parse(cursor: Option<&str>) -> Self {
        match cursor.filter(|c| !c.is_empty()) {
            None => Self::default(),
            Some(text) => {
                serde_json::from_str(text).unwrap_or_else(|_| Self { page: Some(text.to_owned()), ..Self::default() })
            }
        }
    }

    /// As saved.
    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Where a page is, in words: `第 3 页（游标 abc）`.
    pub fn describe(&self) -> String {
        let mut out = format!("第 {} 页", self.n + 1);
        if let Some(page) = &self.page {
            out.push_str(&format!("（游标 {page}）"));
        }
        if let Some(after) = &self.after {
            out.push_str(&format!("（{after} 之后的变更）"));
        }
        out
    }
}

/// One page of a feed: its records as JSON, and where the next one is.
#[derive(Debug)]
pub struct HttpPage {
    /// The records, each with its raw form for quarantine.
    pub records: Vec<(Value, Vec<u8>)>,
    /// The position after it.
    pub next: HttpPosition,
    /// Whether more pages follow now.
    pub has_more: bool,
}

/// An HTTP feed.
#[derive(Debug, Clone)]
pub struct Http {
    config: HttpConfig,
    auth: Auth,
    /// Retries.
    pub policy: RetryPolicy,
    client: reqwest::Client,
}

impl Http {
    /// A feed; resolves its credentials now (an error names the variable or file, never the value).
    pub fn new(config: HttpConfig) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let auth = match &config.auth {
            AuthConfig::None => Auth::None,
            AuthConfig::Bearer { token } => match token.resolve() {
                Ok(t) => Auth::Bearer(t),
                Err(e) => {
                    problems.push(format!("auth.token: {e}"));
                    Auth::None
                }
            },
            AuthConfig::Basic { user, password } => match password.resolve() {
                Ok(p) => Auth::Basic(user.clone(), p),
                Err(e) => {
                    problems.push(format!("auth.password: {e}"));
                    Auth::None
                }
            },
            AuthConfig::Hmac { partner_id, secret, sm3 } => match secret.resolve() {
                Ok(secret) => Auth::Hmac { partner_id: partner_id.clone(), secret, sm3: *sm3 },
                Err(e) => {
                    problems.push(format!("auth.secret: {e}"));
                    Auth::None
                }
            },
        };
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            problems.push(format!("url {:?} is not http:// or https://", config.url));
        }
        if let Some(encoding) = &config.encoding
            && encoding_of(encoding).is_none()
        {
            problems.push(format!("encoding {encoding:?} is not utf-8, gbk or gb18030"));
        }
        if config.format == BodyFormat::Xml && !config.records.contains('/') {
            problems.push(format!(
                "records {:?}: for XML give List/Row (the list element and the row element)",
                config.records
            ));
        }
        if problems.is_empty() {
            Ok(Self { config, auth, policy: RetryPolicy::default(), client: fetch::client() })
        } else {
            Err(problems)
        }
    }

    /// The same feed with other retries and extra query parameters (a page size).
    pub fn tuned(&self, policy: RetryPolicy, query: &[(&str, &str)]) -> Self {
        let mut config = self.config.clone();
        for (k, v) in query {
            config.query.insert((*k).to_owned(), (*v).to_owned());
        }
        Self { config, auth: self.auth.clone(), policy, client: self.client.clone() }
    }

    fn url(&self, at: &HttpPosition) -> String {
        if let (Pagination::NextLink { .. }, Some(link)) = (&self.config.pagination, &at.page) {
            return link.clone();
        }
        let mut params: Vec<(String, String)> = self.config.query.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let (Some(since), Some(after)) = (&self.config.since, &at.after) {
            params.push((since.param.clone(), after.clone()));
        }
        match &self.config.pagination {
            Pagination::Cursor { param, .. } => {
                params.push((param.clone(), at.page.clone().unwrap_or_default()));
            }
            Pagination::Page { param, first, .. } => {
                params.push((param.clone(), at.page.clone().unwrap_or_else(|| first.to_string())));
            }
            Pagination::Offset { param, limit_param, limit } => {
                params.push((param.clone(), at.page.clone().unwrap_or_else(|| "0".into())));
                params.push((limit_param.clone(), limit.to_string()));
            }
            Pagination::NextLink { .. } => {}
        }
        let mut url = self.config.url.clone();
        for (i, (k, v)) in params.iter().enumerate() {
            url.push(if i == 0 && !url.contains('?') { '?' } else { '&' });
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
        }
        url
    }

    /// The page after `at`.
    pub async fn read(&self, at: &HttpPosition) -> Result<HttpPage, PageError> {
        let url = self.url(at);
        let body = fetch::get_with(&self.client, &url, &self.auth, &self.policy).await?;
        self.decode(&body, at).map_err(|e| e.from_where(&strip_query(&url)))
    }

    /// Decodes one answer as received.
    pub fn decode(&self, body: &[u8], at: &HttpPosition) -> Result<HttpPage, PageError> {
        let text = match self.config.encoding.as_deref().and_then(encoding_of).filter(|e| *e != encoding_rs::UTF_8) {
            None => std::str::from_utf8(body)
                .map(std::borrow::Cow::Borrowed)
                .map_err(|_| PageError::Unreadable("the answer is not valid UTF-8".into()))?,
            Some(encoding) => encoding
                .decode_without_bom_handling_and_without_replacement(body)
                .ok_or_else(|| PageError::Unreadable(format!("the answer is not valid {}", encoding.name())))?,
        };
        let (envelope, records): (Value, Vec<(Value, Vec<u8>)>) = match self.config.format {
            BodyFormat::Json => {
                let envelope: Value =
                    serde_json::from_str(&text).map_err(|e| PageError::Unreadable(format!("not JSON: {e}")))?;
                let records: Vec<(Value, Vec<u8>)> = match get_path(&envelope, &self.config.records) {
                    Some(Value::Array(items)) => {
                        items.iter().map(|item| (item.clone(), item.to_string().into_bytes())).collect()
                    }
                    Some(Value::Null) | None => {
                        return Err(PageError::Unreadable(format!("no {} array in the answer", self.config.records)));
                    }
                    Some(other) => {
                        return Err(PageError::Unreadable(format!("{} is not an array: {other}", self.config.records)));
                    }
                };
                (envelope, records)
            }
            BodyFormat::Xml => {
                let (list, row) = self.config.records.split_once('/').unwrap_or(("", &self.config.records));
                let parsed = crate::xmlrows::split(&text, list, row)?;
                let envelope: Map<String, Value> =
                    parsed.attributes.iter().map(|(k, v)| (format!("@{k}"), Value::String(v.clone()))).collect();
                let records = parsed
                    .rows
                    .into_iter()
                    .map(|r| {
                        let value = match r.fields {
                            Ok(fields) => {
                                Value::Object(fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
                            }
                            // Unreadable: mapped as an empty record, so it is quarantined with its raw text.
                            Err(e) => Value::String(format!("unreadable row: {e}")),
                        };
                        (value, r.raw.into_bytes())
                    })
                    .collect();
                (Value::Object(envelope), records)
            }
        };
        let newest = self.config.since.as_ref().and_then(|since| {
            records.iter().filter_map(|(r, _): &(Value, Vec<u8>)| get_path(r, &since.from)).map(value_text).max()
        });
        let text_at = |path: &str| get_path(&envelope, path).map(value_text).filter(|s| !s.is_empty());
        let next_page: Option<String> = match &self.config.pagination {
            Pagination::Cursor { next, has_more, .. } => {
                let token = text_at(next);
                let more = match has_more {
                    Some(path) => get_path(&envelope, path).and_then(Value::as_bool).unwrap_or(false),
                    None => token.is_some() && !records.is_empty(),
                };
                match (more, token) {
                    (true, Some(token)) => Some(token),
                    (true, None) => return Err(PageError::Unreadable(format!("has more pages but no {next}"))),
                    (false, token) => {
                        // The last page: a feed without `since` keeps its last
                        // token for the next pass (no token: stay where it is).
                        let keep = if self.config.since.is_none() { token.or_else(|| at.page.clone()) } else { None };
                        return Ok(self.finish(records, at, newest, keep));
                    }
                }
            }
            Pagination::Page { total_pages, first, .. } => {
                let page: u64 = at.page.as_deref().and_then(|p| p.parse().ok()).unwrap_or(*first);
                let more = match total_pages {
                    Some(path) => {
                        text_at(path).and_then(|t| t.parse::<u64>().ok()).is_some_and(|total| page < total + first - 1)
                    }
                    None => !records.is_empty(),
                };
                more.then(|| (page + 1).to_string())
            }
            Pagination::Offset { limit, .. } => {
                let offset: u64 = at.page.as_deref().and_then(|p| p.parse().ok()).unwrap_or(0);
                (records.len() as u64 >= *limit).then(|| (offset + records.len() as u64).to_string())
            }
            Pagination::NextLink { next } => text_at(next),
        };
        match next_page {
            Some(page) => {
                let newest = max_opt(at.newest.clone(), newest);
                let next = HttpPosition { after: at.after.clone(), page: Some(page), newest, n: at.n + 1 };
                Ok(HttpPage { records, next, has_more: true })
            }
            None => Ok(self.finish(records, at, newest, None)),
        }
    }

    fn finish(
        &self,
        records: Vec<(Value, Vec<u8>)>,
        at: &HttpPosition,
        newest: Option<String>,
        keep: Option<String>,
    ) -> HttpPage {
        let newest = max_opt(at.newest.clone(), newest);
        let next = match &self.config.since {
            Some(_) => HttpPosition { after: newest.clone().or_else(|| at.after.clone()), page: None, newest, n: 0 },
            None => HttpPosition { after: None, page: keep, newest: None, n: 0 },
        };
        HttpPage { records, next, has_more: false }
    }
}

fn max_opt(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

pub(crate) fn encoding_of(name: &str) -> Option<&'static encoding_rs::Encoding> {
    match name.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => Some(encoding_rs::UTF_8),
        "gbk" => Some(encoding_rs::GBK),
        "gb18030" => Some(encoding_rs::GB18030),
        _ => None,
    }
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URL without its query (query parameters may carry tokens).
fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partner::config::SinceConfig;

    fn feed(pagination: Pagination, since: Option<SinceConfig>) -> Http {
        Http::new(HttpConfig {
            url: "http://partner/feed".into(),
            format: BodyFormat::Json,
            encoding: Some("gbk".into()),
            records: "result.items".into(),
            query: [("size".to_owned(), "2".to_owned())].into(),
            pagination,
            since,
            auth: AuthConfig::None,
        })
        .expect("valid")
    }

    #[test]
    fn a_gbk_json_feed_pages_by_token_and_moves_its_bound_after_the_last_page() {
        let http = feed(
            Pagination::Cursor { param: "token".into(), next: "result.next".into(), has_more: None },
            Some(SinceConfig { param: "since".into(), from: "gxsj".into() }),
        );
        let start = HttpPosition::default();
        assert_eq!(http.url(&start), "http://partner/feed?size=2&token=");
        let (body, _, _) = encoding_rs::GBK.encode(
            r#"{"result":{"items":[{"xm":"张三","gxsj":"2024-10-02"},{"xm":"李四","gxsj":"2024-10-01"}],"next":"t2"}}"#,
        );
        let page = http.decode(&body, &start).expect("page");
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[0].0["xm"], "张三");
        assert!(page.has_more);
        assert_eq!(page.next.page.as_deref(), Some("t2"));
        assert_eq!(page.next.after, None, "the bound moves only after the last page");
        assert!(http.url(&page.next).ends_with("token=t2"));
        let (last, _, _) = encoding_rs::GBK.encode(r#"{"result":{"items":[{"gxsj":"2024-09-30"}],"next":null}}"#);
        let end = http.decode(&last, &page.next).expect("last page");
        assert!(!end.has_more);
        assert_eq!(end.next.after.as_deref(), Some("2024-10-02"));
        assert_eq!(end.next.page, None);
        assert!(http.url(&end.next).contains("since=2024-10-02"));
        assert_eq!(page.next.describe(), "第 2 页（游标 t2）");
    }

    #[test]
    fn page_numbers_offsets_and_links() {
        let pages =
            feed(Pagination::Page { param: "page".into(), first: 1, total_pages: Some("result.pages".into()) }, None);
        let body = br#"{"result":{"items":[{"a":1}],"pages":2}}"#;
        let first = pages.decode(body, &HttpPosition::default()).expect("page");
        assert_eq!(first.next.page.as_deref(), Some("2"));
        assert!(!pages.decode(body, &first.next).expect("page").has_more);
        let offsets = feed(Pagination::Offset { param: "offset".into(), limit_param: "limit".into(), limit: 1 }, None);
        let next = offsets.decode(body, &HttpPosition::default()).expect("page").next;
        assert_eq!(offsets.url(&next), "http://partner/feed?size=2&offset=1&limit=1");
        let links = feed(Pagination::NextLink { next: "result.next".into() }, None);
        let linked = links
            .decode(br#"{"result":{"items":[],"next":"http://partner/feed?p=9"}}"#, &HttpPosition::default())
            .expect("page");
        assert_eq!(links.url(&linked.next), "http://partner/feed?p=9");
        let err = links.decode(b"{\"result\":{}}", &HttpPosition::default()).expect_err("no items");
        assert!(err.to_string().contains("result.items"), "{err}");
    }
}
