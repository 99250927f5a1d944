//! The `reports` pages: the kept monthly reports to download (audited) and
//! each one's print page (`/reports/YYYY-MM`: the workbook's content as HTML,
//! made again from the report's own snapshot, with print CSS for A4).

use super::*;
use crate::report::{HEADLINE_KPIS, Kept, MonthlyReport, ReportError};
use axum::extract::Path;
use store::audit::Recorded;

impl From<ReportError> for DashError {
    fn from(e: ReportError) -> DashError {
        match e {
            ReportError::Warehouse(e) => e.into(),
            other => DashError::Internal(other.to_string()),
        }
    }
}

/// `GET /reports`: every kept report, newest first.
pub async fn reports(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Reports, &filters, |_, _| async move {
        let lang = f.lang();
        let kept = dd.reports.list()?;
        let body = html! {
            p { (lang.pick(
                "每月 1 日自动生成上月月报（jobs.monthly_report）；也可运行 wangban report monthly --month YYYY-MM。每份月报保留其数据快照，可随时按原数据重新生成。",
                "Last month's report is made on the 1st (jobs.monthly_report), or by `wangban report monthly --month YYYY-MM`. Each keeps its snapshot, so it can be made again from the same data."
            )) }
            table.reports {
                thead { tr {
                    th { (lang.pick("月份", "Month")) } th { (lang.pick("网办率", "Online rate")) }
                    th { (lang.pick("网办件数", "Online")) } th { (lang.pick("总件数", "Cases")) }
                    th { (lang.pick("达 90% 还需", "Needed for 90%")) } th { (lang.pick("数据快照", "Snapshot")) }
                    th { (lang.pick("生成时间", "Made")) } th { (lang.pick("下载与打印", "Download and print")) }
                } }
                tbody {
                    @for k in &kept { tr {
                        td { (k.month) } td { (rate_text(k.online_rate)) }
                        td { (k.numerator.map_or_else(String::new, |n| n.to_string())) }
                        td { (k.denominator.map_or_else(String::new, |n| n.to_string())) }
                        td { (k.needed_for_target) } td { code { (k.snapshot_id) } } td { (crate::report::minute_of(&k.made_at)) }
                        td {
                            a.download href=(format!("/reports/{}/xlsx", k.month)) { (lang.pick("Excel", "Excel")) } " "
                            a href=(f.link(&format!("/reports/{}", k.month), &[])) { (lang.pick("打印版", "Print view")) }
                        }
                    } }
                    @if kept.is_empty() { tr { td colspan="8" { (lang.pick("尚无月报", "No reports yet")) } } }
                }
            }
        };
        Ok(Content { body, tables: Vec::new() })
    })
    .await
}

/// The kept report of `month`, or a 404 saying which months are kept.
fn kept_report(d: &Dashboards, month: &str) -> Result<Kept, DashError> {
    d.reports.get(month)?.ok_or_else(|| {
        let months: Vec<String> = d.reports.list().unwrap_or_default().into_iter().map(|k| k.month).collect();
        DashError::NotFound(format!(
            "no report of {month:?} is kept; kept: {}",
            if months.is_empty() { "none".to_owned() } else { months.join(", ") }
        ))
    })
}

/// `GET /reports/{month}/xlsx`: the kept workbook, audited with who took it.
pub async fn report_file(State(d): State<Dashboards>, headers: HeaderMap, Path(month): Path<String>) -> Response {
    let lang = Lang::Zh;
    let (account, _) = match d.authorize(&headers, Page::Reports, lang).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let answer = async {
        let kept = kept_report(&d, &month)?;
        let bytes = d.reports.read(&kept)?;
        let entry =
            Recorded::ReportDownload { month: &kept.month, sha256: &kept.sha256, snapshot_id: &kept.snapshot_id };
        d.store.record((d.clock)(), &account.name, &kept.file, &entry).await?;
        Ok::<_, DashError>((kept, bytes))
    }
    .await;
    match answer {
        Ok((kept, bytes)) => (
            [
                (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"wangban-monthly-{}.xlsx\"; filename*=UTF-8''{}",
                        kept.month,
                        url_encode(&kept.file)
                    ),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => error_page(e, lang),
    }
}

/// `GET /reports/{month}`: the report as a print-ready page, made again from
/// the report's snapshot (the same figures as its workbook).
pub async fn report_print(
    State(d): State<Dashboards>,
    headers: HeaderMap,
    Path(month): Path<String>,
    Query(filters): Query<Filters>,
) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Reports, &filters, |_, _| async move {
        let lang = f.lang();
        let kept = kept_report(&dd, &month)?;
        let report = dd.reports.remake(&dd.kpis, &kept).await?;
        Ok(Content { body: print_body(&report, lang), tables: Vec::new() })
    })
    .await
}

