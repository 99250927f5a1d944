//! The server-rendered pages: Simplified Chinese by default, English with
//! `?lang=en`; charts as SVG with their data tables; every table downloadable
//! as CSV with `?download=TABLE`. No script anywhere.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Datelike, NaiveDate};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde_json::Value;
use store::accounts::Account;
use warehouse::WarehouseError;
use warehouse::console::{self, Format};
use warehouse::kpi::{self, Dim, Kpi, KpiRequest, KpiResult};
use warehouse::session::{register_snapshot, session_with_limit};

use crate::Dashboards;
use crate::auth::{self, Page, Role};
use crate::svg::{self, Marker, Point};

/// Display language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 简体中文, the default.
    #[default]
    Zh,
    /// English, with `?lang=en`.
    En,
}

impl Lang {
    fn pick(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::Zh => zh,
            Self::En => en,
        }
    }

    fn html_lang(self) -> &'static str {
        self.pick("zh-CN", "en")
    }
}

/// The filters every dashboard page takes.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    from: Option<String>,
    to: Option<String>,
    district: Option<String>,
    business_type: Option<String>,
    channel: Option<String>,
    category: Option<String>,
    section: Option<String>,
    month: Option<String>,
    lang: Option<String>,
    download: Option<String>,
    format: Option<String>,
}

impl Filters {
    fn lang(&self) -> Lang {
        if self.lang.as_deref() == Some("en") { Lang::En } else { Lang::Zh }
    }

    /// The period: `from`..`to`, by default 1 January of last year to today.
    fn period(&self, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), String> {
        let parse = |name: &str, v: &Option<String>, default: NaiveDate| match v.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| format!("{name} {text:?} is not a date like 2025-01-31")),
        };
        let default_from = NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).unwrap_or(today);
        let from = parse("from", &self.from, default_from)?;
        let to = parse("to", &self.to, today)?;
        if to < from {
            return Err(format!("to {to} is before from {from}"));
        }
        Ok((from, to))
    }

    fn kpi_filters(&self) -> Vec<(Dim, String)> {
        [(Dim::District, &self.district), (Dim::BusinessType, &self.business_type), (Dim::Channel, &self.channel)]
            .into_iter()
            .filter_map(|(dim, v)| v.as_ref().filter(|v| !v.is_empty()).map(|v| (dim, v.clone())))
            .collect()
    }

    /// The query string of these filters with some keys replaced (`None` removes).
    fn link(&self, path: &str, changes: &[(&str, Option<&str>)]) -> String {
        let mut pairs: BTreeMap<&str, String> = BTreeMap::new();
        for (key, value) in [
            ("from", &self.from),
            ("to", &self.to),
            ("district", &self.district),
            ("business_type", &self.business_type),
            ("channel", &self.channel),
            ("lang", &self.lang),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                pairs.insert(key, v.clone());
            }
        }
        for (key, value) in changes {
            match value {
                Some(v) => pairs.insert(key, (*v).to_owned()),
                None => pairs.remove(key),
            };
        }
        if pairs.is_empty() {
            return path.to_owned();
        }
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect();
        format!("{path}?{}", query.join("&"))
    }
}

fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A data table shown under a chart and downloadable as CSV.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Its id in `?download=`.
    pub id: &'static str,
    /// Caption.
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Cells as text.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn csv(&self) -> String {
        let field = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
        };
        let mut out = String::from("\u{feff}");
        let line = |cells: &[String]| cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",");
        out.push_str(&line(&self.columns));
        out.push_str("\r\n");
        for row in &self.rows {
            out.push_str(&line(row));
            out.push_str("\r\n");
        }
        out
    }

    /// The table as an Excel workbook: numbers as numbers, the rest as text.
    fn xlsx(&self) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        for (c, title) in self.columns.iter().enumerate() {
            sheet.write_string_with_format(0, u16::try_from(c).unwrap_or(u16::MAX), title, &bold)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                match cell.parse::<f64>() {
                    Ok(n) if n.is_finite() => sheet.write_number(r, c, n)?,
                    _ => sheet.write_string(r, c, cell)?,
                };
            }
        }
        workbook.save_to_buffer()
    }

    fn render(&self, filters: &Filters, path: &str, lang: Lang) -> Markup {
        html! {
            section.table {
                h3 {
                    (self.title) " "
                    a.download href=(filters.link(path, &[("download", Some(self.id))])) { (lang.pick("下载 CSV", "Download CSV")) }
                    " "
                    a.download href=(filters.link(path, &[("download", Some(self.id)), ("format", Some("xlsx"))])) { (lang.pick("下载 Excel", "Download Excel")) }
                }
                table {
                    thead { tr { @for c in &self.columns { th { (c) } } } }
                    tbody {
                        @for row in &self.rows { tr { @for cell in row { td { (cell) } } } }
                        @if self.rows.is_empty() { tr { td colspan=(self.columns.len()) { (lang.pick("无数据", "No data")) } } }
                    }
                }
            }
        }
    }
}

/// What can go wrong rendering a page, and the status it answers with.
#[derive(Debug)]
pub enum PageError {
    /// A bad filter or parameter: 400.
    BadRequest(String),
    /// No warehouse snapshot yet: 503.
    NoSnapshot(String),
    /// Anything else: 500, details in the log.
    Internal(String),
}

