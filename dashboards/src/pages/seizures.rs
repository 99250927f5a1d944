//! The `seizures` page.

use super::*;

/// `GET /seizures`: the seizure register and conflicts.
pub async fn seizures(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Seizures, &filters, |_, _| async move {
        let lang = f.lang();
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now))?;
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
            numbers: Vec::new(),
            title: lang.pick("对账异常（含查封期间办理转移、抵押）", "Reconciliation anomalies (incl. transfers and mortgages on seized units)").into(),
            columns: column_titles(lang, &[("类型", "Kind"), ("合作方", "Partner"), ("件数", "Count")]),
            rows: anomalies.iter().map(|r| vec![r.kind.clone(), r.partner.clone().unwrap_or_default(), r.count.to_string()]).collect(),
        };
        Ok(Content { body, tables: vec![table] })
    })
    .await
}
