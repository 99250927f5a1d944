//! The `types` page.

use super::*;

/// `GET /types`: every business type since its go-live.
pub async fn types(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Types, &filters, |role, _| async move {
        // Bars open the cases behind them for roles that may see case lists, else the overview for the type.
        let drill_to = if Page::Cases.allows(role) { "/cases" } else { "/" };
        let lang = f.lang();
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now))?;
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
            numbers: vec![3, 4, 5, 6, 7],
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
