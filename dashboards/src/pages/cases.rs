//! The `cases` page.

use super::*;
use store::audit::Recorded;

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
        let (from, to) = f.period(domain::time::local_date(now))?;
        let start = domain::time::local_day_end(from.pred_opt().unwrap_or(from));
        let end = domain::time::local_day_end(to);
        let cases = dd.store.cases_handled_by(&handler, start, end, MY_CASES_LIMIT).await?;
        let entry =
            Recorded::OwnCaseList { from: from.to_string(), handler: &handler, rows: cases.len(), to: to.to_string() };
        dd.store.record(now, &account.name, "/my/cases", &entry).await?;
        let local = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| domain::time::china_time(t).format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
        };
        let table = Table {
            id: "my_cases",
            numbers: Vec::new(),
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
                        crate::i18n::district_name(&r.district),
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
        let (from, to) = f.period(domain::time::local_date(now))?;
        let filter = warehouse::case_lists::CaseFilter {
            from,
            to,
            month: f.month.clone(),
            district: f.district.clone(),
            business_type: f.business_type.clone(),
            channel: f.channel.clone(),
            statuses: statuses.map(<[&str]>::to_vec),
        };
        let snap = dd.snapshot().await?;
        let listed = warehouse::case_lists::cases(&snap, &filter, CASES_LIMIT).await?;
        let rows = &listed.rows;
        let entry = Recorded::CaseList {
            filters: &listed.conditions,
            rows: rows.len(),
            section: Some(account.section.as_deref()),
        };
        dd.store.record(now, &account.name, "/cases", &entry).await?;
        let status_label = |code: &str| {
            domain::CaseStatus::from_code(code).map_or_else(|| code.to_owned(), |s| status_name(s, lang).to_owned())
        };
        let table = Table {
            id: "cases",
            numbers: Vec::new(),
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
                        r.case_no.clone(),
                        business_type_name(&r.business_type, lang),
                        channel_name(&r.channel, lang),
                        crate::i18n::district_name(&r.district),
                        status_label(&r.status),
                        r.submitted_at.clone(),
                        r.applicant_id_masked.clone(),
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

/// Rows `/cases` shows at most.
const CASES_LIMIT: usize = 500;

/// Rows `/my/cases` shows at most.
const MY_CASES_LIMIT: i64 = 500;
