//! The `sql` page.

use super::*;
use store::audit::Recorded;

/// `GET /sql`: the console's empty form.
pub async fn sql_form(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    d.serve_page(&headers, Page::Sql, &filters, |_, _| async {
        Ok(Content { body: sql_box("", filters.lang()), tables: Vec::new() })
    })
    .await
}

fn sql_box(sql: &str, lang: Lang) -> Markup {
    html! {
        p { (lang.pick("只读查询：表 cases、qc_findings、evaluations（每行带所属案件的维度）、seizures、anomalies，汇总表 case_counts、open_due、duration_counts、evaluation_counts、qc_counts（按行计数列求和，不用 COUNT(*)）；可用 EXPLAIN 与 EXPLAIN ANALYZE。每条查询记入审计日志。",
                        "Read-only: tables cases, qc_findings, evaluations (each row with its case's dimensions), seizures, anomalies, and the rollups case_counts, open_due, duration_counts, evaluation_counts, qc_counts (sum their count column, never COUNT(*)); EXPLAIN and EXPLAIN ANALYZE allowed. Every query is audited.")) }
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
                Err(e) => error_page(DashError::Internal(e.to_string()), lang),
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
        Err(DashError::NoSnapshot(m)) => return Err((StatusCode::SERVICE_UNAVAILABLE, m)),
        Err(DashError::BadRequest(m) | DashError::NotFound(m) | DashError::Internal(m)) => {
            return Err((StatusCode::INTERNAL_SERVER_ERROR, m));
        }
    };
    let answer = console::query(&ctx, sql, d.sql_limits).await;
    let entry = Recorded::WarehouseSql {
        millis: answer.as_ref().ok().map(|a| u64::try_from(a.elapsed.as_millis()).unwrap_or(u64::MAX)),
        error: answer.as_ref().err().map(ToString::to_string),
        rows: answer.as_ref().map(|a| a.rows).ok(),
        sql,
    };
    if let Err(e) = d.store.record(now, &account.name, "console", &entry).await {
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
