//! The `sandbox` page.

use super::*;

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
            numbers: Vec::new(),
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
            numbers: Vec::new(),
            title: lang.pick("最近 200 个请求（新的在前）", "Latest 200 requests (newest first)").into(),
            columns: column_titles(lang, &[("时间", "When"), ("合作方", "Partner"), ("请求", "Request"), ("状态码", "Status"), ("指令数", "Orders"), ("问题", "Problem"), ("位置/字段", "Where"), ("规则/应签名的字符串", "Rule or string to sign")]),
            rows,
        };
        Ok(Content { body, tables: vec![partner_table, request_table] })
    })
    .await
}
