//! The server-rendered pages: Simplified Chinese by default, English with
//! `?lang=en`; charts as SVG with their data tables; every table downloadable
//! as CSV with `?download=TABLE`. No script anywhere.
//!
//! One file per page (dispatched by `auth::Page`); what they share is here:
//! filters, errors, the layout, the figures a page declares.

mod audit;
mod cases;
mod connectors;
mod login;
mod overview;
mod qc;
mod reports;
mod sandbox;
mod seizures;
mod sql;
mod types;

pub use audit::audit;
pub use cases::{cases, my_cases};
pub use connectors::{ReplayForm, connectors, quarantine_replay};
pub use login::{LoginForm, LoginQuery, login, login_form, logout};
pub use overview::overview;
pub use qc::{qc, qc_cases};
pub use reports::{report_file, report_print, reports};
pub use sandbox::sandbox;
pub use seizures::seizures;
pub(crate) use sql::run_console;
pub use sql::{SqlPost, sql_form, sql_run};
pub use types::types;

use crate::Dashboards;
use crate::auth::{self, Page, Role};
pub(crate) use crate::i18n::*;
use crate::params::ParamError;
use crate::svg::{self, Marker, Point};
pub(crate) use crate::table::*;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Datelike, NaiveDate};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use store::accounts::Account;
use warehouse::WarehouseError;
use warehouse::console::{self, Format};
use warehouse::kpi::{self, Dim, Kpi, KpiRequest, KpiResult};

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
    fn period(&self, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), ParamError> {
        let parse = |name, v: &Option<String>, default: NaiveDate| match v.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(text) => crate::params::date(name, text),
        };
        let default_from = NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).unwrap_or(today);
        let from = parse("from", &self.from, default_from)?;
        let to = parse("to", &self.to, today)?;
        if to < from {
            return Err(ParamError::Reversed { from, to });
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
    pub(crate) fn link(&self, path: &str, changes: &[(&str, Option<&str>)]) -> String {
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

/// What can go wrong rendering a page, and the status it answers with: a
/// clear message for a 4xx, an opaque one for a 5xx (the details go to the log).
#[derive(Debug, thiserror::Error)]
pub enum DashError {
    /// A bad filter or parameter: 400.
    #[error("{0}")]
    BadRequest(String),
    /// No warehouse snapshot yet: 503.
    #[error("{0}")]
    NoSnapshot(String),
    /// Nothing by that name (a report not kept): 404.
    #[error("{0}")]
    NotFound(String),
    /// Anything else: 500, details in the log.
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for DashError {
    /// The error page in Chinese (handlers that know the visitor's language call [`error_page`]).
    fn into_response(self) -> Response {
        error_page(self, Lang::Zh)
    }
}

impl From<ParamError> for DashError {
    fn from(error: ParamError) -> Self {
        Self::BadRequest(error.to_string())
    }
}

impl From<WarehouseError> for DashError {
    fn from(e: WarehouseError) -> Self {
        match e {
            WarehouseError::BadRequest(m) => Self::BadRequest(m),
            WarehouseError::NoSnapshot(m) => Self::NoSnapshot(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<store::StoreError> for DashError {
    fn from(e: store::StoreError) -> Self {
        Self::Internal(e.to_string())
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
            Err(e) => return Err(error_page(DashError::Internal(e.to_string()), lang)),
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
    async fn snapshot(&self) -> Result<std::sync::Arc<warehouse::cache::OpenSnapshot>, DashError> {
        Ok(self.kpis.snapshot().await?)
    }

    /// A session of its own (the analyst console: a runaway query must not
    /// hold the pages' memory pool), its memory from the pool every analyst
    /// query shares, nothing spilled.
    async fn session(&self) -> Result<datafusion_ctx::Ctx, DashError> {
        Ok(self.kpis.console_session().await?)
    }

    /// Renders `page` for the request: authorization, content, layout or CSV.
    async fn serve_page<F, Fut>(&self, headers: &HeaderMap, page: Page, filters: &Filters, build: F) -> Response
    where
        F: FnOnce(Role, Account) -> Fut,
        Fut: std::future::Future<Output = Result<Content, DashError>>,
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
                    Err(e) => error_page(DashError::Internal(e.to_string()), lang),
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
                None => error_page(DashError::BadRequest(format!("this page has no table {id:?}")), lang),
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

fn error_page(error: DashError, lang: Lang) -> Response {
    let (status, message) = match error {
        DashError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
        DashError::NoSnapshot(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
        DashError::NotFound(m) => (StatusCode::NOT_FOUND, m),
        DashError::Internal(m) => {
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
        Page::QcCases
        | Page::Connectors
        | Page::Sql
        | Page::Audit
        | Page::Sandbox
        | Page::MyCases
        | Page::Cases
        | Page::Reports => &[],
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
    fn get(&self, kpi: Kpi, by: &[Dim]) -> Result<&KpiResult, DashError> {
        self.results.iter().find(|((k, b), _)| *k == kpi && *b == by).map(|(_, r)| &**r).ok_or_else(|| {
            DashError::Internal(format!("{:?} shows {kpi} by {by:?} without declaring it in page_kpis", self.page))
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
    ) -> Result<Figures, DashError> {
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
    pub async fn warm(&self) -> Result<(String, usize), DashError> {
        let snap = self.kpis.snapshot().await?;
        let now = (self.clock)();
        let (from, to) = Filters::default().period(domain::time::local_date(now))?;
        for page in Page::ALL {
            self.figures(page, from, to, &[]).await?;
        }
        // The overview's gap analysis (a month without cases has none to warm).
        match self.kpis.online_rate_gap(overview::gap_month(to)).await {
            Ok(_) | Err(WarehouseError::BadRequest(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // The connectors page's monthly reconciliation: each month's online rate, cached.
        snap.reconcile_cases(&warehouse::reconcile::Delivered::default()).await?;
        Ok((snap.manifest.snapshot_id.clone(), snap.cached_results()))
    }
}

fn tile(title: &str, value: String, caption: &str) -> Markup {
    html! { div.tile { div.tile-title { (title) } div.tile-value { (value) } div.tile-caption { (caption) } } }
}

/// The firing alerts of `kinds` as a banner (nothing when none fires).
async fn alert_banner(d: &Dashboards, kinds: &[&str], lang: Lang) -> Result<Markup, DashError> {
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

/// The first and last day of a `YYYY-MM` month.
fn month_range(month: &str) -> Option<(String, String)> {
    let (first, last) = kpi::gap::month_days(warehouse::export::first_day_of_month(month)?);
    Some((first.to_string(), last.to_string()))
}
