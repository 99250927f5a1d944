//! The court push API (`/api/court/v1`): signed XML seizure, renewal and
//! release orders in, receipts out. See `docs/court-api.md` for the contract.
//!
//! A receipt is sent only after `court_orders::apply` has
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
use chrono::{DateTime, Utc};
use court_orders::{ApplyOutcome, Receipt, ReceiptStatus};
use domain::court_order::CourtOrder;
use domain::time::local_date;
use store::partners::PartnerStatus;
use store::sandbox::{NewSandboxRequest, Problem};

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
    /// A sandbox partner: its orders go to the sandbox register.
    sandbox: bool,
}

/// A request refused before it reached a register: the answer, and for a
/// sandbox partner what its report should say.
struct Refusal {
    response: Response,
    sandbox: Option<(String, Problem)>,
}

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Self { response, sandbox: None }
    }
}

/// The register a caller's orders go to: the real one, or the sandbox's.
#[derive(Clone, Copy)]
struct Register<'a> {
    store: &'a store::Store,
    writer: &'a writer::CourtWriter,
}

impl AppState {
    fn register(&self, sandbox: bool) -> Option<Register<'_>> {
        if sandbox {
            self.sandbox.as_ref().map(|s| Register { store: &s.store, writer: &s.writer })
        } else {
            Some(Register { store: &self.store, writer: &self.court_writer })
        }
    }
}

/// Decodes a pushed body as `POST /orders` does before any store work: the XML
/// document (no DOCTYPE, no entities), then each order's fields. The entry point
/// for fuzzing and property tests: whatever the bytes, the answer is orders and
/// per-order errors, or one error for the document, never a panic.
pub fn decode_orders(body: &[u8]) -> Result<Vec<Result<CourtOrder, OrderError>>, DocumentError> {
    let root = xml::parse_document(body).map_err(|e| DocumentError::Xml(e.to_string()))?;
    let order_error = |e: wire::FieldError| OrderError { code: e.code(), message: e.to_string() };
    match root.name.as_str() {
        "CourtOrder" => Ok(vec![wire::to_order(&root).map_err(order_error)]),
        "CourtOrders" => Ok(root
            .children
            .iter()
            .map(|order| {
                if order.name == "CourtOrder" {
                    wire::to_order(order).map_err(order_error)
                } else {
                    Err(OrderError { code: "malformed_batch", message: format!("{} in CourtOrders", order.name) })
                }
            })
            .collect()),
        other => Err(DocumentError::Root(other.to_owned())),
    }
}

/// A pushed body that cannot be read as orders at all (the whole push is refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Not well-formed XML, a DOCTYPE or an entity, too deep or too large.
    #[error("{0}")]
    Xml(String),
    /// Well-formed, but neither `<CourtOrder>` nor `<CourtOrders>`.
    #[error("the root element is {0}, not CourtOrder or CourtOrders")]
    Root(String),
}

/// One order of a push that cannot be applied, with the code its receipt names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct OrderError {
    /// The receipt's reason code (`malformed_field`, `invalid_identifier`, `malformed_batch` …).
    pub code: &'static str,
    /// What is wrong, naming the field.
    pub message: String,
}

/// At most this many characters of the string to sign go into a sandbox report.
const STRING_TO_SIGN_SHOWN: usize = 4096;

