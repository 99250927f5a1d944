//! The sandbox log: each request a sandbox court partner made, with what was
//! wrong with it, for the partner's own report (`GET
//! /api/court/v1/sandbox/report`) and the administrators' page. Kept in the
//! sandbox register's store, never in the real one; the newest
//! [`KEEP_PER_PARTNER`] requests of each partner are kept.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, StoreResult, on_pool};

/// Requests kept per sandbox partner; older ones are deleted as new ones come.
pub const KEEP_PER_PARTNER: i64 = 200;

/// One thing wrong with a request, as specific as the check that found it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The order it concerns, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_no: Option<String>,
    /// The code the receipt or error carried, e.g. `malformed_xml`, `invalid_field`.
    pub code: String,
    /// What is wrong, as the receipt or error said it.
    pub message: String,
    /// The element at fault, e.g. `CourtOrder/UnitNo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The rule it broke, e.g. the check-digit rule of a unit number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Line of an XML format error (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Column of an XML format error (1-based, in characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// When the signature failed: the exact string the partner should have
    /// signed (`<t>.<body or path>`, cut after 4,096 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_to_sign: Option<String>,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRequest {
    /// Store id (increasing).
    pub id: i64,
    /// The sandbox partner.
    pub partner_id: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// `POST` or `GET`.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The HTTP status it was answered with.
    pub http_status: u16,
    /// Orders in the request (0 when it could not be read).
    pub orders: u32,
    /// What was wrong; empty when nothing was.
    pub problems: Vec<Problem>,
}

/// A request to log.
#[derive(Debug, Clone, Copy)]
pub struct NewSandboxRequest<'a> {
    /// The sandbox partner.
    pub partner_id: &'a str,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// `POST` or `GET`.
    pub method: &'a str,
    /// The request path.
    pub path: &'a str,
    /// The HTTP status it was answered with.
    pub http_status: u16,
    /// Orders in the request.
    pub orders: u32,
    /// What was wrong.
    pub problems: &'a [Problem],
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    partner_id: String,
    received_at: DateTime<Utc>,
    method: String,
    path: String,
    http_status: i32,
    orders: i32,
    problems: String,
}

impl TryFrom<Row> for SandboxRequest {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        let problems = serde_json::from_str(&r.problems).map_err(|_| StoreError::Corrupt {
            table: "sandbox_requests",
            column: "problems",
            value: r.problems.chars().take(80).collect(),
        })?;
        Ok(Self {
            id: r.id,
            partner_id: r.partner_id,
            received_at: r.received_at,
            method: r.method,
            path: r.path,
            http_status: u16::try_from(r.http_status).unwrap_or(0),
            orders: u32::try_from(r.orders).unwrap_or(0),
            problems,
        })
    }
}

const COLUMNS: &str = "id, partner_id, received_at, method, path, http_status, orders, problems";

impl Store {
    /// Logs a sandbox partner's request and drops that partner's requests
    /// older than the newest [`KEEP_PER_PARTNER`].
    pub async fn log_sandbox_request(&self, request: &NewSandboxRequest<'_>) -> StoreResult<()> {
        let NewSandboxRequest { partner_id, received_at, method, path, http_status, orders, problems } = *request;
        let problems = serde_json::to_string(problems).unwrap_or_else(|_| "[]".to_owned());
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO sandbox_requests (partner_id, received_at, method, path, http_status, orders, problems) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(partner_id)
            .bind(received_at)
            .bind(method)
            .bind(path)
            .bind(i32::from(http_status))
            .bind(i32::try_from(orders).unwrap_or(i32::MAX))
            .bind(&problems)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM sandbox_requests WHERE partner_id = $1 AND id <= \
                 (SELECT id FROM sandbox_requests WHERE partner_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            )
            .bind(partner_id)
            .bind(KEEP_PER_PARTNER)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// A partner's newest requests, newest first.
    pub async fn sandbox_requests(&self, partner_id: &str, limit: i64) -> StoreResult<Vec<SandboxRequest>> {
        let sql = format!("SELECT {COLUMNS} FROM sandbox_requests WHERE partner_id = $1 ORDER BY id DESC LIMIT $2");
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(partner_id).bind(limit).fetch_all(pool).await?
        });
        rows.into_iter().map(SandboxRequest::try_from).collect()
    }

    /// Every sandbox partner's newest requests, newest first (the administrators' page).
    pub async fn recent_sandbox_requests(&self, limit: i64) -> StoreResult<Vec<SandboxRequest>> {
        let sql = format!("SELECT {COLUMNS} FROM sandbox_requests ORDER BY id DESC LIMIT $1");
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(limit).fetch_all(pool).await?
        });
        rows.into_iter().map(SandboxRequest::try_from).collect()
    }
}