fn print_body(r: &MonthlyReport, lang: Lang) -> Markup {
    let month = warehouse::kpi::gap::month_key(r.month);
    let value = |kpi: Kpi, v: Option<f64>| match (kpi, v) {
        (Kpi::QcErrors, Some(v)) => format!("{v:.2}"),
        (_, v) => rate_text(v),
    };
    let change = |kpi: Kpi, a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if kpi == Kpi::QcErrors => format!("{:+.2}", a - b),
        (Some(a), Some(b)) => format!("{:+.2} pp", (a - b) * 100.0),
        _ => "—".to_owned(),
    };
    let points: Vec<Point> = r
        .monthly
        .rates()
        .iter()
        .map(|m| Point {
            label: m.dim(Dim::Month).unwrap_or_default().to_owned(),
            value: m.rate,
            href: None,
            shown: None,
        })
        .collect();
    let markers: Vec<Marker> = domain::business::Phase::ALL
        .iter()
        .map(|p| Marker { at: p.go_live().format("%Y-%m").to_string(), caption: format!("第{}期", p.number()) })
        .collect();
    let definitions: Vec<String> =
        HEADLINE_KPIS.iter().map(|k| format!("{} v{}", k.definition().id, k.definition().version)).collect();
    html! {
        article.report {
            h2 { (lang.pick("不动产登记网办月报", "Online registration monthly report")) " " (month) }
            p.meta {
                (lang.pick("数据快照 ", "Snapshot ")) code { (r.snapshot_id) }
                (lang.pick("，数据截至 ", ", data as of ")) (crate::report::minute(r.as_of))
                (lang.pick("；生成于 ", "; made ")) (crate::report::minute(r.made_at))
                br; (lang.pick("指标口径：", "Definitions: ")) (definitions.join("、"))
            }
            h3 { (lang.pick("总览", "Headline")) }
            table {
                thead { tr {
                    th { (lang.pick("指标", "KPI")) } th { (lang.pick("分子", "Numerator")) } th { (lang.pick("分母", "Denominator")) }
                    th { (lang.pick("本月", "This month")) } th { (lang.pick("环比", "On last month")) }
                    th { (lang.pick("同比", "On a year ago")) } th { (lang.pick("目标", "Target")) }
                } }
                tbody {
                    @for h in &r.headlines {
                        @let current = h.current.as_ref().and_then(|c| c.rate);
                        tr {
                            td { (h.kpi.definition().title_zh) }
                            td { (h.current.as_ref().map_or_else(String::new, |c| c.numerator.to_string())) }
                            td { (h.current.as_ref().map_or_else(String::new, |c| c.denominator.to_string())) }
                            td { (value(h.kpi, current)) }
                            td { (change(h.kpi, current, h.previous.as_ref().and_then(|c| c.rate))) }
                            td { (change(h.kpi, current, h.year_ago.as_ref().and_then(|c| c.rate))) }
                            td { (h.kpi.target().map_or_else(String::new, |t| rate_text(Some(t)))) }
                        }
                    }
                }
            }
            h3 { (lang.pick("网办率月度趋势", "Online rate by month")) }
            (svg::line_chart(lang.pick("网办率月度趋势（虚线为 90% 目标，竖线为各期上线）", "Online rate by month (dashed: 90% target; verticals: phase go-live)"), &points, Some(kpi::TARGET_ONLINE_RATE), &markers))
            @for (dim, result) in &r.distribution {
                @let bars: Vec<Point> = result.rates().iter().map(|x| Point { label: dim_value(*dim, x.dim(*dim), lang), value: x.rate, href: None, shown: None }).collect();
                h3 { (lang.pick("网办率：按", "Online rate by ")) (dim_title(*dim, lang)) }
                (svg::bar_chart(dim_title(*dim, lang), &bars, Some(kpi::TARGET_ONLINE_RATE)))
            }
            (super::overview::gap_section(&r.gap, lang))
            h3 { (lang.pick("质检差错", "QC errors")) }
            @for (dim, result) in &r.qc {
                table {
                    thead { tr { th { (dim_title(*dim, lang)) } th { (lang.pick("差错数", "Errors")) } th { (lang.pick("件数", "Cases")) } th { (lang.pick("每千件", "Per 1,000")) } } }
                    tbody { @for x in result.rates() { tr {
                        td { (dim_value(*dim, x.dim(*dim), lang)) } td { (x.numerator) } td { (x.denominator) }
                        td { (x.rate.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"))) }
                    } } }
                }
            }
        }
    }
}