/// What a sandbox partner is told when its signature fails: the exact string
/// to sign (`<t>.<signed content>`), and what else is off with the header.
fn signature_problem(
    error: &SignatureError,
    header: Option<&SignatureHeader>,
    signed: &[u8],
    now: DateTime<Utc>,
) -> Problem {
    let mut problem = Problem { code: "unauthorized".into(), message: error.to_string(), ..Problem::default() };
    let Some(header) = header else {
        problem.rule = Some(
            "X-Signature: t=<unix seconds>,v1=<64 hex digits of HMAC-SHA256>[,sm3=<64 hex digits of HMAC-SM3>]".into(),
        );
        return problem;
    };
    let content = String::from_utf8_lossy(signed);
    let shown: String = content.chars().take(STRING_TO_SIGN_SHOWN).collect();
    let cut = if shown.len() < content.len() {
        format!("… ({} bytes in all; sign every byte of the body as sent)", signed.len())
    } else {
        String::new()
    };
    problem.string_to_sign = Some(format!("{}.{shown}{cut}", header.timestamp));
    let mut notes = Vec::new();
    if *error == SignatureError::Stale {
        notes.push(format!(
            "t={} is {} s from the server's time {} (allowed: {} s)",
            header.timestamp,
            i128::from(header.timestamp) - i128::from(now.timestamp()),
            now.timestamp(),
            signature::TOLERANCE_SECONDS
        ));
    }
    for (scheme, macs) in [("v1", &header.v1), ("sm3", &header.sm3)] {
        for mac in macs.iter().filter(|m| m.len() != 32) {
            notes.push(format!("{scheme} has {} hex digits; an HMAC of this scheme has 64", mac.len() * 2));
        }
    }
    notes.push(format!(
        "HMAC key: the partner secret as UTF-8 bytes; message: the string to sign; content SHA-256 {}",
        store::inbox::sha256_hex(signed)
    ));
    problem.rule = Some(notes.join("; "));
    problem
}

/// Checks the partner header, the partner, the signature over `signed`, and the rate.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    signed: &[u8],
    now: DateTime<Utc>,
) -> Result<Caller, Refusal> {
    let unauthorized = |message: &str| error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let partner_id = headers
        .get("x-partner-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| unauthorized("missing X-Partner-Id header"))?;
    // Who sent it and their secrets: one lookup, reused for a few seconds
    // (`Store::signing_partner`), so a request costs no round trip for it.
    let signing = state.store.signing_partner(partner_id).await.map_err(|e| {
        tracing::error!(message = "partner lookup failed", error = %e);
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the registry cannot check partners right now; retry later",
        )
    })?;
    let signing = match signing {
        Some(s) if s.partner.status == PartnerStatus::Active && s.partner.kind == domain::PartnerKind::Court => s,
        _ => return Err(unauthorized("unknown or disabled partner").into()),
    };
    let partner = &signing.partner;
    if partner.sandbox && state.sandbox.is_none() {
        return Err(unauthorized("sandbox partners are not served here: this gateway has no sandbox register").into());
    }
    let refuse = |e: SignatureError, header: Option<&SignatureHeader>| Refusal {
        response: unauthorized(&e.to_string()),
        sandbox: partner.sandbox.then(|| (partner.id.clone(), signature_problem(&e, header, signed, now))),
    };
    let header = match headers
        .get("x-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(SignatureError::Missing)
        .and_then(SignatureHeader::parse)
    {
        Ok(header) => header,
        Err(e) => return Err(refuse(e, None)),
    };
    if let Err(e) = header.verify(signed, signing.valid_at(now).map(|c| c.secret.as_str()), now) {
        tracing::warn!(message = "signature refused", partner = %partner.id, reason = %e);
        return Err(refuse(e, Some(&header)));
    }
    if let Some(per_minute) = partner.rate_limit_per_minute
        && let Err(wait) = state.rate_limiter.check(&partner.id, per_minute, now)
    {
        let message = format!("more than {per_minute} requests per minute; retry after {wait} s");
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", &message);
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        let problem = Problem { code: "rate_limited".into(), message, ..Problem::default() };
        return Err(Refusal { response, sandbox: partner.sandbox.then(|| (partner.id.clone(), problem)) });
    }
    Ok(Caller { partner_id: partner.id.clone(), sandbox: partner.sandbox })
}

fn is_xml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/xml" || v == "text/xml")
}

