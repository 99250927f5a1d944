//! Lenders: each configured bank's JSON feed of mortgage applications behind
//! a bearer token, and the housing provident fund's GB18030 XML feed
//! (`docs/partners.md` §3 and §4). Both page by a change-time bound: the
//! cursor keeps the bound the pages are for, the position within them, and
//! the newest change seen, which becomes the next bound once the last page is
//! in. The token is only sent, never printed (`Debug` hides it).

use chrono::{DateTime, Utc};
use domain::ident::UnitNo;
use serde_json::{Value, json};
use store::findings::Flaw;
use store::records::LoanApplication;

use crate::fetch::{self, RetryPolicy};
use crate::housing::{china_time_field, yuan_to_cents};
use crate::poll::{BadRow, Page, PageError, Record, Source};
use crate::registry::{RowError, kept_party_id, missing, text, time};
use crate::xmlrows;

/// Where a lender feed is: the bound its pages are for, the page within
/// them, and the newest change time seen under that bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LenderCursor {
    after: Option<String>,
    page: Option<String>,
    newest: Option<String>,
}

impl LenderCursor {
    fn parse(cursor: Option<&str>) -> Result<Self, PageError> {
        let Some(text) = cursor.filter(|c| !c.is_empty()) else { return Ok(Self::default()) };
        let value: Value =
            serde_json::from_str(text).map_err(|e| PageError::Unreadable(format!("saved cursor {text:?}: {e}")))?;
        let field = |name: &str| value[name].as_str().map(str::to_owned);
        Ok(Self { after: field("after"), page: field("page"), newest: field("newest") })
    }

    fn render(&self) -> String {
        json!({ "after": self.after, "page": self.page, "newest": self.newest }).to_string()
    }

    /// The cursor after a page whose newest change is `newest_on_page`
    /// (comparable text), with `next_page` if more pages follow under the bound.
    fn advance(&self, newest_on_page: Option<String>, next_page: Option<String>) -> Self {
        let newest = match (self.newest.clone(), newest_on_page) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        match next_page {
            Some(page) => Self { after: self.after.clone(), page: Some(page), newest },
            None => Self { after: newest.clone().or_else(|| self.after.clone()), page: None, newest },
        }
    }
}

/// Where a page is, in words: `第 60 页（自 2024-10-08T09:30:00+08:00 起的变更）`;
/// a row's number is appended as `第 N 条`.
fn page_position(cursor: &LenderCursor) -> String {
    let page = match &cursor.page {
        None => "第 1 页".to_owned(),
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => format!("第 {p} 页"),
        Some(token) => format!("页标记 {token} 处"),
    };
    match &cursor.after {
        Some(after) => format!("{page}（{after} 之后的变更）"),
        None => format!("{page}（自起始）"),
    }
}

fn check_unit(unit: &str, field: &str) -> Result<String, RowError> {
    UnitNo::parse(unit).map(|u| u.as_str().to_owned()).map_err(|e| ("bad_identifier", format!("{field} {unit:?}: {e}")))
}

/// A bank's mortgage-application feed.
#[derive(Clone)]
pub struct Bank {
    /// Connector name (`bank:ID`).
    pub name: String,
    /// The bank's id, e.g. `icbc`.
    pub id: String,
    /// Base URL (the feed is at `{base}/bank/v1/mortgage-applications`).
    pub base_url: String,
    /// Bearer token.
    pub token: String,
    /// Items per page (≤ 1000).
    pub page_size: usize,
    /// Retries.
    pub policy: RetryPolicy,
    /// HTTP client.
    pub client: reqwest::Client,
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("token", &"***")
            .finish()
    }
}

impl Bank {
    /// A bank feed with default retries and the largest pages.
    pub fn new(id: &str, base_url: &str, token: &str) -> Self {
        Self {
            name: format!("bank:{id}"),
            id: id.to_owned(),
            base_url: base_url.to_owned(),
            token: token.to_owned(),
            page_size: 1000,
            policy: RetryPolicy::default(),
            client: crate::fetch::client(),
        }
    }

    /// Validates one item.
    pub fn parse_item(&self, item: &Value) -> Result<(LoanApplication, Vec<Flaw>), RowError> {
        parse_bank_item(&self.name, item)
    }
}

