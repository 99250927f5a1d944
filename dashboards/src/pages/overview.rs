//! The `overview` page.

use super::*;
use warehouse::kpi::gap::{self, Counts, GapAnalysis};

/// `GET /`: progress toward 90%.
pub async fn overview(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Overview, &filters, |role, _| async move {
        // Points and bars open the cases behind them for roles that may see case lists.
        let drill_to = if Page::Cases.allows(role) { "/cases" } else { "" };
        let lang = f.lang();
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now))?;
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
        let series: BTreeMap<String, Counts> = monthly
            .rates()
            .iter()
            .filter_map(|r| Some((r.dim(Dim::Month)?.to_owned(), Counts::from(r))))
            .collect();
        let projection = series
            .keys()
            .next_back()
            .and_then(|m| warehouse::export::first_day_of_month(m))
            .map(|last| gap::projection(&series, last, target));
        let gap_month = gap_month(to);
        let gap = match dd.kpis.online_rate_gap(gap_month).await {
            Ok(answer) => Some(answer),
            Err(WarehouseError::BadRequest(_)) => None,
            Err(e) => return Err(e.into()),
        };
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
        let shortfall = rate.map(|r| target - r);
        // What leadership acts on; operational alerts (connector lag) are on the connectors page and the webhook.
        let banner = alert_banner(&dd, &warehouse::alerts::LEADERSHIP_KINDS, lang).await?;
        let body = html! {
            (banner)
            (filter_form(&f, from, to, lang))
            div.tiles {
                (tile(lang.pick("网办率", "Online rate"), rate_text(rate), &format!("{} {} · {} {}",
                    lang.pick("目标", "target"), rate_text(Some(target)),
                    lang.pick("差距", "gap"), shortfall.map_or_else(|| "—".into(), |g| format!("{:+.1} pp", -g * 100.0)))))
                (tile(lang.pick("全程网办率", "End-to-end online"), rate_text(e2e.overall_rate()), lang.pick("零等待：无需到窗口", "Zero waiting: no counter visit")))
                (tile(lang.pick("按时办结率", "On time"), rate_text(on_time.overall_rate()), lang.pick("零延迟：承诺时限内登簿", "Zero delay: recorded within the committed limit")))
                (tile(lang.pick("质检差错（每千件）", "QC errors per 1,000"), qc.overall_rate().map_or_else(|| "—".into(), |v| format!("{v:.2}")), lang.pick("零差错：越低越好", "Zero errors: lower is better")))
                (tile(lang.pick("满意率", "Satisfaction"), rate_text(satisfaction.overall_rate()), lang.pick("好评占评价", "good reviews among all")))
            }
            p.projection {
                (lang.pick("按近 12 个月趋势，达到 90% 的月份：", "At the last 12 months' trend, 90% is reached in: "))
                strong { (crate::report::projection_text(projection.as_ref(), lang)) }
            }
            @if let Some(gap) = &gap { (gap_section(&gap.analysis, lang)) }
            h2 { (lang.pick("网办率月度趋势", "Online rate by month")) }
            (svg::line_chart(lang.pick("网办率月度趋势（虚线为 90% 目标，竖线为各期上线）", "Online rate by month (dashed: 90% target; verticals: phase go-live)"), &points, Some(target), &markers))
            h2 { (lang.pick("各业务类型网办率", "Online rate by business type")) }
            (svg::bar_chart(lang.pick("各业务类型网办率", "Online rate by business type"), &type_points, Some(target)))
        };
        let mut tables = vec![
            kpi_table("monthly", lang.pick("网办率月度数据", "Online rate by month").into(), monthly, &[Dim::Month], lang),
            kpi_table("by_type", lang.pick("各业务类型网办率数据", "Online rate by type").into(), by_type, &[Dim::BusinessType], lang),
        ];
        if let Some(gap) = &gap {
            tables.push(gap_table(&gap.analysis, lang));
        }
        Ok(Content { body, tables })
    })
    .await
}

/// The month whose gap the overview analyses: the period's last month when
/// the period runs to its end, else the month before (a month just begun
/// says little).
pub(crate) fn gap_month(to: NaiveDate) -> NaiveDate {
    let first = gap::first_of(to);
    let month_ends = to.succ_opt().is_none_or(|next| next.day() == 1);
    if month_ends { first } else { first.checked_sub_months(chrono::Months::new(1)).unwrap_or(first) }
}

/// Millionths of a rate as signed percentage points.
pub(crate) fn pp_text(micro: i64) -> String {
    format!("{:+.2} pp", gap::micro_to_pp(micro))
}

