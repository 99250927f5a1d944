//! The raw inbox: every payload received, from whom, when, with its SHA-256,
//! kept before anything is parsed so nothing acknowledged can be lost.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// A payload as received.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboxEntry {
    /// Store id.
    pub id: i64,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Who sent it (partner id or connector name).
    pub partner_id: String,
    /// How it came (`court_push`, `connector:registry`, …).
    pub channel: String,
    /// Declared content type.
    pub content_type: String,
    /// Hex SHA-256 of the payload.
    pub sha256: String,
    /// The bytes as received.
    pub payload: Vec<u8>,
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl StoreTx {
    /// Records a payload; returns its inbox id.
    pub async fn insert_inbox(
        &mut self,
        received_at: DateTime<Utc>,
        partner_id: &str,
        channel: &str,
        content_type: &str,
        payload: &[u8],
    ) -> StoreResult<i64> {
        let hash = sha256_hex(payload);
        let size = i64::try_from(payload.len()).unwrap_or(i64::MAX);
        let id: i64 = on_tx!(self, conn => {
            sqlx::query_scalar(
                "INSERT INTO inbox (received_at, partner_id, channel, content_type, sha256, size_bytes, payload) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(received_at)
            .bind(partner_id)
            .bind(channel)
            .bind(content_type)
            .bind(&hash)
            .bind(size)
            .bind(payload.to_vec())
            .fetch_one(conn)
            .await?
        });
        Ok(id)
    }
}

impl Store {
    /// One inbox entry by id.
    pub async fn get_inbox(&self, id: i64) -> StoreResult<Option<InboxEntry>> {
        let row: Option<InboxEntry> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, received_at, partner_id, channel, content_type, sha256, payload FROM inbox WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// How many payloads the inbox holds from `partner_id`.
    pub async fn inbox_count(&self, partner_id: &str) -> StoreResult<i64> {
        let count: i64 = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE partner_id = $1")
                .bind(partner_id)
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }
}
