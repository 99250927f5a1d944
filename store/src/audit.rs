//! The audit log: append-only (the database refuses updates and deletes) and
//! hash-chained. Each entry's hash covers the previous entry's hash and its
//! own fields, so [`Store::verify_audit_chain`] detects any edit, deletion or
//! reordering done behind the store's back.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::{Store, StoreResult, StoreTx, TxInner, on_pool, on_tx};

/// What is recorded, as typed values: the action, and the detail serialised
/// here, in one place ([`Recorded::detail`]), as JSON with its fields in
/// declaration order (alphabetical where the entry was once written with
/// `json!`, whose keys are sorted, so the text is what it always was).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Recorded<'a> {
    /// `court.order`: an order applied.
    CourtOrder {
        /// The inbox entry of its payload.
        inbox_id: i64,
        /// `SEIZE`, `RENEW` or `RELEASE`.
        action: &'a str,
        /// The unit.
        unit_no: &'a str,
        /// The receipt's status.
        status: &'a str,
        /// How many register transitions it caused.
        transitions: usize,
    },
    /// `court.order.refused`: an order the seizure rules refused.
    CourtOrderRefused {
        /// The inbox entry of its payload.
        inbox_id: i64,
        /// `SEIZE`, `RENEW` or `RELEASE`.
        action: &'a str,
        /// The unit.
        unit_no: &'a str,
        /// The refusal's code.
        refused: &'a str,
    },
    /// `court.order.repeat`: an order number seen before.
    CourtOrderRepeat {
        /// The inbox entry of the repeated payload.
        inbox_id: i64,
        /// `duplicate` (same content) or `conflict` (other content).
        outcome: &'a str,
    },
    /// `court.payload.rejected`: a payload no order could be read from.
    PayloadRejected {
        /// The error document's code.
        reason_code: &'a str,
    },
    /// `seizure.lapse`: the daily job on one unit.
    SeizureLapse {
        /// How many seizures lapsed or were promoted.
        transitions: usize,
    },
    /// `partner.create`: a partner registered.
    PartnerCreate {
        /// Its kind's code.
        kind: &'a str,
        /// A sandbox court partner.
        sandbox: bool,
    },
    /// `partner.active` or `partner.disabled`: a partner enabled or disabled.
    PartnerStatus {
        /// Enabled (`partner.active`) or disabled.
        #[serde(skip)]
        active: bool,
    },
    /// `partner.rotate`: a new secret, the old ones valid until `grace_until`.
    PartnerRotate {
        /// RFC 3339.
        grace_until: String,
    },
    /// `account.create`: a dashboard account.
    AccountCreate {
        /// Its role.
        role: &'a str,
        /// Its section, if bound to one.
        section: Option<&'a str>,
    },
    /// `account.enable` or `account.disable`.
    AccountStatus {
        /// Disabled (`account.disable`) or enabled.
        #[serde(skip)]
        disabled: bool,
    },
    /// `account.reset`: a password reset.
    AccountReset {},
    /// `session.login`: a dashboard login.
    Login {
        /// The client's address.
        client: &'a str,
    },
    /// `session.login_failed`: a refused login.
    LoginFailed {
        /// `unknown account` or `wrong password or disabled`.
        reason: &'a str,
    },
    /// `dashboard.report_download`: a kept monthly report downloaded.
    ReportDownload {
        /// Its month.
        month: &'a str,
        /// The workbook's SHA-256.
        sha256: &'a str,
        /// The snapshot it was made from.
        snapshot_id: &'a str,
    },
    /// `dashboard.case_list` on `/my/cases`: a staff member's own cases.
    OwnCaseList {
        /// First day.
        from: String,
        /// The staff member's window or terminal code.
        handler: &'a str,
        /// Rows shown.
        rows: usize,
        /// Last day.
        to: String,
    },
    /// `dashboard.case_list` on `/cases` or `/qc/cases`: a drill-down list.
    CaseList {
        /// The list's conditions, as shown.
        filters: &'a [String],
        /// Rows shown.
        rows: usize,
        /// The viewer's section (`/cases` only).
        #[serde(skip_serializing_if = "Option::is_none")]
        section: Option<Option<&'a str>>,
    },
    /// `quarantine.replay`: a quarantined record replayed.
    QuarantineReplay {
        /// The quarantine entry.
        id: i64,
        /// What the replay said.
        result: &'a str,
        /// The HTTP status answered.
        status: u16,
    },
    /// `warehouse.sql`: an analyst's query (console, API, CLI or the PostgreSQL front end).
    WarehouseSql {
        /// Why it failed, if it did.
        error: Option<String>,
        /// Milliseconds it took, when it ran.
        #[serde(skip_serializing_if = "Option::is_none")]
        millis: Option<u64>,
        /// Rows returned, if it succeeded.
        rows: Option<usize>,
        /// The query.
        sql: &'a str,
    },
    /// `warehouse.pg_login`: a login to the warehouse's PostgreSQL front end.
    PgLogin {
        /// The client's address.
        client: &'a str,
        /// Whether the connection is encrypted.
        tls: bool,
    },
}

