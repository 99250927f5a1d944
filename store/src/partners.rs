//! Partners (courts, banks, the provident fund, the housing authority, the
//! registry's own system) and their signing credentials.
//!
//! A partner may hold several valid secrets at once during key rotation: the
//! old one keeps a `valid_until` for its grace period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::PartnerKind;

use crate::audit::Recorded;
use crate::{Store, StoreError, StoreResult, on_pool, on_tx};

/// Whether a partner may call in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerStatus {
    /// Requests are accepted.
    Active,
    /// Every request is refused (401).
    Disabled,
}

impl PartnerStatus {
    fn code(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

/// A registered partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// ASCII id, e.g. `court-0405`.
    pub id: String,
    /// What kind of system it is.
    pub kind: PartnerKind,
    /// Display name.
    pub name: String,
    /// Active or disabled.
    pub status: PartnerStatus,
    /// Requests per minute allowed, if limited.
    pub rate_limit_per_minute: Option<i64>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// A sandbox partner: its orders get every check and real receipts but are
    /// applied to the separate sandbox register, never to the real one.
    pub sandbox: bool,
}

/// A signing secret of a partner.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Credential {
    /// Store id.
    pub id: i64,
    /// The shared secret (HMAC key).
    pub secret: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// End of its validity (set when rotated out), or `None` while current.
    pub valid_until: Option<DateTime<Utc>>,
}

impl Credential {
    /// Whether it may sign at `now`: current, or rotated out but within its grace period.
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.valid_until.is_none_or(|until| until > now)
    }
}

/// Never prints the secret.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("secret", &"***")
            .field("created_at", &self.created_at)
            .field("valid_until", &self.valid_until)
            .finish()
    }
}

/// A partner with every secret it holds, as the gateway checks a request
/// against it ([`Store::signing_partner`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningPartner {
    /// The partner.
    pub partner: Partner,
    /// All its secrets, newest first, whatever their validity.
    credentials: Vec<Credential>,
}

impl SigningPartner {
    /// The secrets valid at `now`, newest first (as [`Store::valid_credentials`]).
    pub fn valid_at(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Credential> {
        self.credentials.iter().filter(move |c| c.valid_at(now))
    }
}

/// How long [`Store::signing_partner`] reuses what it read, by default.
pub const PARTNER_CACHE_TTL: Duration = Duration::from_secs(5);

/// The gateway's partner lookups, kept for a few seconds so that a signed
/// request costs no database round trip for who sent it. A change made
/// through the same [`Store`] (any clone) takes effect at once: it clears the
/// cache after its commit, and a lookup that raced with it is not kept (the
/// generation moved). A change made by another process (`wangban partner
/// disable`) takes effect within the time to live. Unknown partners are not
/// kept, so a partner added elsewhere is served at once.
#[derive(Debug)]
pub(crate) struct PartnerCache {
    ttl: Duration,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    generation: u64,
    entries: HashMap<String, (Instant, Arc<SigningPartner>)>,
}

impl Default for PartnerCache {
    fn default() -> Self {
        Self::with_ttl(PARTNER_CACHE_TTL)
    }
}

impl PartnerCache {
    pub(crate) fn with_ttl(ttl: Duration) -> Self {
        Self { ttl, state: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh entry, or the generation a lookup must still see to keep its answer.
    fn get(&self, id: &str) -> Result<Arc<SigningPartner>, u64> {
        let state = self.lock();
        match state.entries.get(id) {
            Some((at, entry)) if at.elapsed() < self.ttl => Ok(entry.clone()),
            _ => Err(state.generation),
        }
    }

    fn put(&self, generation: u64, entry: Arc<SigningPartner>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.lock();
        if state.generation == generation {
            state.entries.insert(entry.partner.id.clone(), (Instant::now(), entry));
        }
    }

    /// Forgets everything (after a partner or its secrets changed).
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
    }
}

#[derive(sqlx::FromRow)]
struct PartnerRow {
    id: String,
    kind: String,
    name: String,
    status: String,
    rate_limit_per_minute: Option<i64>,
    created_at: DateTime<Utc>,
    sandbox: bool,
}

impl TryFrom<PartnerRow> for Partner {
    type Error = StoreError;

