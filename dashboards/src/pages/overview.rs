//! The `overview` page.

use super::*;

/// `GET /`: progress toward 90%.
pub async fn overview(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Overview, &filters, |role, _| async move {
        // Points and bars open the cases behind them for roles that may see case lists.
        let drill_to = if Page::Cases.allows(role) { "/cases" } else { "" };
        let lang = f.lang();
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now)).map_err(DashError::BadRequest)?;
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