impl Recorded<'_> {
    /// The action it is logged under.
    pub fn action(&self) -> &'static str {
        match self {
            Recorded::CourtOrder { .. } => "court.order",
            Recorded::CourtOrderRefused { .. } => "court.order.refused",
            Recorded::CourtOrderRepeat { .. } => "court.order.repeat",
            Recorded::PayloadRejected { .. } => "court.payload.rejected",
            Recorded::SeizureLapse { .. } => "seizure.lapse",
            Recorded::PartnerCreate { .. } => "partner.create",
            Recorded::PartnerStatus { active: true } => "partner.active",
            Recorded::PartnerStatus { active: false } => "partner.disabled",
            Recorded::PartnerRotate { .. } => "partner.rotate",
            Recorded::AccountCreate { .. } => "account.create",
            Recorded::AccountStatus { disabled: true } => "account.disable",
            Recorded::AccountStatus { disabled: false } => "account.enable",
            Recorded::AccountReset {} => "account.reset",
            Recorded::Login { .. } => "session.login",
            Recorded::LoginFailed { .. } => "session.login_failed",
            Recorded::ReportDownload { .. } => "dashboard.report_download",
            Recorded::OwnCaseList { .. } | Recorded::CaseList { .. } => "dashboard.case_list",
            Recorded::QuarantineReplay { .. } => "quarantine.replay",
            Recorded::WarehouseSql { .. } => "warehouse.sql",
            Recorded::PgLogin { .. } => "warehouse.pg_login",
        }
    }

    /// The detail, as JSON.
    pub fn detail(&self) -> String {
        // Strings and integers only: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// The hash the first entry chains from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it (account, partner id, `cli`, `system`).
    pub actor: String,
    /// What was done (`partner.create`, `court.order`, `sql.query`, …).
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// Details as JSON text.
    pub detail: String,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first entry that does not verify.
    pub id: i64,
    /// Why.
    pub reason: String,
}

/// The hash of an entry: SHA-256 over the previous hash and the fields, one per line.
pub fn entry_hash(
    prev_hash: &str,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [prev_hash, &at.to_rfc3339_opts(SecondsFormat::Micros, true), actor, action, subject, detail] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// An entry waiting in a transaction for its place in the chain.
#[derive(Debug, Clone)]
pub(crate) struct PendingAudit {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    subject: String,
    detail: String,
}

impl StoreTx {
    /// Adds a typed entry ([`Recorded`]) by `actor` about `subject`.
    pub async fn record(
        &mut self,
        at: DateTime<Utc>,
        actor: &str,
        subject: &str,
        entry: &Recorded<'_>,
    ) -> StoreResult<()> {
        self.append_audit(at, actor, entry.action(), subject, &entry.detail()).await
    }

    /// Adds an entry to the chain as part of this transaction. Entries are
    /// chained and written when the transaction commits, so the chain's lock
    /// is held only for the last moment of the transaction.
    pub async fn append_audit(
        &mut self,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> StoreResult<()> {
        // Microsecond precision is what both backends keep.
        let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
        self.audit_buffer.push(PendingAudit {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            detail: detail.to_owned(),
        });
        Ok(())
    }

    /// Chains and writes the buffered entries (called by `commit`).
    pub(crate) async fn flush_audit(&mut self) -> StoreResult<()> {
        if self.audit_buffer.is_empty() {
            return Ok(());
        }
        // Serialise appenders so two transactions never chain from the same entry.
        // (SQLite transactions already hold the write lock: BEGIN IMMEDIATE.)
        if let TxInner::Postgres(tx) = &mut self.inner {
            sqlx::query("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE").execute(&mut **tx).await?;
        }
        let prev: Option<String> = on_tx!(self, conn => {
            sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetch_optional(conn).await?
        });
        let mut prev = prev.unwrap_or_else(|| GENESIS_HASH.to_owned());
        let entries = std::mem::take(&mut self.audit_buffer);
        // Chained in memory, written in multi-row statements: the chain's lock
        // is held for a few round trips whatever the number of entries.
        let mut chained = Vec::with_capacity(entries.len());
        for e in &entries {
            let hash = entry_hash(&prev, e.at, &e.actor, &e.action, &e.subject, &e.detail);
            chained.push((e, std::mem::replace(&mut prev, hash.clone()), hash));
        }
        for chunk in chained.chunks(AUDIT_ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO audit_log (at, actor, action, subject, detail, prev_hash, hash) VALUES {}",
                crate::upsert::value_tuples(chunk.len(), 7)
            );
            let sql = self.dialect(sql);
            on_tx!(self, conn => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (e, prev_hash, hash) in chunk {
                    query = query
                        .bind(e.at)
                        .bind(&e.actor)
                        .bind(&e.action)
                        .bind(&e.subject)
                        .bind(&e.detail)
                        .bind(prev_hash)
                        .bind(hash);
                }
                query.execute(conn).await?;
            });
        }
        Ok(())
    }
}