impl From<WarehouseError> for PageError {
    fn from(e: WarehouseError) -> Self {
        match e {
            WarehouseError::BadRequest(m) => Self::BadRequest(m),
            WarehouseError::NoSnapshot(m) => Self::NoSnapshot(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<store::StoreError> for PageError {
    fn from(e: store::StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// Column headers in the page's language, from (Chinese, English) pairs.
fn column_titles(lang: Lang, names: &[(&'static str, &'static str)]) -> Vec<String> {
    names.iter().map(|(zh, en)| lang.pick(zh, en).to_owned()).collect()
}

fn rate_text(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn cell_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn business_type_name(code: &str, lang: Lang) -> String {
    domain::BusinessType::from_code(code)
        .map_or_else(|| code.to_owned(), |t| lang.pick(t.name_zh(), t.name_en()).to_owned())
}

fn channel_name(code: &str, lang: Lang) -> String {
    code.parse::<u8>()
        .ok()
        .and_then(domain::Channel::from_code)
        .map_or_else(|| code.to_owned(), |c| lang.pick(c.name_zh(), c.name_en()).to_owned())
}

/// A KPI result as a table: dimensions (named), numerator, denominator, rate.
fn kpi_table(id: &'static str, title: String, result: &KpiResult, dims: &[Dim], lang: Lang) -> Table {
    let mut columns: Vec<String> = dims.iter().map(|d| dim_title(*d, lang).to_owned()).collect();
    columns.extend(
        [lang.pick("分子", "Numerator"), lang.pick("分母", "Denominator"), lang.pick("比率", "Rate")].map(String::from),
    );
    let rows = result
        .rates()
        .iter()
        .map(|row| {
            let mut cells: Vec<String> = dims.iter().map(|d| dim_value(*d, row.dim(*d), lang)).collect();
            cells.push(row.numerator.to_string());
            cells.push(row.denominator.to_string());
            cells.push(rate_text(row.rate));
            cells
        })
        .collect();
    Table { id, title, columns, rows }
}

fn dim_title(dim: Dim, lang: Lang) -> &'static str {
    match dim {
        Dim::BusinessType => lang.pick("业务类型", "Business type"),
        Dim::Month => lang.pick("月份", "Month"),
        Dim::Week => lang.pick("周", "Week"),
        Dim::Channel => lang.pick("渠道", "Channel"),
        Dim::District => lang.pick("区县", "District"),
        Dim::Phase => lang.pick("期次", "Phase"),
        Dim::ApplicantKind => lang.pick("申请人类型", "Applicant"),
        Dim::Category => lang.pick("差错类别", "Category"),
        Dim::Severity => lang.pick("严重程度", "Severity"),
        Dim::Section => lang.pick("责任科室", "Section"),
        Dim::EvaluationChannel => lang.pick("评价渠道", "Review channel"),
    }
}

/// A QC error category's name (the registry's `cclx` codes, docs/partners.md); unknown codes as they are.
fn qc_category_name(code: &str, lang: Lang) -> String {
    let name = match code {
        "SQCL" => lang.pick("申请材料", "Application materials"),
        "QLR" => lang.pick("权利人信息", "Right-holder data"),
        "FW" => lang.pick("房屋与面积", "Unit and area"),
        "DBNR" => lang.pick("登簿内容", "Register entry"),
        "ZS" => lang.pick("证书内容", "Certificate content"),
        "LC" => lang.pick("程序与时限", "Procedure and time limit"),
        "QT" => lang.pick("其他", "Other"),
        _ => return code.to_owned(),
    };
    format!("{name} ({code})")
}

/// A section's name; unknown codes as they are.
fn section_name(code: &str, lang: Lang) -> String {
    match code {
        "online_approval" => lang.pick("网上审批科", "Online approval"),
        "registration_5" => lang.pick("登记五科", "Registration section 5"),
        "archives" => lang.pick("档案馆", "Archives"),
        "it" => lang.pick("信息科", "IT section"),
        "qc" => lang.pick("质量检查科", "Quality control"),
        _ => return code.to_owned(),
    }
    .to_owned()
}

fn dim_value(dim: Dim, v: Option<&str>, lang: Lang) -> String {
    let text = v.unwrap_or_default();
    match dim {
        Dim::BusinessType => business_type_name(text, lang),
        Dim::Channel => channel_name(text, lang),
        Dim::Category => qc_category_name(text, lang),
        Dim::Section => section_name(text, lang),
        _ => text.to_owned(),
    }
}

/// One page's content: title, charts and tables.
struct Content {
    body: Markup,
    tables: Vec<Table>,
}

impl Dashboards {
    /// The signed-in account, or the response to send instead: a redirect to
    /// the login page, or 403 when the role may not see `page`.
    async fn authorize(&self, headers: &HeaderMap, page: Page, lang: Lang) -> Result<(Account, Role), Response> {
        let now = (self.clock)();
        let account = match auth::session_token(headers) {
            Some(token) => self.store.touch_session(&auth::token_hash(&token), auth::IDLE_TIMEOUT, now).await,
            None => Ok(None),
        };
        let account = match account {
            Ok(Some(a)) => a,
            Ok(None) => {
                let next = url_encode(page.path());
                let lang = if lang == Lang::En { "&lang=en" } else { "" };
                return Err(Redirect::to(&format!("/login?next={next}{lang}")).into_response());
            }
            Err(e) => return Err(error_page(PageError::Internal(e.to_string()), lang)),
        };
        let Some(role) = Role::from_code(&account.role) else {
            return Err(forbidden(&account, None, lang));
        };
        if !page.allows(role) {
            return Err(forbidden(&account, Some(role), lang));
        }
        Ok((account, role))
    }

    /// The current snapshot, shared by every page request, with its KPI results cached.
    async fn snapshot(&self) -> Result<std::sync::Arc<warehouse::cache::OpenSnapshot>, PageError> {
        Ok(self.kpis.snapshot().await?)
    }

    /// A session of its own (the analyst console: a runaway query must not hold the pages' memory pool).
    async fn session(&self) -> Result<datafusion_ctx::Ctx, PageError> {
        let ctx = session_with_limit(None, Some(self.kpis.memory_bytes()))?;
        register_snapshot(&ctx, self.kpis.root()).await?;
        Ok(ctx)
    }

    /// Renders `page` for the request: authorization, content, layout or CSV.
    async fn serve_page<F, Fut>(&self, headers: &HeaderMap, page: Page, filters: &Filters, build: F) -> Response
    where
        F: FnOnce(Role, Account) -> Fut,
        Fut: std::future::Future<Output = Result<Content, PageError>>,
    {
        let lang = filters.lang();
        let (account, role) = match self.authorize(headers, page, lang).await {
            Ok(ok) => ok,
            Err(response) => return response,
        };
        let content = match build(role, account.clone()).await {
            Ok(c) => c,
            Err(e) => return error_page(e, lang),
        };
        if let Some(id) = filters.download.as_deref() {
            let table = content.tables.iter().find(|t| t.id == id);
            if let (Some(table), Some("xlsx")) = (table, filters.format.as_deref()) {
                return match table.xlsx() {
                    Ok(bytes) => (
                        [
                            (
                                header::CONTENT_TYPE,
                                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
                            ),
                            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{id}.xlsx\"")),
                        ],
                        bytes,
                    )
                        .into_response(),
                    Err(e) => error_page(PageError::Internal(e.to_string()), lang),
                };
            }
            return match table {
                Some(table) => (
                    [
                        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{id}.csv\"")),
                    ],
                    table.csv(),
                )
                    .into_response(),
                None => error_page(PageError::BadRequest(format!("this page has no table {id:?}")), lang),
            };
        }
        let path = page.path();
        let body = html! {
            (content.body)
            @for t in &content.tables { (t.render(filters, path, lang)) }
        };
        layout(page, Some((&account, role)), filters, lang, body).into_response()
    }
}

/// The warehouse session type, named once.
mod datafusion_ctx {
    pub type Ctx = warehouse::datafusion::prelude::SessionContext;
}

fn layout(page: Page, user: Option<(&Account, Role)>, filters: &Filters, lang: Lang, body: Markup) -> Html<String> {
    let (zh, en) = page.title();
    Html(html! {
        (DOCTYPE)
        html lang=(lang.html_lang()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (lang.pick(zh, en)) " · " (lang.pick("不动产登记网办监测", "Online registration monitor")) }
                link rel="stylesheet" href="/static/app.css";
                link rel="icon" type="image/svg+xml" href="/static/favicon.svg";
            }
            body {
                header.top {
                    span.brand { (lang.pick("不动产登记“全程网办”监测", "Online registration monitor")) }
                    @if let Some((account, role)) = user {
                        nav {
                            @for p in Page::ALL.into_iter().filter(|p| p.in_menu() && p.allows(role)) {
                                a.current[p == page] href=(filters.link(p.path(), &[])) { (lang.pick(p.title().0, p.title().1)) }
                            }
                        }
                        span.user { (account.name) " · " (lang.pick(role.name_zh(), role.code())) }
                        form.logout method="post" action="/logout" { button type="submit" { (lang.pick("退出", "Log out")) } }
                    }
                    a.lang href=(filters.link(page.path(), &[("lang", if lang == Lang::En { None } else { Some("en") })])) {
                        (lang.pick("English", "中文"))
                    }
                }
                main {
                    h1 { (lang.pick(zh, en)) }
                    (body)
                }
            }
        }
    }
    .into_string())
}

fn forbidden(account: &Account, role: Option<Role>, lang: Lang) -> Response {
    let body = html! {
        p.error { (lang.pick("您的角色无权查看此页面。", "Your role may not see this page.")) }
        @if role == Some(Role::Operator) {
            p { (lang.pick("自助端操作员只能查看本人经办的案件。", "Self-service operators see only the cases they handle.")) }
        }
    };
    let user = role.map(|r| (account, r));
    (StatusCode::FORBIDDEN, layout(Page::Overview, user, &Filters::default(), lang, body)).into_response()
}

fn error_page(error: PageError, lang: Lang) -> Response {
    let (status, message) = match error {
        PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
        PageError::NoSnapshot(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
        PageError::Internal(m) => {
            tracing::error!(message = "dashboard page failed", error = %m);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                lang.pick("页面生成失败，详见服务日志。", "The page failed; see the service log.").to_owned(),
            )
        }
    };
    let body = html! { p.error { (message) } };
    (status, layout(Page::Overview, None, &Filters::default(), lang, body)).into_response()
}

fn filter_form(filters: &Filters, from: NaiveDate, to: NaiveDate, lang: Lang) -> Markup {
    html! {
        form.filters method="get" {
            label { (lang.pick("起", "From")) " " input type="date" name="from" value=(from); }
            label { (lang.pick("止", "To")) " " input type="date" name="to" value=(to); }
            label { (lang.pick("区县", "District")) " " input type="text" name="district" size="8" value=[filters.district.as_deref()]; }
            label { (lang.pick("业务类型", "Type")) " "
                select name="business_type" {
                    option value="" { (lang.pick("全部", "All")) }
                    @for t in domain::BusinessType::ALL {
                        option value=(t.code()) selected[filters.business_type.as_deref() == Some(t.code())] { (lang.pick(t.name_zh(), t.name_en())) }
                    }
                }
            }
            label { (lang.pick("渠道", "Channel")) " "
                select name="channel" {
                    option value="" { (lang.pick("全部", "All")) }
                    @for c in domain::Channel::ALL {
                        @let code = c.code().to_string();
                        option value=(code) selected[filters.channel.as_deref() == Some(code.as_str())] { (lang.pick(c.name_zh(), c.name_en())) }
                    }
                }
            }
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            button type="submit" { (lang.pick("查询", "Apply")) }
        }
    }
}

/// What one page shows: a KPI broken down by some dimensions.
type Need = (Kpi, &'static [Dim]);

/// The KPIs each page shows, declared as data: a page reads its figures
/// only through [`Figures`], which holds exactly these, and
/// [`Dashboards::warm`] computes the union for the default period as soon as
/// a snapshot appears, so the first visitor after a refresh does not wait for
/// a scan of the whole warehouse.
fn page_kpis(page: Page) -> &'static [Need] {
    match page {
        Page::Overview => &[
            (Kpi::OnlineRate, &[]),
            (Kpi::OnlineRate, &[Dim::Month]),
            (Kpi::OnlineRate, &[Dim::BusinessType]),
            (Kpi::EndToEndRate, &[]),
            (Kpi::OnTimeRate, &[]),
            (Kpi::Satisfaction, &[]),
            (Kpi::QcErrors, &[]),
        ],
        Page::Types => &[
            (Kpi::OnlineRate, &[Dim::BusinessType]),
            (Kpi::EndToEndRate, &[Dim::BusinessType]),
            (Kpi::OnTimeRate, &[Dim::BusinessType]),
            (Kpi::FirstTimeRight, &[Dim::BusinessType]),
        ],
        Page::Qc => &[
            (Kpi::QcErrors, &[]),
            (Kpi::QcErrors, &[Dim::Category]),
            (Kpi::QcErrors, &[Dim::Section]),
            (Kpi::QcErrors, &[Dim::Month]),
        ],
        Page::Seizures => &[(Kpi::Seizures, &[]), (Kpi::Anomalies, &[])],
        Page::QcCases | Page::Connectors | Page::Sql | Page::Audit | Page::Sandbox | Page::MyCases | Page::Cases => &[],
    }
}