    fn try_from(r: PartnerRow) -> Result<Self, StoreError> {
        let kind = PartnerKind::from_code(&r.kind).ok_or_else(|| StoreError::Corrupt {
            table: "partners",
            column: "kind",
            value: r.kind.clone(),
        })?;
        let status = match r.status.as_str() {
            "active" => PartnerStatus::Active,
            "disabled" => PartnerStatus::Disabled,
            other => return Err(StoreError::Corrupt { table: "partners", column: "status", value: other.to_owned() }),
        };
        Ok(Partner {
            id: r.id,
            kind,
            name: r.name,
            status,
            rate_limit_per_minute: r.rate_limit_per_minute,
            created_at: r.created_at,
            sandbox: r.sandbox,
        })
    }
}

impl crate::StoreTx {
    /// Creates a partner without credentials if it does not exist (partners
    /// the registry pulls from, such as the court platform, sign nothing).
    pub async fn ensure_partner(
        &mut self,
        id: &str,
        kind: PartnerKind,
        name: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_tx!(self, conn => {
            sqlx::query(
                "INSERT INTO partners (id, kind, name, status, created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $4) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(kind.code())
            .bind(name)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}

impl Store {
    /// Registers a partner with its first secret. Fails with
    /// [`StoreError::AlreadyExists`] if the id is taken.
    pub async fn create_partner(
        &self,
        id: &str,
        kind: PartnerKind,
        name: &str,
        secret: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Partner> {
        self.insert_partner(id, kind, name, secret, false, now).await
    }

    /// Registers a sandbox court partner with its first secret (see
    /// [`Partner::sandbox`]); its register is another store, which needs the
    /// partner too: [`Store::mirror_sandbox_partner`].
    pub async fn create_sandbox_partner(
        &self,
        id: &str,
        name: &str,
        secret: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Partner> {
        self.insert_partner(id, PartnerKind::Court, name, secret, true, now).await
    }

    /// Records a sandbox partner in the sandbox register's own store (its
    /// orders refer to it there); no credentials, which stay in the real store.
    pub async fn mirror_sandbox_partner(&self, partner: &Partner) -> StoreResult<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO partners (id, kind, name, status, created_at, updated_at, sandbox) \
                 VALUES ($1, $2, $3, 'active', $4, $4, TRUE) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&partner.id)
            .bind(partner.kind.code())
            .bind(&partner.name)
            .bind(partner.created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    async fn insert_partner(
        &self,
        id: &str,
        kind: PartnerKind,
        name: &str,
        secret: &str,
        sandbox: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Partner> {
        let mut tx = self.begin().await?;
        let inserted = on_tx!(tx, conn => {
            sqlx::query(
                "INSERT INTO partners (id, kind, name, status, created_at, updated_at, sandbox) VALUES ($1, $2, $3, 'active', $4, $4, $5) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(kind.code())
            .bind(name)
            .bind(now)
            .bind(sandbox)
            .execute(conn)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(StoreError::AlreadyExists { what: "partner", key: id.to_owned() });
        }
        on_tx!(tx, conn => {
            sqlx::query("INSERT INTO partner_credentials (partner_id, secret, created_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(secret)
                .bind(now)
                .execute(conn)
                .await?;
        });
        tx.record(now, "cli", id, &Recorded::PartnerCreate { kind: kind.code(), sandbox }).await?;
        tx.commit().await?;
        Ok(Partner {
            id: id.to_owned(),
            kind,
            name: name.to_owned(),
            status: PartnerStatus::Active,
            rate_limit_per_minute: None,
            created_at: now,
            sandbox,
        })
    }

    /// One partner by id.
    pub async fn get_partner(&self, id: &str) -> StoreResult<Option<Partner>> {
        let row: Option<PartnerRow> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, kind, name, status, rate_limit_per_minute, created_at, sandbox FROM partners WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(Partner::try_from).transpose()
    }

    /// All partners, by id.
    pub async fn list_partners(&self) -> StoreResult<Vec<Partner>> {
        let rows: Vec<PartnerRow> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, kind, name, status, rate_limit_per_minute, created_at, sandbox FROM partners ORDER BY id")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(Partner::try_from).collect()
    }

    /// Enables or disables a partner.
    pub async fn set_partner_status(&self, id: &str, status: PartnerStatus, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let changed = on_tx!(tx, conn => {
            sqlx::query("UPDATE partners SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(status.code())
                .bind(now)
                .bind(id)
                .execute(conn)
                .await?
                .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound { what: "partner", key: id.to_owned() });
        }
        tx.record(now, "cli", id, &Recorded::PartnerStatus { active: status == PartnerStatus::Active }).await?;
        tx.commit().await?;
        self.partner_cache.clear();
        Ok(())
    }

    /// Adds a new secret and limits every current one to `grace_until` (key rotation).
    pub async fn rotate_partner_secret(
        &self,
        id: &str,
        new_secret: &str,
        grace_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if self.get_partner(id).await?.is_none() {
            return Err(StoreError::NotFound { what: "partner", key: id.to_owned() });
        }
        let mut tx = self.begin().await?;
        on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE partner_credentials SET valid_until = $1 WHERE partner_id = $2 AND (valid_until IS NULL OR valid_until > $1)",
            )
            .bind(grace_until)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("INSERT INTO partner_credentials (partner_id, secret, created_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(new_secret)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        });
        tx.record(now, "cli", id, &Recorded::PartnerRotate { grace_until: grace_until.to_rfc3339() }).await?;
        tx.commit().await?;
        self.partner_cache.clear();
        Ok(())
    }

    /// A partner and its secrets, for checking a signed request: reused for
    /// [`PARTNER_CACHE_TTL`] (see `PartnerCache`), so the gateway's hot path
    /// reads the database once per partner every few seconds, not twice per
    /// request. `None` for an unknown partner (never kept).
    pub async fn signing_partner(&self, id: &str) -> StoreResult<Option<Arc<SigningPartner>>> {
        let generation = match self.partner_cache.get(id) {
            Ok(entry) => return Ok(Some(entry)),
            Err(generation) => generation,
        };
        let Some(partner) = self.get_partner(id).await? else { return Ok(None) };
        let credentials = self.credentials(id).await?;
        let entry = Arc::new(SigningPartner { partner, credentials });
        self.partner_cache.put(generation, entry.clone());
        Ok(Some(entry))
    }

    /// This store with partner lookups kept for `ttl` instead of
    /// [`PARTNER_CACHE_TTL`]; zero reads the database on every request.
    pub fn with_partner_cache_ttl(mut self, ttl: Duration) -> Self {
        self.partner_cache = Arc::new(PartnerCache::with_ttl(ttl));
        self
    }

    /// The secrets of a partner that are valid at `now`, newest first.
    pub async fn valid_credentials(&self, partner_id: &str, now: DateTime<Utc>) -> StoreResult<Vec<Credential>> {
        Ok(self.credentials(partner_id).await?.into_iter().filter(|c| c.valid_at(now)).collect())
    }

    /// Every secret of a partner, whatever its validity, newest first.
    async fn credentials(&self, partner_id: &str) -> StoreResult<Vec<Credential>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, secret, created_at, valid_until FROM partner_credentials WHERE partner_id = $1 ORDER BY id DESC",
            )
            .bind(partner_id)
            .fetch_all(pool)
            .await?
        }))
    }
}