/// Audit rows per INSERT (7 parameters each).
const AUDIT_ROWS_PER_STATEMENT: usize = 200;

type AuditRow = (i64, DateTime<Utc>, String, String, String, String, String, String);

impl Store {
    /// Records a typed entry in its own transaction.
    pub async fn record(&self, at: DateTime<Utc>, actor: &str, subject: &str, entry: &Recorded<'_>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.record(at, actor, subject, entry).await?;
        tx.commit().await
    }

    /// Appends an entry in its own transaction.
    pub async fn append_audit(
        &self,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.append_audit(at, actor, action, subject, detail).await?;
        tx.commit().await
    }

    /// The newest entries, newest first.
    pub async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, at, actor, action, subject, detail, prev_hash, hash FROM audit_log ORDER BY id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, action, subject, detail, prev_hash, hash)| AuditEntry {
                id,
                at,
                actor,
                action,
                subject,
                detail,
                prev_hash,
                hash,
            })
            .collect())
    }

    /// Walks the whole chain; `Ok(Ok(n))` with the number of entries when it
    /// verifies, `Ok(Err(break))` at the first entry that does not.
    pub async fn verify_audit_chain(&self) -> StoreResult<Result<u64, ChainBreak>> {
        let mut prev = GENESIS_HASH.to_owned();
        let mut last_id = 0i64;
        let mut count = 0u64;
        loop {
            let rows: Vec<AuditRow> = on_pool!(self, pool => {
                sqlx::query_as(
                    "SELECT id, at, actor, action, subject, detail, prev_hash, hash FROM audit_log WHERE id > $1 ORDER BY id LIMIT 1000",
                )
                .bind(last_id)
                .fetch_all(pool)
                .await?
            });
            if rows.is_empty() {
                return Ok(Ok(count));
            }
            for (id, at, actor, action, subject, detail, prev_hash, hash) in rows {
                if prev_hash != prev {
                    return Ok(Err(ChainBreak {
                        id,
                        reason: "previous hash does not match the entry before it".into(),
                    }));
                }
                if entry_hash(&prev_hash, at, &actor, &action, &subject, &detail) != hash {
                    return Ok(Err(ChainBreak {
                        id,
                        reason: "entry was altered: its hash does not match its fields".into(),
                    }));
                }
                prev = hash;
                last_id = id;
                count += 1;
            }
        }
    }
}

#[cfg(test)]
mod recorded_tests {
    use super::Recorded;

