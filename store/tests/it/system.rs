//! Partners and credentials, the inbox, quarantine, connector state, the audit chain, and schema parity.

use chrono::TimeDelta;
use domain::PartnerKind;
use store::connector_state::ConnectorState;
use store::partners::PartnerStatus;
use store::quarantine::NewQuarantine;
use store::testing::TestDatabase;
use store::{Store, StoreError};

use store::both_backends;

use crate::support::at;

both_backends!(
    partners_and_key_rotation,
    the_gateways_partner_lookup_is_kept_and_cleared,
    a_savepoint_rolls_back_its_rows_and_its_audit_entries,
    inbox_keeps_payload_and_hash,
    quarantine_lists_and_replays,
    cursor_moves_only_with_its_batch,
    audit_chain_verifies_and_is_append_only,
);

async fn partners_and_key_rotation(store: Store) {
    let now = at(2024, 10, 1, 9, 0);
    let partner =
        store.create_partner("court-0405", PartnerKind::Court, "珠晖区人民法院", "s1", now).await.expect("create");
    assert_eq!(partner.status, PartnerStatus::Active);
    let err = store.create_partner("court-0405", PartnerKind::Court, "dup", "s2", now).await.expect_err("duplicate id");
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert_eq!(store.get_partner("court-0405").await.expect("get"), Some(partner));

    let grace = now + TimeDelta::days(7);
    store.rotate_partner_secret("court-0405", "s2", grace, now).await.expect("rotate");
    let during = store.valid_credentials("court-0405", now + TimeDelta::days(1)).await.expect("creds");
    assert_eq!(during.iter().map(|c| c.secret.as_str()).collect::<Vec<_>>(), ["s2", "s1"]);
    let after = store.valid_credentials("court-0405", grace + TimeDelta::seconds(1)).await.expect("creds");
    assert_eq!(after.iter().map(|c| c.secret.as_str()).collect::<Vec<_>>(), ["s2"]);
    assert!(!format!("{after:?}").contains("s2"), "Debug must not print secrets");

    store.set_partner_status("court-0405", PartnerStatus::Disabled, now).await.expect("disable");
    assert_eq!(store.get_partner("court-0405").await.expect("get").map(|p| p.status), Some(PartnerStatus::Disabled));
    assert!(matches!(
        store.set_partner_status("nobody", PartnerStatus::Disabled, now).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(store.rotate_partner_secret("nobody", "x", grace, now).await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.list_partners().await.expect("list").len(), 1);
}

async fn the_gateways_partner_lookup_is_kept_and_cleared(store: Store) {
    let now = at(2024, 10, 1, 9, 0);
    store.create_partner("court-0405", PartnerKind::Court, "珠晖区人民法院", "s1", now).await.expect("create");
    let secrets = |store: &Store, when| {
        let store = store.clone();
        async move {
            let signing = store.signing_partner("court-0405").await.expect("lookup").expect("known");
            let secrets: Vec<String> = signing.valid_at(when).map(|c| c.secret.clone()).collect();
            (signing.partner.status, secrets)
        }
    };
    assert_eq!(secrets(&store, now).await, (PartnerStatus::Active, vec!["s1".to_owned()]));
    assert_eq!(store.signing_partner("nobody").await.expect("lookup"), None);

    // A change through this store, or any clone of it, is seen at once.
    let grace = now + TimeDelta::days(7);
    store.clone().rotate_partner_secret("court-0405", "s2", grace, now).await.expect("rotate");
    assert_eq!(secrets(&store, now).await.1, ["s2", "s1"]);
    assert_eq!(secrets(&store, grace + TimeDelta::seconds(1)).await.1, ["s2"], "validity is judged at the time given");

    // Another process's change (here: another store on the same database) is
    // seen once the time to live is over; with none, at once.
    let other = match (store.sqlite_pool(), store.postgres_pool()) {
        (Some(pool), _) => Store::from_sqlite_pool(pool.clone()),
        (_, Some(pool)) => Store::from_postgres_pool(pool.clone()),
        _ => unreachable!("one backend"),
    };
    other.set_partner_status("court-0405", PartnerStatus::Disabled, now).await.expect("disable");
    assert_eq!(secrets(&store, now).await.0, PartnerStatus::Active, "kept for its time to live");
    let uncached = store.clone().with_partner_cache_ttl(std::time::Duration::ZERO);
    assert_eq!(secrets(&uncached, now).await.0, PartnerStatus::Disabled);
    assert_eq!(secrets(&other, now).await.0, PartnerStatus::Disabled);
}

async fn a_savepoint_rolls_back_its_rows_and_its_audit_entries(store: Store) {
    let now = at(2024, 10, 1, 9, 0);
    let mut tx = store.begin().await.expect("begin");
    tx.record(now, "test", "kept", &store::audit::Recorded::AccountReset {}).await.expect("record");
    let savepoint = tx.savepoint("test_point").await.expect("savepoint");
    tx.record(now, "test", "undone", &store::audit::Recorded::AccountReset {}).await.expect("record");
    tx.insert_inbox(now, "court-x", "court_push", "application/xml", b"<A/>").await.expect("inbox");
    tx.rollback_to(savepoint).await.expect("rollback to");
    let kept = tx.savepoint("test_point").await.expect("again");
    tx.insert_inbox(now, "court-x", "court_push", "application/xml", b"<B/>").await.expect("inbox");
    tx.release(kept).await.expect("release");
    tx.commit().await.expect("commit");
    let subjects: Vec<String> = store.recent_audit(10).await.expect("audit").into_iter().map(|e| e.subject).collect();
    assert_eq!(subjects, ["kept"], "the audit entry made after the savepoint went with it");
    assert!(store.verify_audit_chain().await.expect("verify").is_ok());
    let inbox = store::testing::count(&store, "SELECT COUNT(*) FROM inbox", &[]).await.expect("count");
    assert_eq!(inbox, 1, "the payload inserted after the savepoint went with it");
}

async fn inbox_keeps_payload_and_hash(store: Store) {
    let now = at(2024, 10, 1, 9, 0);
    let payload = "<CourtOrder><OrderNo>1</OrderNo></CourtOrder>".as_bytes();
    let mut tx = store.begin().await.expect("begin");
    let id = tx.insert_inbox(now, "court-0405", "court_push", "application/xml", payload).await.expect("insert");
    tx.commit().await.expect("commit");
    let entry = store.get_inbox(id).await.expect("get").expect("present");
    assert_eq!(entry.payload, payload);
    assert_eq!(entry.sha256, store::inbox::sha256_hex(payload));
    assert_eq!(entry.received_at, now);
}

async fn quarantine_lists_and_replays(store: Store) {
    let now = at(2024, 10, 1, 9, 0);
    let mut tx = store.begin().await.expect("begin");
    let bad = NewQuarantine {
        source: "registry",
        position: "cursor=abc row=3",
        reason_code: "bad_identifier",
        reason: "applicant_id_no: check character is 1, expected X",
        payload: b"{\"applicant_id_no\":\"110105194912310021\"}",
    };
    let first = tx.quarantine(&bad, now).await.expect("quarantine");
    let second = tx.quarantine(&NewQuarantine { source: "housing", ..bad.clone() }, now).await.expect("quarantine");
    tx.commit().await.expect("commit");
    assert_eq!(store.list_quarantine(None, true, 100).await.expect("list").len(), 2);
    let registry = store.list_quarantine(Some("registry"), true, 100).await.expect("list");
    assert_eq!(registry.iter().map(|q| q.id).collect::<Vec<_>>(), [first]);
    assert_eq!(registry[0].payload, bad.payload);

    let mut tx = store.begin().await.expect("begin");
    tx.mark_replayed(second, "inserted", now).await.expect("replayed");
    assert!(matches!(tx.mark_replayed(9999, "x", now).await, Err(StoreError::NotFound { .. })));
    tx.commit().await.expect("commit");
    assert_eq!(store.list_quarantine(None, true, 100).await.expect("list").len(), 1);
    let replayed = store.get_quarantine(second).await.expect("get").expect("present");
    assert_eq!(replayed.replay_outcome.as_deref(), Some("inserted"));
}

async fn cursor_moves_only_with_its_batch(store: Store) {
    let now = at(2024, 10, 1, 9, 0);
    assert_eq!(store.connector_state("registry").await.expect("state"), ConnectorState::new("registry"));
    let mut state = ConnectorState::new("registry");
    state.cursor = Some("page-2".into());
    state.status = "ok".into();
    state.records_total = 200;

    let mut tx = store.begin().await.expect("begin");
    tx.save_connector_state(&state, now).await.expect("save");
    assert_eq!(tx.connector_state("registry").await.expect("read in tx").cursor.as_deref(), Some("page-2"));
    drop(tx); // the batch failed: the cursor must not have moved
    assert_eq!(store.connector_state("registry").await.expect("state").cursor, None);

    let mut tx = store.begin().await.expect("begin");
    tx.save_connector_state(&state, now).await.expect("save");
    tx.commit().await.expect("commit");
    assert_eq!(store.connector_state("registry").await.expect("state"), state);
    state.cursor = Some("page-3".into());
    let mut tx = store.begin().await.expect("begin");
    tx.save_connector_state(&state, now).await.expect("save again");
    tx.commit().await.expect("commit");
    assert_eq!(store.all_connector_states().await.expect("all"), vec![state]);
}

async fn audit_chain_verifies_and_is_append_only(store: Store) {
    let now = at(2024, 10, 1, 9, 0);
    for i in 0..5 {
        store
            .append_audit(now + TimeDelta::seconds(i), "cli", "test.action", &format!("subject-{i}"), "{}")
            .await
            .expect("append");
    }
    assert_eq!(store.verify_audit_chain().await.expect("verify"), Ok(5));
    let recent = store.recent_audit(2).await.expect("recent");
    assert_eq!(recent[0].subject, "subject-4");
    assert_eq!(recent[0].prev_hash, recent[1].hash);

    // The database itself refuses edits and deletions.
    let refused = match (store.sqlite_pool(), store.postgres_pool()) {
        (Some(pool), _) => {
            sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE id = 2").execute(pool).await.is_err()
        }
        (_, Some(pool)) => sqlx::query("DELETE FROM audit_log WHERE id = 2").execute(pool).await.is_err(),
        _ => unreachable!("one backend"),
    };
    assert!(refused, "audit_log accepted a change");

    // Tampering behind the triggers' back is detected.
    match (store.sqlite_pool(), store.postgres_pool()) {
        (Some(pool), _) => {
            sqlx::query("DROP TRIGGER audit_log_no_update").execute(pool).await.expect("drop trigger");
            sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE id = 3").execute(pool).await.expect("tamper");
        }
        (_, Some(pool)) => {
            sqlx::query("DROP TRIGGER audit_log_no_update_delete ON audit_log")
                .execute(pool)
                .await
                .expect("drop trigger");
            sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE id = 3").execute(pool).await.expect("tamper");
        }
        _ => unreachable!("one backend"),
    }
    let broken = store.verify_audit_chain().await.expect("verify").expect_err("tampering detected");
    assert_eq!(broken.id, 3);
}

/// Both dialects must describe one logical schema: same tables, same columns.
#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let sqlite = TestDatabase::sqlite().await.expect("sqlite");
    let Some(postgres) = TestDatabase::postgres("sqlite_and_postgres_schemas_match").await.expect("postgres") else {
        sqlite.drop_database().await.expect("drop");
        return;
    };
    let tables = sqlite.store.table_names().await.expect("tables");
    assert_eq!(tables, postgres.store.table_names().await.expect("tables"));
    assert!(tables.len() >= 14, "{tables:?}");
    for table in &tables {
        assert_eq!(
            sqlite.store.column_names(table).await.expect("columns"),
            postgres.store.column_names(table).await.expect("columns"),
            "columns of {table} differ between the dialects"
        );
    }
    // The case columns are listed once (store::cases::CASE_COLUMNS): the list
    // is the table, whatever order the migrations added them in.
    let mut listed: Vec<String> = store::cases::CASE_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    listed.extend(["id".to_owned(), "ingested_at".to_owned()]);
    listed.sort();
    let mut table = sqlite.store.column_names("cases").await.expect("columns");
    table.sort();
    assert_eq!(listed, table, "CASE_COLUMNS and the cases table differ");
    sqlite.drop_database().await.expect("drop");
    postgres.drop_database().await.expect("drop");
}

#[tokio::test]
async fn unsupported_urls_are_refused_with_the_reason() {
    let err = Store::connect("mysql://root@localhost/db").await.expect_err("mysql is not supported");
    assert!(err.to_string().contains("expected sqlite://PATH or postgres://"), "{err}");
}
