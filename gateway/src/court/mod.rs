//! The court push API (`/api/court/v1`): signed XML seizure, renewal and
//! release orders in, receipts out. See `docs/court-api.md` for the contract.
//!
//! A receipt is sent only after `store::Store::apply_court_order` has
//! committed the raw payload, the register change and the audit entry
//! together. Anything that is not applied is kept too: malformed payloads go
//! to the inbox and quarantine before the 400 is sent.

pub mod rate;
pub mod signature;
mod wire;
pub mod writer;
mod xml;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use domain::court_order::{CHINA_OFFSET_SECONDS, CourtOrder, local_date};
use store::court::{ApplyOutcome, Receipt, ReceiptStatus};
use store::partners::PartnerStatus;

use crate::AppState;
use signature::{SignatureError, SignatureHeader};

/// Largest request body accepted (2 MiB).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Most orders in one `<CourtOrders>` batch.
pub const MAX_BATCH: usize = 500;
/// The inbox channel of pushed orders.
pub const CHANNEL: &str = "court_push";

/// The XSD of the request and receipt documents.
pub const XSD: &str = include_str!("../../../contracts/court-push/court-api.xsd");
/// The OpenAPI description of the endpoints.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Formats an instant in China Standard Time, e.g. `2024-10-08T09:30:00+08:00`.
pub fn china_time(t: DateTime<Utc>) -> String {
    match FixedOffset::east_opt(CHINA_OFFSET_SECONDS) {
        Some(tz) => t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, false),
        None => t.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"))], body).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    xml_response(status, xml::error_document(code, message))
}

fn rejected(order_no: String, code: &str, reason: String, now: DateTime<Utc>) -> Receipt {
    Receipt {
        order_no,
        status: ReceiptStatus::Rejected,
        queue_position: None,
        reason_code: Some(code.to_owned()),
        reason: Some(reason),
        recorded_at: now,
    }
}

/// Who is calling, once the signature has been checked.
struct Caller {
    partner_id: String,
}

/// Decodes a pushed body as `POST /orders` does before any store work: the XML
/// document (no DOCTYPE, no entities), then each order's fields. The entry point
/// for fuzzing and property tests: whatever the bytes, the answer is orders and
/// per-order errors, or one error for the document, never a panic.
pub fn decode_orders(body: &[u8]) -> Result<Vec<Result<CourtOrder, String>>, String> {
    let root = xml::parse_document(body).map_err(|e| e.to_string())?;
    match root.name.as_str() {
        "CourtOrder" => Ok(vec![wire::to_order(&root).map_err(|e| format!("{}: {e}", e.code()))]),
        "CourtOrders" => Ok(root
            .children
            .iter()
            .map(|order| {
                if order.name == "CourtOrder" {
                    wire::to_order(order).map_err(|e| format!("{}: {e}", e.code()))
                } else {
                    Err(format!("malformed_batch: {} in CourtOrders", order.name))
                }
            })
            .collect()),
        other => Err(format!("the root element is {other}, not CourtOrder or CourtOrders")),
    }
}

/// Checks the partner header, the partner, the signature over `signed`, and the rate.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    signed: &[u8],
    now: DateTime<Utc>,
) -> Result<Caller, Response> {
    let unauthorized = |message: &str| error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let partner_id = headers
        .get("x-partner-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| unauthorized("missing X-Partner-Id header"))?;
    let partner = state.store.get_partner(partner_id).await.map_err(|e| {
        tracing::error!(message = "partner lookup failed", error = %e);
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the registry cannot check partners right now; retry later",
        )
    })?;
    let partner = match partner {
        Some(p) if p.status == PartnerStatus::Active && p.kind == domain::PartnerKind::Court => p,
        _ => return Err(unauthorized("unknown or disabled partner")),
    };
    let header = headers
        .get("x-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(SignatureError::Missing)
        .and_then(SignatureHeader::parse)
        .map_err(|e| unauthorized(&e.to_string()))?;
    let credentials = state.store.valid_credentials(&partner.id, now).await.map_err(|e| {
        tracing::error!(message = "credential lookup failed", error = %e);
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the registry cannot check signatures right now; retry later",
        )
    })?;
    if let Err(e) = header.verify(signed, credentials.iter().map(|c| c.secret.as_str()), now) {
        tracing::warn!(message = "signature refused", partner = %partner.id, reason = %e);
        return Err(unauthorized(&e.to_string()));
    }
    if let Some(per_minute) = partner.rate_limit_per_minute
        && let Err(wait) = state.rate_limiter.check(&partner.id, per_minute, now)
    {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            &format!("more than {per_minute} requests per minute; retry after {wait} s"),
        );
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Err(response);
    }
    Ok(Caller { partner_id: partner.id })
}