/// Logs a sandbox partner's request (never fails the request: the log is a courtesy).
async fn log_sandbox(state: &AppState, request: NewSandboxRequest<'_>) {
    let Some(sandbox) = &state.sandbox else { return };
    if let Err(e) = sandbox.store.log_sandbox_request(&request).await {
        tracing::warn!(message = "could not log a sandbox request", partner = %request.partner_id, error = %e);
    }
}

/// [`authenticate`], logging a refused sandbox partner's request with what was wrong.
async fn authenticate_logged(
    state: &AppState,
    headers: &HeaderMap,
    signed: &[u8],
    now: DateTime<Utc>,
    method: &str,
    path: &str,
) -> Result<Caller, Response> {
    let Refusal { response, sandbox } = match authenticate(state, headers, signed, now).await {
        Ok(caller) => return Ok(caller),
        Err(refusal) => refusal,
    };
    if let Some((partner_id, problem)) = sandbox {
        let entry = NewSandboxRequest {
            partner_id: &partner_id,
            received_at: now,
            method,
            path,
            http_status: response.status().as_u16(),
            orders: 0,
            problems: std::slice::from_ref(&problem),
        };
        log_sandbox(state, entry).await;
    }
    Err(response)
}

/// `POST /api/court/v1/orders`
pub async fn post_orders(State(state): State<AppState>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let now = (state.clock)();
    if !is_xml(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/xml",
        );
    }
    let caller = match authenticate_logged(&state, &headers, &body, now, "POST", uri.path()).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Some(register) = state.register(caller.sandbox) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no sandbox register; retry later");
    };
    let mut outcome = Outcome::default();
    let response = apply_body(register, &caller, &headers, &body, now, &mut outcome).await;
    if caller.sandbox {
        let entry = NewSandboxRequest {
            partner_id: &caller.partner_id,
            received_at: now,
            method: "POST",
            path: uri.path(),
            http_status: response.status().as_u16(),
            orders: outcome.orders,
            problems: &outcome.problems,
        };
        log_sandbox(&state, entry).await;
    }
    response
}

/// What a request held and what was wrong with it (for sandbox reports).
#[derive(Default)]
struct Outcome {
    orders: u32,
    problems: Vec<Problem>,
}

impl Outcome {
    fn document(&mut self, code: &str, message: &str, line_column: Option<(u64, u64)>) {
        self.problems.push(Problem {
            code: code.to_owned(),
            message: message.to_owned(),
            line: line_column.map(|(l, _)| l),
            column: line_column.map(|(_, c)| c),
            ..Problem::default()
        });
    }

    fn field(&mut self, order_no: String, e: &wire::FieldError) {
        self.problems.push(Problem {
            order_no: Some(order_no),
            code: e.code().to_owned(),
            message: e.to_string(),
            field: Some(e.field()),
            rule: Some(e.rule()),
            ..Problem::default()
        });
    }

    fn receipt(&mut self, receipt: &Receipt) {
        if let Some(code) = &receipt.reason_code {
            self.problems.push(Problem {
                order_no: Some(receipt.order_no.clone()),
                code: code.clone(),
                message: receipt.reason.clone().unwrap_or_default(),
                ..Problem::default()
            });
        }
    }
}