    #[test]
    fn entries_serialise_as_the_log_has_always_held_them() {
        let applied = Recorded::CourtOrder {
            inbox_id: 7,
            action: "SEIZE",
            unit_no: "430405001002GB00001F00010001",
            status: "SEIZED",
            transitions: 1,
        };
        assert_eq!(applied.action(), "court.order");
        assert_eq!(
            applied.detail(),
            r#"{"inbox_id":7,"action":"SEIZE","unit_no":"430405001002GB00001F00010001","status":"SEIZED","transitions":1}"#
        );
        let repeat = Recorded::CourtOrderRepeat { inbox_id: 8, outcome: "duplicate" };
        assert_eq!(repeat.detail(), r#"{"inbox_id":8,"outcome":"duplicate"}"#);
        // Text is escaped, never pasted.
        let odd = Recorded::PayloadRejected { reason_code: "a\"b" };
        assert_eq!(odd.detail(), r#"{"reason_code":"a\"b"}"#);
        assert_eq!(Recorded::SeizureLapse { transitions: 2 }.detail(), r#"{"transitions":2}"#);
    }

    /// The entries once written with `json!` (sorted keys) or by hand keep their text.
    #[test]
    fn the_other_entries_keep_the_text_they_were_written_with() {
        let filters = vec!["district = 430405".to_owned()];
        let cases: [(Recorded<'_>, &str, &str); 18] = [
            (
                Recorded::PartnerCreate { kind: "court", sandbox: false },
                "partner.create",
                r#"{"kind":"court","sandbox":false}"#,
            ),
            (Recorded::PartnerStatus { active: false }, "partner.disabled", "{}"),
            (Recorded::PartnerStatus { active: true }, "partner.active", "{}"),
            (
                Recorded::PartnerRotate { grace_until: "2024-10-08T00:00:00+00:00".into() },
                "partner.rotate",
                r#"{"grace_until":"2024-10-08T00:00:00+00:00"}"#,
            ),
            (
                Recorded::AccountCreate { role: "qc", section: None },
                "account.create",
                r#"{"role":"qc","section":null}"#,
            ),
            (Recorded::AccountStatus { disabled: true }, "account.disable", "{}"),
            (Recorded::AccountReset {}, "account.reset", "{}"),
            (Recorded::Login { client: "127.0.0.1" }, "session.login", r#"{"client":"127.0.0.1"}"#),
            (
                Recorded::LoginFailed { reason: "unknown account" },
                "session.login_failed",
                r#"{"reason":"unknown account"}"#,
            ),
            (
                Recorded::ReportDownload { month: "2026-10", sha256: "ab", snapshot_id: "s1" },
                "dashboard.report_download",
                r#"{"month":"2026-10","sha256":"ab","snapshot_id":"s1"}"#,
            ),
            (
                Recorded::OwnCaseList { from: "2026-01-01".into(), handler: "ZZ03", rows: 3, to: "2026-01-31".into() },
                "dashboard.case_list",
                r#"{"from":"2026-01-01","handler":"ZZ03","rows":3,"to":"2026-01-31"}"#,
            ),
            (
                Recorded::CaseList { filters: &filters, rows: 2, section: Some(None) },
                "dashboard.case_list",
                r#"{"filters":["district = 430405"],"rows":2,"section":null}"#,
            ),
            (
                Recorded::CaseList { filters: &filters, rows: 2, section: None },
                "dashboard.case_list",
                r#"{"filters":["district = 430405"],"rows":2}"#,
            ),
            (
                Recorded::QuarantineReplay { id: 4, result: "ok", status: 200 },
                "quarantine.replay",
                r#"{"id":4,"result":"ok","status":200}"#,
            ),
            (
                Recorded::WarehouseSql { error: None, millis: None, rows: Some(5), sql: "SELECT 1" },
                "warehouse.sql",
                r#"{"error":null,"rows":5,"sql":"SELECT 1"}"#,
            ),
            (
                Recorded::WarehouseSql { error: Some("bad".into()), millis: None, rows: None, sql: "x" },
                "warehouse.sql",
                r#"{"error":"bad","rows":null,"sql":"x"}"#,
            ),
            (
                Recorded::WarehouseSql { error: None, millis: Some(12), rows: Some(3), sql: "SELECT 3" },
                "warehouse.sql",
                r#"{"error":null,"millis":12,"rows":3,"sql":"SELECT 3"}"#,
            ),
            (
                Recorded::PgLogin { client: "127.0.0.1:5000", tls: true },
                "warehouse.pg_login",
                r#"{"client":"127.0.0.1:5000","tls":true}"#,
            ),
        ];
        for (entry, action, detail) in cases {
            assert_eq!((entry.action(), entry.detail().as_str()), (action, detail), "{entry:?}");
        }
    }
}