fn is_xml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/xml" || v == "text/xml")
}

/// `POST /api/court/v1/orders`
pub async fn post_orders(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let now = (state.clock)();
    if !is_xml(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/xml",
        );
    }
    let caller = match authenticate(&state, &headers, &body, now).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/xml").to_owned();
    let keep_rejected = |position: String, code: &'static str, reason: String| {
        let state = state.clone();
        let partner = caller.partner_id.clone();
        let content_type = content_type.clone();
        let body = body.clone();
        async move {
            if let Err(e) = state
                .store
                .record_rejected_payload(&partner, CHANNEL, &content_type, &body, &position, code, &reason, now)
                .await
            {
                tracing::error!(message = "could not keep a rejected payload", error = %e);
                return Err(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the registry cannot record the order; retry later",
                ));
            }
            Ok(())
        }
    };

    let root = match xml::parse_document(&body) {
        Ok(root) => root,
        Err(e) => {
            let message = e.to_string();
            if let Err(response) = keep_rejected("body".into(), "malformed_xml", message.clone()).await {
                return response;
            }
            return error(StatusCode::BAD_REQUEST, "malformed_xml", &message);
        }
    };
    match root.name.as_str() {
        "CourtOrder" => {
            let order = match wire::to_order(&root) {
                Ok(order) => order,
                Err(e) => {
                    let message = e.to_string();
                    if let Err(response) =
                        keep_rejected(format!("order {}", wire::order_no(&root)), e.code(), message.clone()).await
                    {
                        return response;
                    }
                    if e.is_business() {
                        let receipt = rejected(wire::order_no(&root), e.code(), message, now);
                        return xml_response(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            xml::receipts_document(&[xml::receipt_element(&receipt)], false),
                        );
                    }
                    return error(StatusCode::BAD_REQUEST, e.code(), &message);
                }
            };
            let hash = wire::content_hash(&root);
            let order_no = order.order_no.clone();
            let payload = writer::OwnedPayload::New { content_type: content_type.clone(), bytes: body.clone() };
            let outcome = state.court_writer.apply(&caller.partner_id, order, hash, payload).await;
            match outcome {
                Ok(ApplyOutcome::Applied { receipt_text, .. }) | Ok(ApplyOutcome::Duplicate { receipt_text }) => {
                    xml_response(StatusCode::OK, xml::receipts_document(&[receipt_text], false))
                }
                Ok(ApplyOutcome::Refused { receipt_text, .. }) => {
                    xml_response(StatusCode::UNPROCESSABLE_ENTITY, xml::receipts_document(&[receipt_text], false))
                }
                Ok(ApplyOutcome::Conflict { order_no }) => error(
                    StatusCode::CONFLICT,
                    "order_no_reused",
                    &format!("order number {order_no} was already used for an order with other content"),
                ),
                Err(e) => {
                    tracing::error!(message = "applying a court order failed", error = %e, order_no = %order_no);
                    error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the order was not recorded; retry later")
                }
            }
        }
        "CourtOrders" => {
            if let Some(other) = root.children.iter().find(|c| c.name != "CourtOrder") {
                let message = format!("CourtOrders may contain only CourtOrder elements, found {}", other.name);
                if let Err(response) = keep_rejected("body".into(), "malformed_batch", message.clone()).await {
                    return response;
                }
                return error(StatusCode::BAD_REQUEST, "malformed_batch", &message);
            }
            if root.children.is_empty() || root.children.len() > MAX_BATCH {
                let message = format!("a batch holds 1 to {MAX_BATCH} orders, this one {}", root.children.len());
                if let Err(response) = keep_rejected("body".into(), "batch_size", message.clone()).await {
                    return response;
                }
                return error(StatusCode::BAD_REQUEST, "batch_size", &message);
            }
            let inbox_id =
                match state.store.record_payload(&caller.partner_id, CHANNEL, &content_type, &body, now).await {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::error!(message = "recording a batch failed", error = %e);
                        return error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "unavailable",
                            "the batch was not recorded; retry later",
                        );
                    }
                };
            // The valid orders go to the writer as one unit: applied in document order, in one commit.
            let mut slots: Vec<Result<String, usize>> = Vec::with_capacity(root.children.len());
            let mut orders = Vec::new();
            for element in &root.children {
                match wire::to_order(element) {
                    Err(e) => slots.push(Ok(xml::receipt_element(&rejected(
                        wire::order_no(element),
                        e.code(),
                        e.to_string(),
                        now,
                    )))),
                    Ok(order) => {
                        slots.push(Err(orders.len()));
                        orders.push((order, wire::content_hash(element)));
                    }
                }
            }
            let order_nos: Vec<String> = orders.iter().map(|(o, _)| o.order_no.clone()).collect();
            let results =
                state.court_writer.apply_all(&caller.partner_id, orders, writer::OwnedPayload::InInbox(inbox_id)).await;
            let mut results: Vec<Option<Result<ApplyOutcome, String>>> = results.into_iter().map(Some).collect();
            let mut receipts = Vec::with_capacity(slots.len());
            for slot in slots {
                let text = match slot {
                    Ok(text) => text,
                    Err(index) => {
                        let order_no = order_nos.get(index).cloned().unwrap_or_default();
                        match results.get_mut(index).and_then(Option::take) {
                            Some(Ok(ApplyOutcome::Applied { receipt_text, .. }))
                            | Some(Ok(ApplyOutcome::Duplicate { receipt_text }))
                            | Some(Ok(ApplyOutcome::Refused { receipt_text, .. })) => receipt_text,
                            Some(Ok(ApplyOutcome::Conflict { order_no })) => xml::receipt_element(&rejected(
                                order_no.clone(),
                                "order_no_reused",
                                format!("order number {order_no} was already used for an order with other content"),
                                now,
                            )),
                            Some(Err(e)) => {
                                tracing::error!(message = "applying a batched court order failed", error = %e, order_no = %order_no);
                                xml::receipt_element(&rejected(
                                    order_no,
                                    "unavailable",
                                    "the order was not recorded; send it again".into(),
                                    now,
                                ))
                            }
                            None => xml::receipt_element(&rejected(
                                order_no,
                                "unavailable",
                                "the order was not recorded; send it again".into(),
                                now,
                            )),
                        }
                    }
                };
                receipts.push(text);
            }
            xml_response(StatusCode::OK, xml::receipts_document(&receipts, true))
        }
        other => {
            let message = format!("root element must be CourtOrder or CourtOrders, found {other}");
            if let Err(response) = keep_rejected("body".into(), "malformed_xml", message.clone()).await {
                return response;
            }
            error(StatusCode::BAD_REQUEST, "malformed_xml", &message)
        }
    }
}

/// `GET /api/court/v1/orders/{order_no}`: the order's current receipt, signed over the path.
pub async fn get_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(order_no): Path<String>,
) -> Response {
    let now = (state.clock)();
    let caller = match authenticate(&state, &headers, uri.path().as_bytes(), now).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match state.store.court_order_status(&caller.partner_id, &order_no, local_date(now)).await {
        Ok(Some(receipt)) => {
            xml_response(StatusCode::OK, xml::receipts_document(&[xml::receipt_element(&receipt)], false))
        }
        Ok(None) => {
            error(StatusCode::NOT_FOUND, "not_found", &format!("no applied order {order_no} from this partner"))
        }
        Err(e) => {
            tracing::error!(message = "order status failed", error = %e);
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "retry later")
        }
    }
}

/// `GET /api/court/v1/court-api.xsd`
pub async fn get_xsd() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/xml; charset=utf-8")], XSD).into_response()
}

/// `GET /api/court/v1/openapi.json`
pub async fn get_openapi() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