/// The figures of one page for one period and set of filters: the KPIs it
/// declares ([`page_kpis`]), through the KPI service.
struct Figures {
    page: Page,
    results: Vec<(Need, std::sync::Arc<KpiResult>)>,
}

impl Figures {
    /// `kpi` broken down `by`; an error if the page did not declare it.
    fn get(&self, kpi: Kpi, by: &[Dim]) -> Result<&KpiResult, PageError> {
        self.results.iter().find(|((k, b), _)| *k == kpi && *b == by).map(|(_, r)| &**r).ok_or_else(|| {
            PageError::Internal(format!("{:?} shows {kpi} by {by:?} without declaring it in page_kpis", self.page))
        })
    }
}

impl Dashboards {
    /// The figures `page` declares, for the days `from..=to` and `filters`
    /// (the KPIs that take no filters get none).
    async fn figures(
        &self,
        page: Page,
        from: NaiveDate,
        to: NaiveDate,
        filters: &[(Dim, String)],
    ) -> Result<Figures, PageError> {
        let mut results = Vec::new();
        for &(kpi, by) in page_kpis(page) {
            let filters = if kpi.takes_filters() { filters.to_vec() } else { Vec::new() };
            let request = KpiRequest::new(from, to, by).filtered(filters);
            results.push(((kpi, by), self.kpis.kpi(kpi, &request).await?.result));
        }
        Ok(Figures { page, results })
    }

    /// Computes every page's KPIs for the default period on the current snapshot
    /// (each once per snapshot: on a snapshot already warm this costs nothing).
    /// Answers the snapshot id and how many KPI results it holds.
    pub async fn warm(&self) -> Result<(String, usize), String> {
        let snap = self.kpis.snapshot().await.map_err(|e| e.to_string())?;
        let now = (self.clock)();
        let (from, to) = Filters::default().period(domain::time::local_date(now))?;
        for page in Page::ALL {
            self.figures(page, from, to, &[]).await.map_err(|e| format!("{e:?}"))?;
        }
        // The connectors page's monthly reconciliation: each month's online rate, cached.
        snap.reconcile_cases(&warehouse::reconcile::Delivered::default()).await.map_err(|e| e.to_string())?;
        Ok((snap.manifest.snapshot_id.clone(), snap.cached_results()))
    }
}

fn tile(title: &str, value: String, caption: &str) -> Markup {
    html! { div.tile { div.tile-title { (title) } div.tile-value { (value) } div.tile-caption { (caption) } } }
}

/// The firing alerts of `kinds` as a banner (nothing when none fires).
async fn alert_banner(d: &Dashboards, kinds: &[&str], lang: Lang) -> Result<Markup, PageError> {
    let firing: Vec<store::alerts::Alert> =
        d.store.alerts().await?.into_iter().filter(|a| a.is_firing() && kinds.contains(&a.kind.as_str())).collect();
    let critical = firing.iter().any(|a| a.severity == "critical");
    Ok(html! {
        @if !firing.is_empty() {
            section.alerts.critical[critical] role="alert" {
                h2 { (lang.pick("告警", "Alerts")) " (" (firing.len()) ")" }
                ul {
                    @for a in &firing {
                        li {
                            strong { (alert_kind_name(&a.kind, lang)) } "：" (a.summary) " "
                            span.since { (lang.pick("自 ", "since ")) (domain::time::china_time(a.since).format("%Y-%m-%d %H:%M")) }
                        }
                    }
                }
            }
        }
    })
}

fn alert_kind_name(kind: &str, lang: Lang) -> &'static str {
    match kind {
        warehouse::alerts::ONLINE_RATE => lang.pick("网办率低于进度", "Online rate behind trajectory"),
        warehouse::alerts::SEIZURES_EXPIRING => lang.pick("查封即将到期", "Seizures expiring"),
        warehouse::alerts::CONNECTOR_LAG => lang.pick("连接器滞后", "Connector lagging"),
        _ => lang.pick("其他", "Other"),
    }
}

/// `GET /`: progress toward 90%.
pub async fn overview(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Overview, &filters, |role, _| async move {
        // Points and bars open the cases behind them for roles that may see case lists.
        let drill_to = if Page::Cases.allows(role) { "/cases" } else { "" };
        let lang = f.lang();
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now)).map_err(PageError::BadRequest)?;
        let figures = dd.figures(Page::Overview, from, to, &f.kpi_filters()).await?;
        let total = figures.get(Kpi::OnlineRate, &[])?;
        let monthly = figures.get(Kpi::OnlineRate, &[Dim::Month])?;
        let by_type = figures.get(Kpi::OnlineRate, &[Dim::BusinessType])?;
        let e2e = figures.get(Kpi::EndToEndRate, &[])?;
        let on_time = figures.get(Kpi::OnTimeRate, &[])?;
        let satisfaction = figures.get(Kpi::Satisfaction, &[])?;
        let qc = figures.get(Kpi::QcErrors, &[])?;
        let target = total.target.unwrap_or(kpi::TARGET_ONLINE_RATE);
        let rate = total.overall_rate();
        let series: BTreeMap<String, f64> = monthly
            .rates()
            .iter()
            .filter_map(|r| Some((r.dim(Dim::Month).unwrap_or_default().to_owned(), r.rate?)))
            .collect();
        let projection = kpi::projection(&series, 6);
        let points: Vec<Point> = monthly
            .rates()
            .iter()
            .map(|r| {
                let month = r.dim(Dim::Month).unwrap_or_default().to_owned();
                let href = month_range(&month).map(|(a, b)| {
                    f.link(if drill_to.is_empty() { "/types" } else { drill_to }, &[("from", Some(&a)), ("to", Some(&b))])
                });
                Point { label: month, value: r.rate, href, shown: None }
            })
            .collect();
        let markers: Vec<Marker> = domain::business::Phase::ALL
            .iter()
            .map(|p| Marker {
                at: p.go_live().format("%Y-%m").to_string(),
                caption: format!("{}{}", lang.pick("第", "Phase "), p.number()) + lang.pick("期", ""),
            })
            .collect();
        let type_points: Vec<Point> = by_type
            .rates()
            .iter()
            .map(|r| {
                let code = r.dim(Dim::BusinessType).unwrap_or_default();
                Point {
                    label: business_type_name(code, lang),
                    value: r.rate,
                    href: Some(f.link(if drill_to.is_empty() { "/" } else { drill_to }, &[("business_type", Some(code))])),
                    shown: None,
                }
            })
            .collect();
        let gap = rate.map(|r| target - r);
        let banner = alert_banner(&dd, &warehouse::alerts::KINDS, lang).await?;
        let body = html! {
            (banner)
            (filter_form(&f, from, to, lang))
            div.tiles {
                (tile(lang.pick("网办率", "Online rate"), rate_text(rate), &format!("{} {} · {} {}",
                    lang.pick("目标", "target"), rate_text(Some(target)),
                    lang.pick("差距", "gap"), gap.map_or_else(|| "—".into(), |g| format!("{:+.1} pp", -g * 100.0)))))
                (tile(lang.pick("全程网办率", "End-to-end online"), rate_text(e2e.overall_rate()), lang.pick("零等待：无需到窗口", "Zero waiting: no counter visit")))
                (tile(lang.pick("按时办结率", "On time"), rate_text(on_time.overall_rate()), lang.pick("零延迟：承诺时限内登簿", "Zero delay: recorded within the committed limit")))
                (tile(lang.pick("质检差错（每千件）", "QC errors per 1,000"), qc.overall_rate().map_or_else(|| "—".into(), |v| format!("{v:.2}")), lang.pick("零差错：越低越好", "Zero errors: lower is better")))
                (tile(lang.pick("满意率", "Satisfaction"), rate_text(satisfaction.overall_rate()), lang.pick("好评占评价", "good reviews among all")))
            }
            p.projection {
                (lang.pick("按近 6 个月趋势，达到 90% 的月份：", "At the last 6 months' trend, 90% is reached in: "))
                strong { (projection.as_deref().unwrap_or(lang.pick("趋势未向目标靠近", "not at the current trend"))) }
            }
            h2 { (lang.pick("网办率月度趋势", "Online rate by month")) }
            (svg::line_chart(lang.pick("网办率月度趋势（虚线为 90% 目标，竖线为各期上线）", "Online rate by month (dashed: 90% target; verticals: phase go-live)"), &points, Some(target), &markers))
            h2 { (lang.pick("各业务类型网办率", "Online rate by business type")) }
            (svg::bar_chart(lang.pick("各业务类型网办率", "Online rate by business type"), &type_points, Some(target)))
        };
        let tables = vec![
            kpi_table("monthly", lang.pick("网办率月度数据", "Online rate by month").into(), monthly, &[Dim::Month], lang),
            kpi_table("by_type", lang.pick("各业务类型网办率数据", "Online rate by type").into(), by_type, &[Dim::BusinessType], lang),
        ];
        Ok(Content { body, tables })
    })
    .await
}