/// Validates one item of a bank's feed (`docs/partners.md` §3) as a loan of
/// `source` (`bank:ID`). A borrower's ID failing its check is a flaw: the
/// loan is kept with the number masked.
pub fn parse_bank_item(source: &str, item: &Value) -> Result<(LoanApplication, Vec<Flaw>), RowError> {
    {
        let borrower = item.get("borrower").ok_or_else(|| missing("borrower"))?;
        let status = match text(item, "status")? {
            "SUBMITTED" => "submitted_to_registry",
            "ACCEPTED" => "accepted",
            "REGISTERED" => "registered",
            "REJECTED" => "rejected",
            "WITHDRAWN" => "withdrawn",
            other => return Err(("unknown_code", format!("status {other:?} is not a known status"))),
        };
        let product = text(item, "product")?;
        if !matches!(product, "PRESALE_NOTICE_MORTGAGE" | "MORTGAGE" | "RELEASE") {
            return Err(("unknown_code", format!("product {product:?} is not a known product")));
        }
        let mut flaws = Vec::new();
        let borrower_id_no =
            kept_party_id(text(borrower, "idNo").map_err(|_| missing("borrower.idNo"))?, "borrower.idNo", &mut flaws);
        let loan = LoanApplication {
            source: source.to_owned(),
            external_id: text(item, "applicationId")?.to_owned(),
            lender_kind: "bank".into(),
            borrower_name: text(borrower, "name").map_err(|_| missing("borrower.name"))?.to_owned(),
            borrower_id_no,
            unit_no: check_unit(text(item, "propertyUnitNo")?, "propertyUnitNo")?,
            amount_cents: yuan_to_cents(text(item, "loanAmount")?, "loanAmount")?,
            applied_at: time(item, "submittedAt")?.ok_or_else(|| missing("submittedAt"))?,
            status: status.into(),
            registry_case_no: item.get("registryCaseNo").and_then(Value::as_str).map(str::to_owned),
            source_updated_at: time(item, "updatedAt")?.ok_or_else(|| missing("updatedAt"))?,
        };
        Ok((loan, flaws))
    }
}

/// One page of a bank's feed, decoded.
#[derive(Debug)]
pub struct BankPage {
    /// Its items, validated, bad ones kept.
    pub rows: Vec<Result<Record, BadRow>>,
    /// `nextPageToken`.
    pub next_page: Option<String>,
    /// The newest `updatedAt` on the page, bad items included.
    pub newest: Option<DateTime<Utc>>,
}

impl Bank {
    /// Decodes one page as received (`{"items":[…],"nextPageToken":…}`);
    /// `position` names the page in quarantine entries (each item's index is appended).
    pub fn decode_items(&self, body: &[u8], position: &str) -> Result<BankPage, PageError> {
        let envelope: Value = serde_json::from_slice(body).map_err(|e| PageError::Unreadable(e.to_string()))?;
        let items = envelope["items"].as_array().ok_or_else(|| PageError::Unreadable("no items".into()))?;
        let next_page = match &envelope["nextPageToken"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => return Err(PageError::Unreadable(format!("nextPageToken {other} is not text"))),
        };
        let mut newest: Option<DateTime<Utc>> = None;
        let rows = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                // The bound moves past bad items too: they are kept in quarantine.
                if let Ok(Some(updated)) = time(item, "updatedAt") {
                    newest = newest.max(Some(updated));
                }
                self.parse_item(item).map(|(l, f)| Record::Loan(l, f)).map_err(|(reason_code, reason)| BadRow {
                    position: format!("{position}第 {} 条", i + 1),
                    reason_code,
                    reason,
                    raw: item.to_string().into_bytes(),
                })
            })
            .collect();
        Ok(BankPage { rows, next_page, newest })
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl Source for Bank {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch_page(&self, cursor: Option<&str>) -> Result<Page, PageError> {
        let at = LenderCursor::parse(cursor)?;
        let mut url = format!(
            "{}/bank/v1/mortgage-applications?page_size={}",
            self.base_url.trim_end_matches('/'),
            self.page_size
        );
        if let Some(after) = &at.after {
            url.push_str(&format!("&updated_after={}", after.replace('+', "%2B")));
        }
        if let Some(page) = &at.page {
            url.push_str(&format!("&page_token={page}"));
        }
        let body = fetch::get(&self.client, &url, Some(&self.token), &self.policy).await?;
        let decoded = self.decode_items(&body, &page_position(&at)).map_err(|e| e.from_where(&self.name))?;
        let (rows, next_page, newest) = (decoded.rows, decoded.next_page, decoded.newest);
        let has_more = next_page.is_some();
        let next = at.advance(newest.map(rfc3339), next_page);
        Ok(Page::new(rows, next.render(), has_more))
    }
}

/// The provident fund's loan feed.
#[derive(Debug, Clone)]
pub struct ProvidentFund {
    /// Connector name.
    pub name: String,
    /// Base URL, e.g. `http://host/gjj/v1`.
    pub base_url: String,
    /// Retries.
    pub policy: RetryPolicy,
    /// HTTP client.
    pub client: reqwest::Client,
}

/// The source name provident-fund loans carry.
pub const PROVIDENT_FUND_SOURCE: &str = "provident_fund";

