//! The `qc` page.

use super::*;
use store::audit::Recorded;

/// `GET /qc`: QC errors by category, section, type and month.
pub async fn qc(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Qc, &filters, |role, _| async move {
        let lang = f.lang();
        let now = (dd.clock)();
        let (from, to) = f.period(domain::time::local_date(now))?;
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
        let (from, to) = f.period(domain::time::local_date(now))?;
        let filter = warehouse::case_lists::FindingFilter {
            from,
            to,
            category: f.category.clone(),
            section: f.section.clone(),
            month: f.month.clone(),
            district: f.district.clone(),
            business_type: f.business_type.clone(),
        };
        let snap = dd.snapshot().await?;
        let listed = warehouse::case_lists::qc_findings(&snap, &filter, 500).await?;
        let rows = &listed.rows;
        let entry = Recorded::CaseList { filters: &listed.conditions, rows: rows.len(), section: None };
        dd.store.record(now, &account.name, "/qc/cases", &entry).await?;
        let columns = [
            "case_no",
            "business_type",
            "district",
            "applicant_id_masked",
            "category",
            "severity",
            "section",
            "found_at",
            "corrected_at",
        ];
        let table = Table {
            id: "cases",
            numbers: Vec::new(),
            title: format!(
                "{} ({})",
                lang.pick("质检差错案件（最多 500 条，证件号已脱敏）", "QC findings (at most 500, identities masked)"),
                rows.len()
            ),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: rows
                .iter()
                .map(|r| {
                    vec![
                        r.case_no.clone(),
                        business_type_name(&r.business_type, lang),
                        crate::i18n::district_name(&r.district),
                        r.applicant_id_masked.clone(),
                        r.category.clone(),
                        r.severity.clone(),
                        r.section.clone(),
                        r.found_at.clone(),
                        r.corrected_at.clone(),
                    ]
                })
                .collect(),
        };
        Ok(Content {
            body: html! { p { a href=(f.link("/qc", &[])) { (lang.pick("返回质检", "Back to QC")) } } },
            tables: vec![table],
        })
    })
    .await
}