/// The first and last day of a `YYYY-MM` month.
fn month_range(month: &str) -> Option<(String, String)> {
    let first = warehouse::export::first_day_of_month(month)?;
    let next = first.checked_add_months(chrono::Months::new(1))?;
    Some((first.to_string(), next.pred_opt()?.to_string()))
}

/// `GET /types`: every business type since its go-live.
pub async fn types(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Types, &filters, |role, _| async move {
        // Bars open the cases behind them for roles that may see case lists, else the overview for the type.
        let drill_to = if Page::Cases.allows(role) { "/cases" } else { "/" };
        let lang = f.lang();
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now)).map_err(PageError::BadRequest)?;
        let figures = dd.figures(Page::Types, from, to, &f.kpi_filters()).await?;
        let by = [Dim::BusinessType];
        let online = figures.get(Kpi::OnlineRate, &by)?;
        let e2e = figures.get(Kpi::EndToEndRate, &by)?;
        let on_time = figures.get(Kpi::OnTimeRate, &by)?;
        let ftr = figures.get(Kpi::FirstTimeRight, &by)?;
        let rate_of = |r: &KpiResult, code: &str| r.row_where(Dim::BusinessType, code).and_then(|row| row.rate);
        let catalogue = domain::business::Catalogue::builtin();
        let mut table = Table {
            id: "types",
            title: lang.pick("业务类型一览（自上线之日起）", "Business types (since go-live)").into(),
            columns: column_titles(
                lang,
                &[
                    ("业务类型", "Business type"),
                    ("期次", "Phase"),
                    ("上线日期", "Go-live"),
                    ("案件数", "Cases"),
                    ("网办率", "Online"),
                    ("全程网办率", "End-to-end"),
                    ("按时办结率", "On time"),
                    ("一次办结率", "First time right"),
                ],
            ),
            rows: Vec::new(),
        };
        for info in catalogue.entries() {
            let code = info.business_type.code();
            let cases = online.row_where(Dim::BusinessType, code).map_or(0, |row| row.denominator).to_string();
            table.rows.push(vec![
                lang.pick(info.business_type.name_zh(), info.business_type.name_en()).to_owned(),
                info.phase.map_or_else(|| "—".into(), |p| p.number().to_string()),
                info.go_live.to_string(),
                cases,
                rate_text(rate_of(online, code)),
                rate_text(rate_of(e2e, code)),
                rate_text(rate_of(on_time, code)),
                rate_text(rate_of(ftr, code)),
            ]);
        }
        let points: Vec<Point> = catalogue
            .entries()
            .iter()
            .map(|info| Point {
                label: lang.pick(info.business_type.name_zh(), info.business_type.name_en()).to_owned(),
                value: rate_of(on_time, info.business_type.code()),
                href: Some(f.link(drill_to, &[("business_type", Some(info.business_type.code()))])),
                shown: None,
            })
            .collect();
        let body = html! {
            (filter_form(&f, from, to, lang))
            h2 { (lang.pick("各业务类型按时办结率", "On-time rate by business type")) }
            (svg::bar_chart(lang.pick("各业务类型按时办结率", "On-time rate by business type"), &points, None))
        };
        Ok(Content { body, tables: vec![table] })
    })
    .await
}

/// `GET /qc`: QC errors by category, section, type and month.
pub async fn qc(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Qc, &filters, |role, _| async move {
        let lang = f.lang();
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now)).map_err(PageError::BadRequest)?;
        let figures = dd.figures(Page::Qc, from, to, &f.kpi_filters()).await?;
        let total = figures.get(Kpi::QcErrors, &[])?;
        let by_category = figures.get(Kpi::QcErrors, &[Dim::Category])?;
        let by_section = figures.get(Kpi::QcErrors, &[Dim::Section])?;
        let by_month = figures.get(Kpi::QcErrors, &[Dim::Month])?;
        let drill = Page::QcCases.allows(role);
        let bars = |result: &KpiResult, dim: Dim| -> Vec<Point> {
            let max = result.rates().iter().filter_map(|r| r.rate).fold(0.0_f64, f64::max).max(1e-9);
            result
                .rates()
                .iter()
                .map(|r| {
                    let value = r.dim(dim).unwrap_or_default();
                    Point {
                        label: dim_value(dim, r.dim(dim), lang),
                        // Bars are drawn as a share of the largest figure, labelled with the figure.
                        value: r.rate.map(|v| v / max),
                        href: drill.then(|| f.link("/qc/cases", &[(dim.name(), Some(value))])),
                        shown: r.rate.map(|v| format!("{v:.2}‰")),
                    }
                })
                .collect()
        };
        let open = match total.total().map(|r| r.extra) {
            Some(kpi::Extra::Qc { open }) => open.unwrap_or(0),
            _ => 0,
        };
        let body = html! {
            (filter_form(&f, from, to, lang))
            div.tiles {
                (tile(lang.pick("差错（每千件）", "Errors per 1,000 cases"), total.overall_rate().map_or_else(|| "—".into(), |v| format!("{v:.2}")), ""))
                (tile(lang.pick("差错件数", "Findings"), total.total().map(|r| r.numerator.to_string()).unwrap_or_default(), ""))
                (tile(lang.pick("未整改", "Open"), open.to_string(), lang.pick("尚未更正的差错", "not yet corrected")))
            }
            h2 { (lang.pick("按差错类别：每千件差错", "By category: errors per 1,000 cases")) }
            (svg::bar_chart(lang.pick("按差错类别", "By category"), &bars(by_category, Dim::Category), None))
            h2 { (lang.pick("按责任科室：每千件差错", "By section: errors per 1,000 cases")) }
            (svg::bar_chart(lang.pick("按责任科室", "By section"), &bars(by_section, Dim::Section), None))
        };
        let per_1000_table = |id, title: &str, result: &KpiResult, dim: Dim| {
            let mut t = kpi_table(id, title.to_owned(), result, &[dim], lang);
            if let Some(last) = t.columns.last_mut() {
                *last = lang.pick("每千件", "Per 1,000").to_owned();
            }
            for (row, figures) in t.rows.iter_mut().zip(result.rates()) {
                if let Some(last) = row.last_mut() {
                    *last = figures.rate.map_or_else(|| "—".into(), |v| format!("{v:.2}"));
                }
            }
            t
        };
        let tables = vec![
            per_1000_table("by_category", lang.pick("按差错类别", "By category"), by_category, Dim::Category),
            per_1000_table("by_section", lang.pick("按责任科室", "By section"), by_section, Dim::Section),
            per_1000_table("by_month", lang.pick("按月份", "By month"), by_month, Dim::Month),
        ];
        Ok(Content { body, tables })
    })
    .await
}

/// `GET /qc/cases`: the findings behind a QC figure, with masked applicants. Audited.
pub async fn qc_cases(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::QcCases, &filters, |_, account| async move {
        let lang = f.lang();
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now)).map_err(PageError::BadRequest)?;
        let conditions = case_list_conditions(
            "c.submitted_at",
            from,
            to,
            &[
                ("f.category", &f.category),
                ("f.section", &f.section),
                ("c.month", &f.month),
                ("c.district", &f.district),
                ("c.business_type", &f.business_type),
            ],
        )?;
        let sql = format!(
            "SELECT c.case_no, c.business_type, c.district, c.applicant_id_masked, f.category, f.severity, f.section, \
             f.found_at, f.corrected_at \
             FROM qc_findings f JOIN cases c ON f.case_no = c.case_no WHERE {} ORDER BY f.found_at DESC, c.case_no LIMIT 500",
            conditions.join(" AND ")
        );
        let snap = dd.snapshot().await?;
        let batches = snap.query(&sql).await?;
        let rows = kpi::batches_to_rows(&batches);
        let detail = serde_json::json!({ "filters": conditions, "rows": rows.len() }).to_string();
        dd.store.append_audit(now, &account.name, "dashboard.case_list", "/qc/cases", &detail).await?;
        let columns = ["case_no", "business_type", "district", "applicant_id_masked", "category", "severity", "section", "found_at", "corrected_at"];
        let table = Table {
            id: "cases",
            title: format!("{} ({})", lang.pick("质检差错案件（最多 500 条，证件号已脱敏）", "QC findings (at most 500, identities masked)"), rows.len()),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: rows
                .iter()
                .map(|r| columns.iter().map(|c| if *c == "business_type" { business_type_name(&cell_text(r.get(*c)), lang) } else { cell_text(r.get(*c)) }).collect())
                .collect(),
        };
        Ok(Content { body: html! { p { a href=(f.link("/qc", &[])) { (lang.pick("返回质检", "Back to QC")) } } }, tables: vec![table] })
    })
    .await
}

