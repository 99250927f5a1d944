//! The KPI API over the current warehouse snapshot, through the same
//! [`KpiService`] as the pages (one snapshot and period give one figure):
//!
//! - `GET /api/kpi`: the definitions (id, version, what is counted, dimensions);
//! - `GET /api/kpi/{name}?from=YYYY-MM-DD&to=YYYY-MM-DD&by=dim,dim[&as_of=RFC3339]`
//!   (optionally `&district=…&business_type=…&channel=…&phase=…&applicant_kind=…`):
//!   `{"definition":{…},"snapshot_id","as_of","target","excluded","rows":[{…dims,"numerator","denominator","rate"}]}`.
//!   `as_of` is the snapshot's time; an earlier one may be asked for, a later one is a 400.
//!
//! - `GET /api/kpi/online-rate/gap?month=YYYY-MM`: the month's gap analysis
//!   (shortfall per segment, closers, shift-share, projection; `docs/kpi.md`).
//!
//! Aggregates only: no case-level data leaves here. A bad name, dimension or
//! date is a 400 naming it (an unknown KPI a 404); no snapshot yet is a 503
//! saying how to make one.

use crate::params::{self, ParamError};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use warehouse::WarehouseError;
use warehouse::kpi::{self, Dim, Kpi, KpiRequest, KpiService};

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
    fn filters(&self) -> Vec<(Dim, String)> {
        [
            (Dim::BusinessType, &self.business_type),
            (Dim::Phase, &self.phase),
            (Dim::Channel, &self.channel),
            (Dim::District, &self.district),
            (Dim::ApplicantKind, &self.applicant_kind),
        ]
        .into_iter()
        .filter_map(|(dim, value)| value.as_ref().filter(|v| !v.is_empty()).map(|v| (dim, v.clone())))
        .collect()
    }

    /// The request these parameters make of `kpi`, or the message saying what is wrong.
    fn request(&self, kpi: Kpi) -> Result<KpiRequest, ParamError> {
        let from = params::required_date("from", self.from.as_deref())?;
        let to = params::required_date("to", self.to.as_deref())?;
        let as_of = self.as_of.as_deref().map(|text| params::time("as_of", text)).transpose()?;
        let by = kpi.dims(self.by.as_deref().unwrap_or_default().split(','))?;
        Ok(KpiRequest { from, to, by, filters: self.filters(), as_of })
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn list() -> Json<serde_json::Value> {
    let definitions: Vec<serde_json::Value> = kpi::DEFINITIONS.iter().map(kpi::Definition::to_json).collect();
    Json(json!({ "definitions": definitions }))
}

async fn one(State(kpis): State<KpiService>, Path(name): Path<String>, Query(params): Query<KpiParams>) -> Response {
    let kpi = match Kpi::from_name(&name) {
        Ok(kpi) => kpi,
        Err(e) => return error(StatusCode::NOT_FOUND, e.to_string()),
    };
    let request = match params.request(kpi) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match kpis.kpi(kpi, &request).await {
        Ok(answer) => Json(answer.to_json()).into_response(),
        Err(e) => warehouse_error(kpi.name(), e),
    }
}

/// Query string of the gap analysis.
#[derive(Debug, Deserialize)]
pub struct GapParams {
    month: Option<String>,
}

/// `GET /api/kpi/online-rate/gap?month=YYYY-MM`: where the month's gap to 90%
/// lies (`warehouse::kpi::gap`, `docs/kpi.md`).
async fn gap(State(kpis): State<KpiService>, Query(params): Query<GapParams>) -> Response {
    let month = match params::month(params.month.as_deref()) {
        Ok(month) => month,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match kpis.online_rate_gap(month).await {
        Ok(answer) => Json(answer.to_json()).into_response(),
        Err(e) => warehouse_error("gap analysis", e),
    }
}

/// The answer to a failed warehouse call: 400 for a bad request, 503 with no
/// snapshot or at a limit, an opaque 500 otherwise (logged).
fn warehouse_error(what: &str, e: WarehouseError) -> Response {
    match e {
        WarehouseError::BadRequest(m) => error(StatusCode::BAD_REQUEST, m),
        WarehouseError::NoSnapshot(m) => error(StatusCode::SERVICE_UNAVAILABLE, m),
        e if e.is_limit() => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        e => {
            tracing::error!(message = "KPI query failed", what, error = %e);
            error(StatusCode::INTERNAL_SERVER_ERROR, "the KPI query failed; see the service log")
        }
    }
}

/// The routes.
pub fn router(kpis: KpiService) -> axum::Router {
    axum::Router::new()
        .route("/api/kpi", get(list))
        .route("/api/kpi/online-rate/gap", get(gap))
        .route("/api/kpi/{name}", get(one))
        .with_state(kpis)
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
