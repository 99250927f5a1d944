//! The KPI API over the current warehouse snapshot:
//!
//! - `GET /api/kpi`: the definitions (id, version, what is counted, dimensions);
//! - `GET /api/kpi/{name}?from=YYYY-MM-DD&to=YYYY-MM-DD&by=dim,dim&as_of=RFC3339`
//!   (optionally `&district=…&business_type=…&channel=…&phase=…&applicant_kind=…`):
//!   `{"definition":{…},"as_of","target","excluded","rows":[{…dims,"numerator","denominator","rate"}]}`.
//!
//! Aggregates only: no case-level data leaves here. A bad name, dimension or
//! date is a 400 naming it; no snapshot yet is a 503 saying how to make one.

use std::path::PathBuf;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;
use warehouse::WarehouseError;
use warehouse::kpi::{self, KpiQuery};
use warehouse::session::{register_snapshot, session_with_limit};

/// Where the warehouse is and how much memory a query may use.
#[derive(Debug, Clone)]
pub struct KpiApi {
    /// The warehouse directory.
    pub dir: PathBuf,
    /// Memory pool per request, bytes.
    pub memory_bytes: usize,
}

/// Query string of a KPI request.
#[derive(Debug, Deserialize)]
pub struct KpiParams {
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
    as_of: Option<String>,
    business_type: Option<String>,
    phase: Option<String>,
    channel: Option<String>,
    district: Option<String>,
    applicant_kind: Option<String>,
}

impl KpiParams {
    /// The dimension filters given.
    fn filters(&self) -> Vec<(String, String)> {
        [
            ("business_type", &self.business_type),
            ("phase", &self.phase),
            ("channel", &self.channel),
            ("district", &self.district),
            ("applicant_kind", &self.applicant_kind),
        ]
        .into_iter()
        .filter_map(|(dim, value)| value.as_ref().filter(|v| !v.is_empty()).map(|v| (dim.to_owned(), v.clone())))
        .collect()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// A date parameter, or the message saying what is wrong with it.
fn date(name: &str, value: Option<&str>) -> Result<NaiveDate, String> {
    let text = value.ok_or_else(|| format!("{name} is required (YYYY-MM-DD)"))?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("{name} {text:?} is not a date like 2025-01-31"))
}

async fn list() -> Json<serde_json::Value> {
    let definitions: Vec<serde_json::Value> = kpi::DEFINITIONS
        .iter()
        .map(|d| {
            json!({
                "name": d.name, "id": d.id, "version": d.version, "title_zh": d.title_zh,
                "numerator": d.numerator, "denominator": d.denominator, "excludes": d.excludes,
                "dimensions": d.dimensions,
            })
        })
        .collect();
    Json(json!({ "definitions": definitions }))
}

async fn one(State(api): State<KpiApi>, Path(name): Path<String>, Query(params): Query<KpiParams>) -> Response {
    let (from, to) = match (date("from", params.from.as_deref()), date("to", params.to.as_deref())) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let as_of = match params.as_of.as_deref() {
        None => Utc::now(),
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => return error(StatusCode::BAD_REQUEST, format!("as_of {text:?} is not an RFC 3339 time")),
        },
    };
    let filters = params.filters();
    let by: Vec<String> =
        params.by.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let query = KpiQuery { from, to, by, as_of, filters };
    let ctx = match session_with_limit(None, Some(api.memory_bytes)) {
        Ok(ctx) => ctx,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Err(e) = register_snapshot(&ctx, &api.dir).await {
        return match e {
            WarehouseError::NoSnapshot(m) => error(StatusCode::SERVICE_UNAVAILABLE, m),
            other => error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        };
    }
    match kpi::run(&ctx, &name, &query).await {
        Ok(result) => Json(result.to_json()).into_response(),
        Err(WarehouseError::BadRequest(m)) => {
            let status = if kpi::definition(&name).is_err() { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
            error(status, m)
        }
        Err(e) if e.is_limit() => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => {
            tracing::error!(message = "KPI query failed", kpi = %name, error = %e);
            error(StatusCode::INTERNAL_SERVER_ERROR, "the KPI query failed; see the service log")
        }
    }
}

/// The routes.
pub fn router(api: KpiApi) -> axum::Router {
    axum::Router::new().route("/api/kpi", get(list)).route("/api/kpi/{name}", get(one)).with_state(api)
}

/// The body of `POST /api/sql`.
#[derive(Debug, Deserialize)]
pub struct SqlRequest {
    sql: String,
}

/// `POST /api/sql` with `{"sql": "…"}` and a session cookie of a role allowed
/// the SQL console: the rows as JSON (default), CSV (`Accept: text/csv`) or
/// Arrow IPC (`Accept: application/vnd.apache.arrow.stream`). Read-only, under
/// the console's limits, and audited. 401 without a session, 403 for other
/// roles, 400 for a refused statement, 422 at a limit, 503 without a snapshot.
pub async fn sql(
    State(d): State<crate::Dashboards>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let now = (d.clock)();
    let account = match crate::auth::session_token(&headers) {
        Some(token) => d.store.touch_session(&crate::auth::token_hash(&token), crate::auth::IDLE_TIMEOUT, now).await,
        None => Ok(None),
    };
    let account = match account {
        Ok(Some(a)) => a,
        Ok(None) => return error(StatusCode::UNAUTHORIZED, "log in first: POST /login, then send the session cookie"),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let allowed = crate::auth::Role::from_code(&account.role).is_some_and(|r| crate::auth::Page::Sql.allows(r));
    if !allowed {
        return error(StatusCode::FORBIDDEN, format!("role {:?} may not run SQL", account.role));
    }
    let request: SqlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("expected {{\"sql\": \"…\"}}: {e}")),
    };
    let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let (format, content_type) = if accept.contains("text/csv") {
        (warehouse::console::Format::Csv, "text/csv; charset=utf-8")
    } else if accept.contains("application/vnd.apache.arrow") {
        (warehouse::console::Format::Arrow, "application/vnd.apache.arrow.stream")
    } else {
        (warehouse::console::Format::Json, "application/json")
    };
    match crate::pages::run_console(&d, &account, &request.sql).await {
        Ok((batches, rows, truncated)) => match warehouse::console::render(&batches, format) {
            Ok(bytes) => (
                [
                    (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
                    (axum::http::HeaderName::from_static("x-rows"), rows.to_string()),
                    (axum::http::HeaderName::from_static("x-truncated"), truncated.to_string()),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        Err((status, message)) => error(status, message),
    }
}