fn status_name(status: domain::CaseStatus, lang: Lang) -> &'static str {
    use domain::CaseStatus as S;
    match status {
        S::Submitted => lang.pick("已申请", "Submitted"),
        S::Accepted => lang.pick("已受理", "Accepted"),
        S::Correction => lang.pick("补正中", "Correction"),
        S::Verified => lang.pick("已核定", "Verified"),
        S::Recorded => lang.pick("已登簿", "Recorded"),
        S::CertificatePrepared => lang.pick("已缮证", "Certificate prepared"),
        S::Issued => lang.pick("已发证", "Issued"),
        S::Archived => lang.pick("已归档", "Archived"),
        S::Refused => lang.pick("不予受理", "Refused"),
        S::Withdrawn => lang.pick("已撤回", "Withdrawn"),
    }
}

/// `GET /my/cases`: the cases the operator handled at their terminal, read from the
/// store (current, not the nightly snapshot), identities masked, every view audited.
/// The account's `section` is its terminal or window code (`wangban user add --section ZZ03`).
pub async fn my_cases(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::MyCases, &filters, |_, account| async move {
        let lang = f.lang();
        let Some(handler) = account.section.clone().filter(|s| !s.is_empty()) else {
            return Ok(Content {
                body: html! { p.notice { (lang.pick(
                    "此账户未绑定自助终端或窗口编号，因此没有可显示的案件。请管理员执行 wangban user add --section 终端编号 重新开户。",
                    "This account is not bound to a terminal or window code, so it has no cases to show. An administrator sets one with wangban user add --section CODE.")) } },
                tables: Vec::new(),
            });
        };
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now)).map_err(PageError::BadRequest)?;
        let start = domain::time::local_day_end(from.pred_opt().unwrap_or(from));
        let end = domain::time::local_day_end(to);
        let cases = dd.store.cases_handled_by(&handler, start, end, MY_CASES_LIMIT).await?;
        let detail = serde_json::json!({ "handler": handler, "from": from.to_string(), "to": to.to_string(), "rows": cases.len() }).to_string();
        dd.store.append_audit(now, &account.name, "dashboard.case_list", "/my/cases", &detail).await?;
        let local = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| domain::time::china_time(t).format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
        };
        let table = Table {
            id: "my_cases",
            title: format!(
                "{} {handler} ({}{})",
                lang.pick("经办人", "Handler"),
                cases.len(),
                if cases.len() as i64 == MY_CASES_LIMIT { lang.pick("，仅显示最近的", ", latest only") } else { "" }
            ),
            columns: column_titles(lang, &[("业务号", "Case number"), ("业务类型", "Business type"), ("状态", "Status"), ("申请时间", "Submitted"), ("受理时间", "Accepted"), ("登簿时间", "Recorded"), ("申请人证件号（脱敏）", "Applicant ID (masked)"), ("区县", "District")]),
            rows: cases
                .iter()
                .map(|c| {
                    let r = &c.record;
                    vec![
                        r.case_no.clone(),
                        business_type_name(r.business_type().code(), lang),
                        status_name(r.status, lang).to_owned(),
                        local(Some(r.submitted_at)),
                        local(r.accepted_at),
                        local(r.recorded_at),
                        r.applicant_id_masked(),
                        r.district.clone(),
                    ]
                })
                .collect(),
        };
        Ok(Content {
            body: html! { p { (lang.pick(
                "按自助业务窗口管理守则，这里只列出您经办的案件；每次查看都记入审计日志。办理完毕请退出登录。",
                "Under the self-service window rules this lists only the cases you handled; every view is audited. Log out when you are done.")) } },
            tables: vec![table],
        })
    })
    .await
}

/// `GET /cases`: the cases behind a figure of the overview or the types page,
/// from the warehouse snapshot, identities masked, every view audited. QC
/// analysts see every case; section staff only the cases standing at their
/// section's step (`auth::section_statuses`).
pub async fn cases(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Cases, &filters, |role, account| async move {
        let lang = f.lang();
        let statuses = if role == Role::Staff {
            match account.section.as_deref().and_then(auth::section_statuses) {
                Some(statuses) => Some(statuses),
                None => {
                    return Ok(Content {
                        body: html! { p.notice { (lang.pick(
                            "此账户未绑定科室（online_approval、registration_5 或 archives），因此没有可显示的案件。",
                            "This account has no section (online_approval, registration_5 or archives), so it has no cases to show.")) } },
                        tables: Vec::new(),
                    });
                }
            }
        } else {
            None
        };
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now)).map_err(PageError::BadRequest)?;
        let mut conditions = case_list_conditions(
            "submitted_at",
            from,
            to,
            &[("month", &f.month), ("district", &f.district), ("business_type", &f.business_type), ("channel", &f.channel)],
        )?;
        if let Some(statuses) = statuses {
            let list: Vec<String> = statuses.iter().map(|s| format!("'{s}'")).collect();
            conditions.push(format!("status IN ({})", list.join(", ")));
        }
        let sql = format!(
            "SELECT case_no, business_type, channel, district, status, submitted_at, applicant_id_masked \
             FROM cases WHERE {} ORDER BY submitted_at DESC, case_no LIMIT {CASES_LIMIT}",
            conditions.join(" AND ")
        );
        let snap = dd.snapshot().await?;
        let batches = snap.query(&sql).await?;
        let rows = kpi::batches_to_rows(&batches);
        let detail = serde_json::json!({ "filters": conditions, "rows": rows.len(), "section": account.section }).to_string();
        dd.store.append_audit(now, &account.name, "dashboard.case_list", "/cases", &detail).await?;
        let status_label = |code: &str| {
            domain::CaseStatus::from_code(code).map_or_else(|| code.to_owned(), |s| status_name(s, lang).to_owned())
        };
        let table = Table {
            id: "cases",
            title: format!(
                "{} ({}{})",
                lang.pick("案件（证件号已脱敏）", "Cases (identities masked)"),
                rows.len(),
                if rows.len() == CASES_LIMIT { lang.pick("，仅显示最近的", ", latest only") } else { "" }
            ),
            columns: column_titles(lang, &[("业务号", "Case number"), ("业务类型", "Business type"), ("渠道", "Channel"), ("区县", "District"), ("状态", "Status"), ("申请时间", "Submitted"), ("申请人证件号（脱敏）", "Applicant ID (masked)")]),
            rows: rows
                .iter()
                .map(|r| {
                    vec![
                        cell_text(r.get("case_no")),
                        business_type_name(&cell_text(r.get("business_type")), lang),
                        channel_name(&cell_text(r.get("channel")), lang),
                        cell_text(r.get("district")),
                        status_label(&cell_text(r.get("status"))),
                        cell_text(r.get("submitted_at")),
                        cell_text(r.get("applicant_id_masked")),
                    ]
                })
                .collect(),
        };
        let scope = match (role, account.section.as_deref()) {
            (Role::Staff, Some(section)) => format!("{} {section}", lang.pick("本科室待办：", "Your section's step:")),
            _ => String::new(),
        };
        Ok(Content {
            body: html! {
                (filter_form(&f, from, to, lang))
                @if !scope.is_empty() { p { (scope) } }
            },
            tables: vec![table],
        })
    })
    .await
}

/// The WHERE conditions of a case list: submitted within `from..=to` (China
/// time) on `submitted_column`, and each given filter as a plain code compared
/// as text. Anything but letters, digits, `_` and `-` is refused, so values can
/// be placed in the SQL.
fn case_list_conditions(
    submitted_column: &str,
    from: NaiveDate,
    to: NaiveDate,
    filters: &[(&str, &Option<String>)],
) -> Result<Vec<String>, PageError> {
    let mut conditions = vec![format!(
        "{submitted_column} >= TIMESTAMP '{}' AND {submitted_column} < TIMESTAMP '{}'",
        domain::time::local_day_end(from.pred_opt().unwrap_or(from)).format("%Y-%m-%dT%H:%M:%SZ"),
        domain::time::local_day_end(to).format("%Y-%m-%dT%H:%M:%SZ")
    )];
    for (column, value) in filters {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            if !kpi::is_plain_code(v) {
                return Err(PageError::BadRequest(format!("{column} {v:?}: expected a code")));
            }
            conditions.push(format!("CAST({column} AS VARCHAR) = '{v}'"));
        }
    }
    Ok(conditions)
}

/// Rows `/cases` shows at most.
const CASES_LIMIT: usize = 500;

/// Rows `/my/cases` shows at most.
const MY_CASES_LIMIT: i64 = 500;