impl ProvidentFund {
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

/// Validates one `<Loan>` (its child elements by name). A borrower's ID
/// failing its check is a flaw: the loan is kept with the number masked.
pub fn parse_gjj_loan(fields: &xmlrows::Fields) -> Result<(LoanApplication, Vec<Flaw>), RowError> {
    let get = |name: &str| -> Result<&str, RowError> {
        fields.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| missing(name))
    };
    let kind = get("DKLX")?;
    if !matches!(kind, "1" | "2") {
        return Err(("unknown_code", format!("DKLX {kind:?} is not 1 or 2")));
    }
    let status = match get("ZT")? {
        "1" => "submitted_to_registry",
        "2" => "registered",
        "3" => "rejected",
        other => return Err(("unknown_code", format!("ZT {other:?} is not 1, 2 or 3"))),
    };
    let mut flaws = Vec::new();
    let borrower_id_no = kept_party_id(get("JKRZJH")?, "JKRZJH", &mut flaws);
    let loan = LoanApplication {
        source: PROVIDENT_FUND_SOURCE.into(),
        external_id: get("DKBH")?.to_owned(),
        lender_kind: "provident_fund".into(),
        borrower_name: get("JKRXM")?.to_owned(),
        borrower_id_no,
        unit_no: check_unit(get("BDCDYH")?, "BDCDYH")?,
        amount_cents: yuan_to_cents(get("DKJE")?, "DKJE")?,
        applied_at: china_time_field(get("SQSJ")?, "SQSJ", "%Y%m%d%H%M%S")?,
        status: status.into(),
        registry_case_no: fields.get("YWH").filter(|v| !v.is_empty()).cloned(),
        source_updated_at: china_time_field(get("GXSJ")?, "GXSJ", "%Y%m%d%H%M%S")?,
    };
    Ok((loan, flaws))
}

/// One `<LoanList>` page of the provident fund, decoded.
#[derive(Debug)]
pub struct LoanPage {
    /// Its loans, validated, bad ones kept.
    pub rows: Vec<Result<Record, BadRow>>,
    /// The `pages` attribute.
    pub pages: u64,
    /// The newest `GXSJ` on the page (`yyyyMMddHHmmss`).
    pub newest: Option<String>,
}

/// Decodes one page as received (GB18030 XML); `position` names the page in
/// quarantine entries (each row's index is appended).
pub fn decode_loans(body: &[u8], position: &str) -> Result<LoanPage, PageError> {
    let text = encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(body)
        .ok_or_else(|| PageError::Unreadable("the page is not valid GB18030".into()))?;
    let list = xmlrows::split(&text, "LoanList", "Loan")?;
    let pages: u64 = list
        .attributes
        .get("pages")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| PageError::Unreadable("<LoanList> without pages".into()))?;
    let mut newest: Option<String> = None;
    let rows = list
        .rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let bad = |(reason_code, reason): RowError, raw: &str| BadRow {
                position: format!("{position}第 {} 条", i + 1),
                reason_code,
                reason,
                raw: raw.as_bytes().to_vec(),
            };
            let fields = row.fields.map_err(|e| bad(("malformed", e.to_string()), &row.raw))?;
            if let Some(g) = fields.get("GXSJ").filter(|g| g.len() == 14) {
                newest = newest.clone().max(Some(g.clone()));
            }
            parse_gjj_loan(&fields).map(|(l, f)| Record::Loan(l, f)).map_err(|e| bad(e, &row.raw))
        })
        .collect();
    Ok(LoanPage { rows, pages, newest })
}

impl Source for ProvidentFund {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch_page(&self, cursor: Option<&str>) -> Result<Page, PageError> {
        let at = LenderCursor::parse(cursor)?;
        let page: u64 = at.page.as_deref().unwrap_or("1").parse().unwrap_or(1);
        let mut url = format!("{}/loans?page={page}", self.base_url.trim_end_matches('/'));
        if let Some(since) = &at.after {
            url.push_str(&format!("&since={since}"));
        }
        let body = match fetch::get(&self.client, &url, None, &self.policy).await {
            Ok(body) => body,
            // No loans at all since the bound: page 1 of 0 pages.
            Err(fetch::FetchError::Refused { status: 400, body }) if page == 1 && body.contains("page must be") => {
                return Ok(Page::new(Vec::new(), at.render(), false));
            }
            Err(e) => return Err(e.into()),
        };
        let decoded = decode_loans(&body, &page_position(&at)).map_err(|e| e.from_where(&url))?;
        let (rows, pages, newest) = (decoded.rows, decoded.pages, decoded.newest);
        let next_page = (page < pages).then(|| (page + 1).to_string());
        let has_more = next_page.is_some();
        let next = at.advance(newest, next_page);
        Ok(Page::new(rows, next.render(), has_more))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_moves_only_after_the_last_page() {
        let start = LenderCursor::default();
        let mid = start.advance(Some("2024-01-02".into()), Some("p2".into()));
        assert_eq!(mid.after, None);
        assert_eq!(mid.page.as_deref(), Some("p2"));
        let end = mid.advance(Some("2024-01-01".into()), None);
        assert_eq!(end.after.as_deref(), Some("2024-01-02"));
        assert_eq!(end.page, None);
        assert_eq!(LenderCursor::parse(Some(&end.render())).expect("parse"), end);
        // Nothing new: the bound stays.
        assert_eq!(end.advance(None, None).after.as_deref(), Some("2024-01-02"));
    }
}