/// The overview's 差距分析: what the month needed, why the rate moved, and
/// the segments furthest from 90% by type and by district.
pub(super) fn gap_section(gap: &GapAnalysis, lang: Lang) -> Markup {
    let month = gap::month_key(gap.month);
    html! {
        section.gap {
            h2 { (lang.pick("差距分析", "Gap analysis")) " " (month) (lang.pick("（全市，不受筛选影响）", " (whole city, filters do not apply)")) }
            p {
                (lang.pick("网办率", "Online rate")) " " strong { (rate_text(gap.total.rate())) } "；"
                @if gap.needed > 0 {
                    (lang.pick("还需增加网办件数：", "more online cases needed: ")) strong { (gap.needed) }
                } @else {
                    (lang.pick("已达到 90% 目标", "at or above the 90% target"))
                }
            }
            @for d in gap.by.iter().filter(|d| matches!(d.dim, Dim::BusinessType | Dim::District | Dim::Channel)) {
                h3 { (dim_title(d.dim, lang)) }
                p.shift-share {
                    (lang.pick("环比变化 ", "Change on last month ")) strong { (pp_text(d.shift_share.change)) }
                    " = " (lang.pick("效率效应 ", "rate effect ")) (pp_text(d.shift_share.rate_effect))
                    " + " (lang.pick("结构效应 ", "mix effect ")) (pp_text(d.shift_share.mix_effect))
                    @if gap.needed > 0 {
                        br;
                        (lang.pick("提升到各自最佳月份水平即可补足缺口：", "Raised to their best month, these close the gap: "))
                        @match &d.closers {
                            Some(closers) => { strong { (closers.iter().map(|v| dim_value(d.dim, v.as_deref(), lang)).collect::<Vec<_>>().join("、")) } }
                            None => { (lang.pick("全部提升到最佳月份也不够", "not even all of them at their best")) }
                        }
                    }
                }
                table {
                    thead { tr {
                        th { (dim_title(d.dim, lang)) } th { (lang.pick("网办率", "Online rate")) }
                        th { (lang.pick("距 90% 缺件", "Short of 90%")) } th { (lang.pick("最佳月份", "Best month")) }
                        th { (lang.pick("按最佳可增", "Gain at best")) } th { (lang.pick("效率效应", "Rate effect")) } th { (lang.pick("结构效应", "Mix effect")) }
                    } }
                    tbody {
                        @for s in d.segments.iter().take(5) { tr {
                            td { (dim_value(d.dim, s.value.as_deref(), lang)) }
                            td { (rate_text(s.counts.rate())) }
                            td { (s.shortfall) }
                            td { (s.best.as_ref().map_or_else(|| "—".to_owned(), |(m, r)| format!("{m} {}", rate_text(Some(*r))))) }
                            td { (s.gain_at_best) }
                            td { (pp_text(s.rate_effect)) }
                            td { (pp_text(s.mix_effect)) }
                        } }
                    }
                }
            }
        }
    }
}

/// Every segment of the gap analysis as a downloadable table.
fn gap_table(gap: &GapAnalysis, lang: Lang) -> Table {
    let columns = column_titles(
        lang,
        &[
            ("维度", "Dimension"),
            ("分段", "Segment"),
            ("网办件数", "Online"),
            ("总件数", "Cases"),
            ("网办率", "Online rate"),
            ("距 90% 缺件", "Short of 90%"),
            ("最佳月份", "Best month"),
            ("最佳月份网办率", "Best month rate"),
            ("按最佳可增", "Gain at best"),
            ("效率效应（百万分之一）", "Rate effect (millionths)"),
            ("结构效应（百万分之一）", "Mix effect (millionths)"),
        ],
    );
    let rows = gap
        .by
        .iter()
        .flat_map(|d| {
            d.segments.iter().map(move |s| {
                vec![
                    dim_title(d.dim, lang).to_owned(),
                    dim_value(d.dim, s.value.as_deref(), lang),
                    s.counts.online.to_string(),
                    s.counts.cases.to_string(),
                    rate_text(s.counts.rate()),
                    s.shortfall.to_string(),
                    s.best.as_ref().map_or_else(String::new, |b| b.0.clone()),
                    rate_text(s.best.as_ref().map(|b| b.1)),
                    s.gain_at_best.to_string(),
                    s.rate_effect.to_string(),
                    s.mix_effect.to_string(),
                ]
            })
        })
        .collect();
    Table {
        id: "gap",
        numbers: vec![2, 3, 4, 5, 7, 8, 9, 10],
        title: format!("{} {}", lang.pick("差距分析数据", "Gap analysis data"), gap::month_key(gap.month)),
        columns,
        rows,
    }
}