/// `GET /seizures`: the seizure register and conflicts.
pub async fn seizures(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Seizures, &filters, |_, _| async move {
        let lang = f.lang();
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now)).map_err(PageError::BadRequest)?;
        let figures = dd.figures(Page::Seizures, from, to, &[]).await?;
        let summary = match &figures.get(Kpi::Seizures, &[])?.rows {
            kpi::Rows::Seizures(rows) => rows.first().copied(),
            _ => None,
        };
        let count = |pick: fn(&kpi::SeizureSummary) -> Option<i64>| {
            summary.as_ref().and_then(pick).map(|n| n.to_string()).unwrap_or_default()
        };
        let anomalies = match &figures.get(Kpi::Anomalies, &[])?.rows {
            kpi::Rows::Anomalies(rows) => rows.clone(),
            _ => Vec::new(),
        };
        let banner = alert_banner(&dd, &[warehouse::alerts::SEIZURES_EXPIRING], lang).await?;
        let body = html! {
            (banner)
            div.tiles {
                (tile(lang.pick("收到", "Received"), count(|s| Some(s.received)), lang.pick("期间内送达", "served in the period")))
                (tile(lang.pick("有效查封", "Active"), count(|s| s.active), ""))
                (tile(lang.pick("轮候", "Queued"), count(|s| s.queued), ""))
                (tile(lang.pick("已解封", "Released"), count(|s| s.released), ""))
                (tile(lang.pick("已失效", "Lapsed"), count(|s| s.lapsed), ""))
                (tile(lang.pick("30 日内到期", "Expiring in 30 days"), count(|s| s.expiring_within_30_days), ""))
                (tile(lang.pick("送达至登簿（中位小时）", "Served to recorded (median hours)"), summary.and_then(|s| s.median_hours_to_record).map(|h| h.to_string()).unwrap_or_default(), ""))
            }
        };
        let table = Table {
            id: "conflicts",
            title: lang.pick("对账异常（含查封期间办理转移、抵押）", "Reconciliation anomalies (incl. transfers and mortgages on seized units)").into(),
            columns: column_titles(lang, &[("类型", "Kind"), ("合作方", "Partner"), ("件数", "Count")]),
            rows: anomalies.iter().map(|r| vec![r.kind.clone(), r.partner.clone().unwrap_or_default(), r.count.to_string()]).collect(),
        };
        Ok(Content { body, tables: vec![table] })
    })
    .await
}