/// Reads the pushed body and applies its orders to `register`; the answer,
/// with what was wrong noted in `outcome`.
async fn apply_body(
    register: Register<'_>,
    caller: &Caller,
    headers: &HeaderMap,
    body: &Bytes,
    now: DateTime<Utc>,
    outcome: &mut Outcome,
) -> Response {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/xml").to_owned();
    let keep_rejected = |position: String, code: &'static str, reason: String| {
        let (partner, content_type) = (&caller.partner_id, &content_type);
        async move {
            if let Err(e) = register
                .store
                .record_rejected_payload(partner, CHANNEL, content_type, body, &position, code, &reason, now)
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

    let root = match xml::parse_document(body) {
        Ok(root) => root,
        Err(e) => {
            let message = e.to_string();
            outcome.document("malformed_xml", &message, e.line_column());
            if let Err(response) = keep_rejected("body".into(), "malformed_xml", message.clone()).await {
                return response;
            }
            return error(StatusCode::BAD_REQUEST, "malformed_xml", &message);
        }
    };
    match root.name.as_str() {
        "CourtOrder" => {
            outcome.orders = 1;
            let order = match wire::to_order(&root) {
                Ok(order) => order,
                Err(e) => {
                    let message = e.to_string();
                    outcome.field(wire::order_no(&root), &e);
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
            match register.writer.apply(&caller.partner_id, order, hash, payload).await {
                Ok(ApplyOutcome::Applied { receipt_text, .. }) | Ok(ApplyOutcome::Duplicate { receipt_text }) => {
                    xml_response(StatusCode::OK, xml::receipts_document(&[receipt_text], false))
                }
                Ok(ApplyOutcome::Refused { receipt_text, receipt, .. }) => {
                    outcome.receipt(&receipt);
                    xml_response(StatusCode::UNPROCESSABLE_ENTITY, xml::receipts_document(&[receipt_text], false))
                }
                Ok(ApplyOutcome::Conflict { order_no }) => {
                    let message = format!("order number {order_no} was already used for an order with other content");
                    outcome.receipt(&rejected(order_no, "order_no_reused", message.clone(), now));
                    error(StatusCode::CONFLICT, "order_no_reused", &message)
                }
                Err(e) => {
                    tracing::error!(message = "applying a court order failed", error = %e, order_no = %order_no);
                    error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the order was not recorded; retry later")
                }
            }
        }
        "CourtOrders" => {
            outcome.orders = u32::try_from(root.children.len()).unwrap_or(u32::MAX);
            if let Some(other) = root.children.iter().find(|c| c.name != "CourtOrder") {
                let message = format!("CourtOrders may contain only CourtOrder elements, found {}", other.name);
                outcome.document("malformed_batch", &message, None);
                if let Err(response) = keep_rejected("body".into(), "malformed_batch", message.clone()).await {
                    return response;
                }
                return error(StatusCode::BAD_REQUEST, "malformed_batch", &message);
            }
            if root.children.is_empty() || root.children.len() > MAX_BATCH {
                let message = format!("a batch holds 1 to {MAX_BATCH} orders, this one {}", root.children.len());
                outcome.document("batch_size", &message, None);
                if let Err(response) = keep_rejected("body".into(), "batch_size", message.clone()).await {
                    return response;
                }
                return error(StatusCode::BAD_REQUEST, "batch_size", &message);
            }
            let inbox_id =
                match register.store.record_payload(&caller.partner_id, CHANNEL, &content_type, body, now).await {
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
            let mut slots: Vec<Result<Receipt, usize>> = Vec::with_capacity(root.children.len());
            let mut orders = Vec::new();
            for element in &root.children {
                match wire::to_order(element) {
                    Err(e) => {
                        outcome.field(wire::order_no(element), &e);
                        slots.push(Ok(rejected(wire::order_no(element), e.code(), e.to_string(), now)));
                    }
                    Ok(order) => {
                        slots.push(Err(orders.len()));
                        orders.push((order, wire::content_hash(element)));
                    }
                }
            }
            let order_nos: Vec<String> = orders.iter().map(|(o, _)| o.order_no.clone()).collect();
            let results =
                register.writer.apply_all(&caller.partner_id, orders, writer::OwnedPayload::InInbox(inbox_id)).await;
            let mut results: Vec<Option<_>> = results.into_iter().map(Some).collect();
            let mut receipts = Vec::with_capacity(slots.len());
            for slot in slots {
                let not_recorded = |order_no: String| {
                    rejected(order_no, "unavailable", "the order was not recorded; send it again".into(), now)
                };
                let text = match slot {
                    Ok(receipt) => xml::receipt_element(&receipt),
                    Err(index) => {
                        let order_no = order_nos.get(index).cloned().unwrap_or_default();
                        match results.get_mut(index).and_then(Option::take) {
                            Some(Ok(ApplyOutcome::Applied { receipt_text, .. }))
                            | Some(Ok(ApplyOutcome::Duplicate { receipt_text })) => receipt_text,
                            Some(Ok(ApplyOutcome::Refused { receipt_text, receipt, .. })) => {
                                outcome.receipt(&receipt);
                                receipt_text
                            }
                            Some(Ok(ApplyOutcome::Conflict { order_no })) => {
                                let receipt = rejected(
                                    order_no.clone(),
                                    "order_no_reused",
                                    format!("order number {order_no} was already used for an order with other content"),
                                    now,
                                );
                                outcome.receipt(&receipt);
                                xml::receipt_element(&receipt)
                            }
                            Some(Err(e)) => {
                                tracing::error!(message = "applying a batched court order failed", error = %e, order_no = %order_no);
                                xml::receipt_element(&not_recorded(order_no))
                            }
                            None => xml::receipt_element(&not_recorded(order_no)),
                        }
                    }
                };
                receipts.push(text);
            }
            xml_response(StatusCode::OK, xml::receipts_document(&receipts, true))
        }
        other => {
            let message = format!("root element must be CourtOrder or CourtOrders, found {other}");
            outcome.document("malformed_xml", &message, None);
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
    let caller = match authenticate_logged(&state, &headers, uri.path().as_bytes(), now, "GET", uri.path()).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Some(register) = state.register(caller.sandbox) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no sandbox register; retry later");
    };
    let (response, problems) =
        match court_orders::status(register.store, &caller.partner_id, &order_no, local_date(now)).await {
            Ok(Some(receipt)) => {
                (xml_response(StatusCode::OK, xml::receipts_document(&[xml::receipt_element(&receipt)], false)), vec![])
            }
            Ok(None) => {
                let message = format!("no applied order {order_no} from this partner");
                let problem = Problem {
                    order_no: Some(order_no.clone()),
                    code: "not_found".into(),
                    message: message.clone(),
                    ..Problem::default()
                };
                (error(StatusCode::NOT_FOUND, "not_found", &message), vec![problem])
            }
            Err(e) => {
                tracing::error!(message = "order status failed", error = %e);
                (error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "retry later"), vec![])
            }
        };
    if caller.sandbox {
        let entry = NewSandboxRequest {
            partner_id: &caller.partner_id,
            received_at: now,
            method: "GET",
            path: uri.path(),
            http_status: response.status().as_u16(),
            orders: 0,
            problems: &problems,
        };
        log_sandbox(&state, entry).await;
    }
    response
}

/// Query of the sandbox report.
#[derive(Debug, serde::Deserialize)]
pub struct ReportQuery {
    /// Requests to show, newest first (1 to 200, default 20).
    limit: Option<i64>,
}

/// `GET /api/court/v1/sandbox/report`: a sandbox partner's last requests and
/// what was wrong with each, signed over the path like every GET.
pub async fn get_sandbox_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::extract::Query(query): axum::extract::Query<ReportQuery>,
) -> Response {
    let now = (state.clock)();
    let caller = match authenticate_logged(&state, &headers, uri.path().as_bytes(), now, "GET", uri.path()).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let (true, Some(sandbox)) = (caller.sandbox, &state.sandbox) else {
        return error(
            StatusCode::FORBIDDEN,
            "not_sandbox",
            "this report is for sandbox partners; ask the registry for sandbox credentials",
        );
    };
    let limit = query.limit.unwrap_or(20).clamp(1, store::sandbox::KEEP_PER_PARTNER);
    match sandbox.store.sandbox_requests(&caller.partner_id, limit).await {
        Ok(requests) => xml_response(StatusCode::OK, xml::sandbox_report(&caller.partner_id, &requests, now)),
        Err(e) => {
            tracing::error!(message = "sandbox report failed", error = %e);
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