/// `GET /connectors`: the health of every connector and the quarantine.
pub async fn connectors(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Connectors, &filters, |role, _| async move {
        let lang = f.lang();
        let now = (dd.clock)();
        let states = dd.store.all_connector_states().await?;
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or_else(|| "—".into(), |t| domain::time::china_time(t).format("%Y-%m-%d %H:%M:%S").to_string())
        };
        let health = Table {
            id: "health",
            title: lang.pick("连接器状态", "Connector health").into(),
            columns: column_titles(lang, &[("连接器", "Connector"), ("状态", "Status"), ("最近运行", "Last run"), ("最近成功", "Last success"), ("滞后", "Lag"), ("上次速率（条/秒）", "Last run rows/s"), ("累计记录", "Records"), ("失败次数", "Errors"), ("隔离记录", "Quarantined"), ("最近错误", "Last error")]),
            rows: states
                .iter()
                .map(|s| {
                    vec![
                        s.connector.clone(),
                        s.status.clone(),
                        time(s.last_run_at),
                        time(s.last_success_at),
                        s.lag(now).map_or_else(|| "—".into(), |l| format!("{} min", l.num_minutes())),
                        format!("{:.0}", s.last_run_rate()),
                        s.records_total.to_string(),
                        s.errors_total.to_string(),
                        s.quarantined_total.to_string(),
                        s.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        };
        let entries = dd.store.list_quarantine(None, true, 100).await?;
        let quarantine = Table {
            id: "quarantine",
            title: lang
                .pick(
                    "隔离区（待处理，最近 100 条；修复后用 wangban quarantine replay ID 重放）",
                    "Quarantine (pending, latest 100; replay with `wangban quarantine replay ID`)",
                )
                .into(),
            columns: column_titles(lang, &[("编号", "Id"), ("时间", "When"), ("来源", "Source"), ("位置", "Position"), ("原因", "Reason")]),
            rows: entries
                .iter()
                .map(|q| {
                    vec![
                        q.id.to_string(),
                        time(Some(q.created_at)),
                        q.source.clone(),
                        q.position.clone(),
                        format!("{}: {}", q.reason_code, q.reason),
                    ]
                })
                .collect(),
        };
        let findings = Table {
            id: "findings",
            title: lang
                .pick(
                    "数据质量问题（记录已接收并计入指标，问题字段已脱敏；明细用 wangban quarantine list --findings）",
                    "Data-quality findings (records kept and counted, flawed values masked; details with `wangban quarantine list --findings`)",
                )
                .into(),
            columns: column_titles(lang, &[("来源", "Source"), ("字段", "Field"), ("规则", "Rule"), ("记录数", "Records")]),
            rows: dd
                .store
                .count_data_findings()
                .await?
                .into_iter()
                .map(|f| vec![f.source, f.field, f.rule, f.records.to_string()])
                .collect(),
        };
        // Month by month: the cases the registry delivered against the cases the online rate counts.
        let snapshot = dd.snapshot().await.ok();
        let checks = match &snapshot {
            Some(snap) => {
                let delivered = warehouse::reconcile::Delivered::from_store(&dd.store).await?;
                snap.reconcile_cases(&delivered).await?
            }
            None => Vec::new(),
        };
        let differing = checks.iter().filter(|c| c.difference() != 0).count();
        let reconciliation = Table {
            id: "case_reconciliation",
            title: lang
                .pick(
                    "按月对账：登记系统交付的案件 = 网办率计入 + 按定义排除（差额应为 0；快照之后到达的案件也会显示为差额）",
                    "Month by month: cases the registry delivered = counted by the online rate + left out by its definition (the difference should be 0; cases that arrived after the snapshot show as a difference too)",
                )
                .into(),
            columns: column_titles(lang, &[("月份", "Month"), ("交付", "Delivered"), ("其中有数据质量问题", "Of which flawed"), ("计入", "Counted"), ("排除", "Left out"), ("差额", "Difference")]),
            rows: checks
                .iter()
                .map(|c| {
                    vec![
                        c.month.clone(),
                        c.delivered.to_string(),
                        c.flawed.to_string(),
                        c.counted.to_string(),
                        c.excluded.to_string(),
                        c.difference().to_string(),
                    ]
                })
                .collect(),
        };
        let banner = alert_banner(&dd, &[warehouse::alerts::CONNECTOR_LAG], lang).await?;
        let body = html! {
            (banner)
            @match &snapshot {
                None => p.hint { (lang.pick("尚无数仓快照，按月对账待首次刷新后显示。", "No warehouse snapshot yet: the monthly reconciliation shows after the first refresh.")) },
                Some(snap) if differing == 0 => p.ok { (lang.pick("按月对账一致：", "Every month reconciles: ")) (checks.len()) (lang.pick(" 个月，快照 ", " months, snapshot ")) (snap.manifest.snapshot_id) },
                Some(snap) => p.error { (differing) (lang.pick(" 个月对账不一致（快照 ", " months do not reconcile (snapshot ")) (snap.manifest.snapshot_id) (lang.pick("），见下表。", "); see the table.")) },
            }
            @if role == Role::Admin && !entries.is_empty() {
                form.replay method="post" action="/connectors/replay" {
                    label { (lang.pick("重放隔离记录编号", "Replay quarantine entry")) " " input type="number" name="id" min="1" required; }
                    " "
                    button type="submit" { (lang.pick("按原样重放", "Replay as kept")) }
                    " "
                    span.hint { (lang.pick("记录会按接入规则重新校验；修正后的记录请用 wangban quarantine replay ID --payload 文件。",
                                           "The record is validated again by its connector's rules; for a corrected record use wangban quarantine replay ID --payload FILE.")) }
                }
            }
        };
        Ok(Content { body, tables: vec![health, reconciliation, quarantine, findings] })
    })
    .await
}

/// The replay form.
#[derive(Debug, Deserialize)]
pub struct ReplayForm {
    /// Quarantine entry id.
    pub id: i64,
}

/// `POST /connectors/replay` (administrators): validates a quarantined record
/// again with its connector's parser and, if it passes now, writes it as the
/// poll loop would (`connectors::replay`); audited either way.
pub async fn quarantine_replay(
    State(d): State<Dashboards>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
    Form(form): Form<ReplayForm>,
) -> Response {
    let lang = filters.lang();
    let (account, role) = match d.authorize(&headers, Page::Connectors, lang).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    if role != Role::Admin {
        return forbidden(&account, Some(role), lang);
    }
    let now = (d.clock)();
    let result = connectors::replay::replay(&d.store, form.id, None, now).await;
    let (status, message) = match &result {
        Ok(outcome) => (StatusCode::OK, format!("{} {}: {outcome:?}", lang.pick("已重放", "Replayed"), form.id)),
        Err(connectors::replay::ReplayError::NotFound(_)) => {
            (StatusCode::NOT_FOUND, result.as_ref().err().map(ToString::to_string).unwrap_or_default())
        }
        Err(connectors::replay::ReplayError::Store(e)) => {
            tracing::error!(message = "quarantine replay failed", error = %e);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                lang.pick("存储暂不可用，请稍后重试", "the store is unavailable; retry later").to_owned(),
            )
        }
        Err(other) => (StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    };
    let detail = serde_json::json!({ "id": form.id, "status": status.as_u16(), "result": message }).to_string();
    if let Err(e) = d.store.append_audit(now, &account.name, "quarantine.replay", &form.id.to_string(), &detail).await {
        tracing::error!(message = "could not audit a replay", error = %e);
    }
    let body = html! {
        p class=(if status == StatusCode::OK { "notice" } else { "error" }) { (message) }
        p { a href=(filters.link("/connectors", &[])) { (lang.pick("返回数据接入", "Back to connectors")) } }
    };
    (status, layout(Page::Connectors, Some((&account, role)), &filters, lang, body)).into_response()
}

/// `GET /sql`: the console's empty form.
pub async fn sql_form(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    d.serve_page(&headers, Page::Sql, &filters, |_, _| async {
        Ok(Content { body: sql_box("", filters.lang()), tables: Vec::new() })
    })
    .await
}

fn sql_box(sql: &str, lang: Lang) -> Markup {
    html! {
        p { (lang.pick("只读查询：表 cases、qc_findings、evaluations、seizures、anomalies；可用 EXPLAIN 与 EXPLAIN ANALYZE。每条查询记入审计日志。",
                        "Read-only: tables cases, qc_findings, evaluations, seizures, anomalies; EXPLAIN and EXPLAIN ANALYZE allowed. Every query is audited.")) }
        form.sql method="post" action="/sql" {
            textarea name="sql" rows="8" cols="100" { (sql) }
            br;
            button type="submit" name="format" value="html" { (lang.pick("运行", "Run")) }
            " "
            button type="submit" name="format" value="csv" { (lang.pick("导出 CSV", "Export CSV")) }
        }
    }
}

/// The console's form with the wanted output.
#[derive(Debug, Deserialize)]
pub struct SqlPost {
    sql: String,
    format: Option<String>,
}

/// `POST /sql`: runs a read-only query; the result as a table or CSV. Audited.
pub async fn sql_run(
    State(d): State<Dashboards>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
    Form(form): Form<SqlPost>,
) -> Response {
    let lang = filters.lang();
    let (account, role) = match d.authorize(&headers, Page::Sql, lang).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let answer = run_console(&d, &account, &form.sql).await;
    let csv = form.format.as_deref() == Some("csv");
    let body = match answer {
        Ok((batches, _, _)) if csv => {
            return match console::render(&batches, Format::Csv) {
                Ok(bytes) => (
                    [
                        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                        (header::CONTENT_DISPOSITION, "attachment; filename=\"query.csv\""),
                    ],
                    bytes,
                )
                    .into_response(),
                Err(e) => error_page(PageError::Internal(e.to_string()), lang),
            };
        }
        Ok((batches, rows, truncated)) => {
            let table = batches_table(&batches);
            html! {
                (sql_box(&form.sql, lang))
                p { (rows) " " (lang.pick("行", "rows")) @if truncated { " " (lang.pick("（已截断）", "(cut at the row limit)")) } }
                (table.render(&Filters::default(), "/sql", lang))
            }
        }
        Err((status, message)) => {
            let page = html! { (sql_box(&form.sql, lang)) p.error { (message) } };
            return (status, layout(Page::Sql, Some((&account, role)), &filters, lang, page)).into_response();
        }
    };
    layout(Page::Sql, Some((&account, role)), &filters, lang, body).into_response()
}

/// Runs an analyst query under the console's limits and audits it.
pub(crate) async fn run_console(
    d: &Dashboards,
    account: &Account,
    sql: &str,
) -> Result<(Vec<warehouse::datafusion::arrow::record_batch::RecordBatch>, usize, bool), (StatusCode, String)> {
    let now = (d.clock)();
    let ctx = match d.session().await {
        Ok(ctx) => ctx,
        Err(PageError::NoSnapshot(m)) => return Err((StatusCode::SERVICE_UNAVAILABLE, m)),
        Err(PageError::BadRequest(m) | PageError::Internal(m)) => return Err((StatusCode::INTERNAL_SERVER_ERROR, m)),
    };
    let answer = console::query(&ctx, sql, d.sql_limits).await;
    let detail = serde_json::json!({
        "sql": sql,
        "rows": answer.as_ref().map(|a| a.rows).ok(),
        "error": answer.as_ref().err().map(ToString::to_string),
    });
    if let Err(e) = d.store.append_audit(now, &account.name, "warehouse.sql", "console", &detail.to_string()).await {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the query could not be audited, so it is not answered: {e}"),
        ));
    }
    match answer {
        Ok(a) => Ok((a.batches, a.rows, a.truncated)),
        Err(e @ (WarehouseError::ReadOnly(_) | WarehouseError::BadRequest(_))) => {
            Err((StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(e @ WarehouseError::Limit(_)) => Err((StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
        Err(e) => Err((StatusCode::BAD_REQUEST, e.to_string())),
    }
}

fn batches_table(batches: &[warehouse::datafusion::arrow::record_batch::RecordBatch]) -> Table {
    let columns: Vec<String> =
        batches.first().map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect()).unwrap_or_default();
    let rows =
        kpi::batches_to_rows(batches).iter().map(|r| columns.iter().map(|c| cell_text(r.get(c))).collect()).collect();
    Table { id: "result", title: String::new(), columns, rows }
}

/// `GET /audit`: the newest audit entries and whether the chain verifies.
pub async fn audit(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Audit, &filters, |_, _| async move {
        let lang = f.lang();
        let entries = dd.store.recent_audit(200).await?;
        let chain = dd.store.verify_audit_chain().await?;
        let body = html! {
            @match chain {
                Ok(n) => p.ok { (lang.pick("哈希链校验通过，共 ", "The hash chain verifies: ")) (n) (lang.pick(" 条。", " entries.")) },
                Err(b) => p.error { (lang.pick("哈希链在第 ", "The hash chain breaks at entry ")) (b.id) (lang.pick(" 条断开：", ": ")) (b.reason) },
            }
        };
        let table = Table {
            id: "audit",
            title: lang.pick("最近 200 条", "Latest 200").into(),
            columns: column_titles(lang, &[("编号", "Id"), ("时间", "When"), ("操作人", "Actor"), ("操作", "Action"), ("对象", "Subject"), ("详情", "Detail")]),
            rows: entries
                .iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        domain::time::china_time(e.at).format("%Y-%m-%d %H:%M:%S").to_string(),
                        e.actor.clone(),
                        e.action.clone(),
                        e.subject.clone(),
                        e.detail.clone(),
                    ]
                })
                .collect(),
        };
        let when = |t: chrono::DateTime<chrono::Utc>| domain::time::china_time(t).format("%Y-%m-%d %H:%M").to_string();
        let now = (dd.clock)();
        let accounts = Table {
            id: "accounts",
            title: lang.pick("账户（用 wangban user add|disable|enable|reset 管理）", "Accounts (managed with wangban user add|disable|enable|reset)").into(),
            columns: column_titles(lang, &[("用户名", "Name"), ("角色", "Role"), ("科室/终端", "Section or terminal"), ("状态", "State"), ("连续失败", "Failed logins"), ("创建", "Created")]),
            rows: dd
                .store
                .accounts()
                .await?
                .into_iter()
                .map(|a| {
                    let state = if a.disabled {
                        lang.pick("已停用", "disabled").to_owned()
                    } else if a.locked_until.is_some_and(|t| t > now) {
                        format!("{} {}", lang.pick("锁定至", "locked until"), a.locked_until.map(when).unwrap_or_default())
                    } else {
                        lang.pick("正常", "active").to_owned()
                    };
                    let role = Role::from_code(&a.role).map_or_else(|| a.role.clone(), |r| lang.pick(r.name_zh(), r.code()).to_owned());
                    vec![a.name, role, a.section.unwrap_or_default(), state, a.failed_logins.to_string(), when(a.created_at)]
                })
                .collect(),
        };
        let partners = Table {
            id: "partners",
            title: lang.pick("合作方（用 wangban partner add|rotate|disable 管理；密钥从不显示）", "Partners (managed with wangban partner add|rotate|disable; secrets never shown)").into(),
            columns: column_titles(lang, &[("编号", "Id"), ("类别", "Kind"), ("名称", "Name"), ("状态", "State"), ("每分钟限额", "Requests per minute"), ("创建", "Created")]),
            rows: dd
                .store
                .list_partners()
                .await?
                .into_iter()
                .map(|p| {
                    vec![
                        p.id,
                        p.kind.code().to_owned(),
                        p.name,
                        format!("{:?}", p.status).to_lowercase(),
                        p.rate_limit_per_minute.map(|n| n.to_string()).unwrap_or_else(|| lang.pick("不限", "no limit").to_owned()),
                        when(p.created_at),
                    ]
                })
                .collect(),
        };
        Ok(Content { body, tables: vec![table, accounts, partners] })
    })
    .await
}

/// `GET /sandbox`: the sandbox partners and their last requests with what was
/// wrong with each (the same as their signed `/api/court/v1/sandbox/report`).
pub async fn sandbox(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Sandbox, &filters, |_, _| async move {
        let lang = f.lang();
        let when = |t: chrono::DateTime<chrono::Utc>| domain::time::china_time(t).format("%Y-%m-%d %H:%M:%S").to_string();
        let partners: Vec<_> = dd.store.list_partners().await?.into_iter().filter(|p| p.sandbox).collect();
        let requests = match &dd.sandbox {
            Some(sandbox) => sandbox.recent_sandbox_requests(200).await?,
            None => Vec::new(),
        };
        let body = html! {
            p { (lang.pick(
                "沙箱合作方（wangban partner add --kind court --sandbox）推送的指令经过全部校验并得到真实回执，但只写入独立的沙箱登记簿，不影响正式登记簿、指标和正式指令的审计。合作方可用签名的 GET /api/court/v1/sandbox/report 查看同样的内容。",
                "Sandbox partners (wangban partner add --kind court --sandbox) get every check and real receipts, but their orders go to a separate sandbox register: never the real register, the KPIs or the audit of real orders. Each partner reads the same through the signed GET /api/court/v1/sandbox/report."
            )) }
            @if dd.sandbox.is_none() {
                p.error { (lang.pick("本服务未配置沙箱登记簿（database.sandbox_url）。", "This service runs without a sandbox register (database.sandbox_url).")) }
            }
        };
        let partner_table = Table {
            id: "sandbox_partners",
            title: lang.pick("沙箱合作方", "Sandbox partners").into(),
            columns: column_titles(lang, &[("编号", "Id"), ("名称", "Name"), ("状态", "State"), ("创建", "Created"), ("最近请求", "Last request"), ("有问题的请求", "Requests with problems")]),
            rows: partners
                .iter()
                .map(|p| {
                    let own: Vec<_> = requests.iter().filter(|r| r.partner_id == p.id).collect();
                    vec![
                        p.id.clone(),
                        p.name.clone(),
                        format!("{:?}", p.status).to_lowercase(),
                        when(p.created_at),
                        own.first().map(|r| when(r.received_at)).unwrap_or_default(),
                        format!("{} / {}", own.iter().filter(|r| !r.problems.is_empty()).count(), own.len()),
                    ]
                })
                .collect(),
        };
        let mut rows = Vec::new();
        for r in &requests {
            let head = vec![when(r.received_at), r.partner_id.clone(), format!("{} {}", r.method, r.path), r.http_status.to_string(), r.orders.to_string()];
            if r.problems.is_empty() {
                rows.push([head.clone(), vec![lang.pick("无问题", "no problem").to_owned(), String::new(), String::new()]].concat());
            }
            for problem in &r.problems {
                let place = match (problem.line, problem.column) {
                    (Some(l), Some(c)) => format!("{} {l}, {} {c}", lang.pick("行", "line"), lang.pick("列", "column")),
                    _ => problem.field.clone().unwrap_or_default(),
                };
                let rule = match (&problem.string_to_sign, &problem.rule) {
                    (Some(s), Some(rule)) => format!("{}: {s}; {rule}", lang.pick("应签名的字符串", "string to sign")),
                    (Some(s), None) => format!("{}: {s}", lang.pick("应签名的字符串", "string to sign")),
                    (None, rule) => rule.clone().unwrap_or_default(),
                };
                let what = match &problem.order_no {
                    Some(order_no) if !order_no.is_empty() => format!("{order_no}: {} {}", problem.code, problem.message),
                    _ => format!("{} {}", problem.code, problem.message),
                };
                rows.push([head.clone(), vec![what, place, rule.chars().take(600).collect()]].concat());
            }
        }
        let request_table = Table {
            id: "sandbox_requests",
            title: lang.pick("最近 200 个请求（新的在前）", "Latest 200 requests (newest first)").into(),
            columns: column_titles(lang, &[("时间", "When"), ("合作方", "Partner"), ("请求", "Request"), ("状态码", "Status"), ("指令数", "Orders"), ("问题", "Problem"), ("位置/字段", "Where"), ("规则/应签名的字符串", "Rule or string to sign")]),
            rows,
        };
        Ok(Content { body, tables: vec![partner_table, request_table] })
    })
    .await
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// Query of the login page.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    lang: Option<String>,
}

impl LoginQuery {
    fn lang(&self) -> Lang {
        if self.lang.as_deref() == Some("en") { Lang::En } else { Lang::Zh }
    }
}

fn login_page(query: &LoginQuery, message: Option<&str>) -> Html<String> {
    let lang = query.lang();
    let mut action = String::from("/login");
    let mut params = Vec::new();
    if let Some(next) = query.next.as_deref() {
        params.push(format!("next={}", url_encode(next)));
    }
    if lang == Lang::En {
        params.push("lang=en".into());
    }
    if !params.is_empty() {
        action = format!("{action}?{}", params.join("&"));
    }
    let body = html! {
        @if let Some(m) = message { p.error { (m) } }
        form.login method="post" action=(action) {
            label { (lang.pick("用户名", "User name")) br; input type="text" name="username" autocomplete="username" required; }
            label { (lang.pick("密码", "Password")) br; input type="password" name="password" autocomplete="current-password" required; }
            button type="submit" { (lang.pick("登录", "Log in")) }
        }
    };
    let filters = Filters { lang: query.lang.clone(), ..Filters::default() };
    Html(html! {
        (DOCTYPE)
        html lang=(lang.html_lang()) {
            head {
                meta charset="utf-8";
                title { (lang.pick("登录", "Log in")) }
                link rel="stylesheet" href="/static/app.css";
                link rel="icon" type="image/svg+xml" href="/static/favicon.svg";
            }
            body {
                header.top { span.brand { (lang.pick("不动产登记“全程网办”监测", "Online registration monitor")) }
                    a.lang href=(filters.link("/login", &[("lang", if lang == Lang::En { None } else { Some("en") })])) { (lang.pick("English", "中文")) } }
                main { h1 { (lang.pick("登录", "Log in")) } (body) }
            }
        }
    }
    .into_string())
}

/// `GET /login`.
pub async fn login_form(Query(query): Query<LoginQuery>) -> Response {
    login_page(&query, None).into_response()
}

/// `POST /login`: checks the password, opens a session, lands on `next` or the role's home.
pub async fn login(
    State(d): State<Dashboards>,
    axum::Extension(client): axum::Extension<crate::Client>,
    Query(query): Query<LoginQuery>,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = query.lang();
    let now = (d.clock)();
    let fail = |status: StatusCode, message: &str| (status, login_page(&query, Some(message))).into_response();
    let account = match d.store.account_by_name(form.username.trim()).await {
        Ok(a) => a,
        Err(e) => return error_page(PageError::Internal(e.to_string()), lang),
    };
    let wrong = lang.pick("用户名或密码错误。", "Wrong user name or password.");
    let Some(account) = account else {
        auth::verify_dummy(&form.password);
        let _ = d
            .store
            .append_audit(
                now,
                &client.0,
                "session.login_failed",
                form.username.trim(),
                "{\"reason\":\"unknown account\"}",
            )
            .await;
        return fail(StatusCode::UNAUTHORIZED, wrong);
    };
    if let Some(until) = account.locked_until.filter(|u| *u > now) {
        let minutes = (until - now).num_minutes() + 1;
        let message = match lang {
            Lang::Zh => format!("连续输错密码次数过多，账户已锁定，请 {minutes} 分钟后再试。"),
            Lang::En => format!("Too many wrong passwords: the account is locked; try again in {minutes} minutes."),
        };
        return fail(StatusCode::TOO_MANY_REQUESTS, &message);
    }
    if account.disabled || !auth::verify_password(&form.password, &account.password_hash) {
        if !account.disabled
            && let Err(e) = d.store.record_login_failure(account.id, auth::MAX_FAILURES, auth::LOCKOUT, now).await
        {
            return error_page(PageError::Internal(e.to_string()), lang);
        }
        let _ = d
            .store
            .append_audit(
                now,
                &client.0,
                "session.login_failed",
                &account.name,
                "{\"reason\":\"wrong password or disabled\"}",
            )
            .await;
        return fail(StatusCode::UNAUTHORIZED, wrong);
    }
    let token = auth::new_token();
    if let Err(e) = d.store.open_session(&account, &auth::token_hash(&token), &client.0, now).await {
        return error_page(PageError::Internal(e.to_string()), lang);
    }
    let role = Role::from_code(&account.role);
    let next = query
        .next
        .as_deref()
        .filter(|n| n.starts_with('/') && !n.starts_with("//"))
        .and_then(|n| Page::ALL.into_iter().find(|p| p.path() == n))
        .filter(|p| role.is_some_and(|r| p.allows(r)))
        .or_else(|| role.and_then(Page::home))
        .map_or("/", Page::path);
    let next = if lang == Lang::En { format!("{next}?lang=en") } else { next.to_owned() };
    ([(header::SET_COOKIE, auth::session_cookie(&token, d.secure_cookies))], Redirect::to(&next)).into_response()
}

/// `POST /logout` (and `GET`): ends the session.
pub async fn logout(State(d): State<Dashboards>, headers: HeaderMap) -> Response {
    if let Some(token) = auth::session_token(&headers)
        && let Err(e) = d.store.close_session(&auth::token_hash(&token)).await
    {
        return error_page(PageError::Internal(e.to_string()), Lang::Zh);
    }
    ([(header::SET_COOKIE, auth::clear_cookie(d.secure_cookies))], Redirect::to("/login")).into_response()
}
