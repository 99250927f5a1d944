//! The court push API over real HTTP on both backends: every status and error
//! of the contract, signatures, hostile XML, batches, concurrency, lapses.

use chrono::TimeDelta;
use store::partners::PartnerStatus;

use crate::support::{Order, TestApp, both_backends, reason_code, tag};

both_backends!(
    a_court_releases_and_renews_only_its_own_seizures,
    seize_then_repeat_returns_the_original_receipt_and_reuse_conflicts,
    second_seizure_queues_and_is_promoted_when_the_first_is_released,
    business_refusals_are_422_with_a_reason_code,
    format_errors_are_400_naming_the_field_and_are_quarantined,
    hostile_and_oversized_bodies_are_refused,
    signatures_are_checked_and_rotation_keeps_old_keys_for_the_grace_period,
    partners_over_their_rate_get_429,
    a_batch_answers_each_order_in_order,
    concurrent_seizures_of_one_unit_queue_in_a_consistent_order,
    expired_seizures_read_lapsed_and_the_daily_job_promotes_the_queue,
);

async fn seize_then_repeat_returns_the_original_receipt_and_reuse_conflicts(app: &TestApp) {
    let order = Order::default();
    let (status, first) = app.post(&order.document()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(tag(&first, "Status"), Some("SEIZED"));
    assert_eq!(tag(&first, "OrderNo"), Some("Q2024-0001"));
    assert_eq!(tag(&first, "RecordedAt"), Some("2024-10-08T09:00:00+08:00"));

    // The same order again, later and with different whitespace: the original receipt.
    app.advance(TimeDelta::minutes(3));
    let (status, again) = app.post(&order.document().replace("><", ">\n  <")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first, "a repeated order gets the original receipt, byte for byte");

    // The same number with other content.
    let other = Order { end: "2026-10-07", ..Order::default() };
    let (status, body) = app.post(&other.document()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(tag(&body, "Code"), Some("order_no_reused"));

    let (status, current) = app.get_order("Q2024-0001").await;
    assert_eq!(status, 200, "{current}");
    assert_eq!(tag(&current, "Status"), Some("SEIZED"));
    let (status, _) = app.get_order("Q-NOPE").await;
    assert_eq!(status, 404);

    // Payload, register change and audit entry were all committed.
    let seizures = court_orders::unit_register(&app.store, "430405001002GB00001F00010001", Default::default())
        .await
        .expect("unit");
    assert_eq!(seizures.active().map(|s| s.order_no.as_str()), Some("Q2024-0001"));
    assert_eq!(app.store.verify_audit_chain().await.expect("audit"), Ok(4), "partner, order, repeat, conflict");
}

async fn second_seizure_queues_and_is_promoted_when_the_first_is_released(app: &TestApp) {
    let (status, _) = app.post(&Order::default().document()).await;
    assert_eq!(status, 200);
    let queued =
        Order { order_no: "Q2024-0002", served_at: "2024-10-08T08:45:00+08:00", end: "2025-10-07", ..Order::default() };
    let (status, body) = app.post(&queued.document()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tag(&body, "Status"), Some("QUEUED"));
    assert_eq!(tag(&body, "QueuePosition"), Some("1"));

    app.advance(TimeDelta::days(30));
    let release = Order { order_no: "Q2024-0003", action: "RELEASE", original: "Q2024-0001", ..Order::default() };
    let (status, body) = app.post(&release.document()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tag(&body, "Status"), Some("RELEASED"));

    let (_, promoted) = app.get_order("Q2024-0002").await;
    assert_eq!(tag(&promoted, "Status"), Some("SEIZED"), "{promoted}");
    let (_, released) = app.get_order("Q2024-0001").await;
    assert_eq!(tag(&released, "Status"), Some("RELEASED"));
    let unit = court_orders::unit_register(&app.store, "430405001002GB00001F00010001", Default::default())
        .await
        .expect("unit");
    let active = unit.active().expect("promoted");
    assert_eq!(active.start.to_string(), "2024-11-07", "the promoted period starts on the day of promotion");
}

async fn a_court_releases_and_renews_only_its_own_seizures(app: &TestApp) {
    let (status, _) = app.post(&Order::default().document()).await;
    assert_eq!(status, 200);
    let other_secret = "another-court-secret-0123456789abc";
    app.store
        .create_partner(
            "court-0406",
            domain::PartnerKind::Court,
            "另一法院",
            other_secret,
            crate::support::start_time() - TimeDelta::days(1),
        )
        .await
        .expect("partner");
    app.advance(TimeDelta::days(30));
    // Another court names the first court's order: it is unknown to it, and nothing changes.
    let release = Order { order_no: "O2024-0001", action: "RELEASE", original: "Q2024-0001", ..Order::default() };
    let (status, body) = app.post_as("court-0406", other_secret, &release.document()).await;
    assert_eq!((status, reason_code(&body)), (422, Some("unknown_original_order")), "{body}");
    let renew = Order {
        order_no: "O2024-0002",
        action: "RENEW",
        original: "Q2024-0001",
        end: "2027-12-31",
        ..Order::default()
    };
    let (status, body) = app.post_as("court-0406", other_secret, &renew.document()).await;
    assert_eq!((status, reason_code(&body)), (422, Some("unknown_original_order")), "{body}");
    let (_, still) = app.get_order("Q2024-0001").await;
    assert_eq!(tag(&still, "Status"), Some("SEIZED"), "{still}");
    // Its own court releases it.
    let release = Order { order_no: "Q2024-0003", action: "RELEASE", original: "Q2024-0001", ..Order::default() };
    let (status, body) = app.post(&release.document()).await;
    assert_eq!((status, tag(&body, "Status")), (200, Some("RELEASED")), "{body}");
}

async fn business_refusals_are_422_with_a_reason_code(app: &TestApp) {
    let too_long = Order { end: "2027-10-09", ..Order::default() };
    let (status, body) = app.post(&too_long.document()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(tag(&body, "Status"), Some("REJECTED"));
    assert_eq!(reason_code(&body), Some("period_too_long"));

    // A refused number is not bound: the corrected order is accepted under it.
    let (status, body) = app.post(&Order::default().document()).await;
    assert_eq!(status, 200, "{body}");

    let unknown = Order { order_no: "R-1", action: "RELEASE", original: "NOPE", ..Order::default() };
    let (status, body) = app.post(&unknown.document()).await;
    assert_eq!((status, reason_code(&body)), (422, Some("unknown_original_order")), "{body}");

    let release = Order { order_no: "R-2", action: "RELEASE", original: "Q2024-0001", ..Order::default() };
    assert_eq!(app.post(&release.document()).await.0, 200);
    let again = Order { order_no: "R-3", action: "RELEASE", original: "Q2024-0001", ..Order::default() };
    let (status, body) = app.post(&again.document()).await;
    assert_eq!((status, reason_code(&body)), (422, Some("not_seized")), "{body}");

    let bad_unit = Order { order_no: "U-1", unit_no: "430405001002XB00001F00010001", ..Order::default() };
    let (status, body) = app.post(&bad_unit.document()).await;
    assert_eq!((status, reason_code(&body)), (422, Some("invalid_field")), "{body}");
    assert!(body.contains("UnitNo"), "{body}");
    let bad_case = Order { order_no: "U-2", case_no: "(2024)湘045执1号", ..Order::default() };
    let (status, body) = app.post(&bad_case.document()).await;
    assert_eq!((status, reason_code(&body)), (422, Some("invalid_field")), "{body}");

    // Renewal after expiry.
    let short =
        Order { order_no: "S-1", unit_no: "430405001002GB00001F00010002", end: "2024-12-31", ..Order::default() };
    assert_eq!(app.post(&short.document()).await.0, 200);
    app.advance(TimeDelta::days(90));
    let late = Order {
        order_no: "S-2",
        action: "RENEW",
        unit_no: "430405001002GB00001F00010002",
        original: "S-1",
        start: "2025-01-01",
        end: "2025-12-31",
        ..Order::default()
    };
    let (status, body) = app.post(&late.document()).await;
    assert_eq!(status, 422, "{body}");
    assert!(matches!(reason_code(&body), Some("renewal_after_expiry") | Some("not_seized")), "{body}");
}

async fn format_errors_are_400_naming_the_field_and_are_quarantined(app: &TestApp) {
    let missing = Order::default().document().replace("<Judge>赵法官</Judge>", "");
    let (status, body) = app.post(&missing).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("CourtOrder/Judge"), "{body}");

    let bad_date = Order { end: "2027/10/07", ..Order::default() };
    let (status, body) = app.post(&bad_date.document()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("CourtOrder/EndDate"), "{body}");

    let (status, body) = app.post("<CourtOrder><OrderNo>1</OrderNo>").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(tag(&body, "Code"), Some("malformed_xml"));
    let (status, _) = app.post("<Something/>").await;
    assert_eq!(status, 400);
    let action = Order { action: "SEIZE_ALL", ..Order::default() };
    assert_eq!(app.post(&action.document()).await.0, 400);

    let kept = app.store.list_quarantine(None, true, 100).await.expect("quarantine");
    assert_eq!(kept.len(), 5, "every refused payload is kept for inspection");
    assert!(kept.iter().any(|q| q.reason_code == "missing_field" && q.payload == missing.as_bytes()));
}

async fn hostile_and_oversized_bodies_are_refused(app: &TestApp) {
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE CourtOrder [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><CourtOrder><OrderNo>&b;</OrderNo></CourtOrder>";
    let (status, body) = app.post(bomb).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("DOCTYPE"), "{body}");
    let external = "<CourtOrder><OrderNo>&xxe;</OrderNo></CourtOrder>";
    let (status, body) = app.post(external).await;
    assert_eq!(status, 400, "{body}");

    let huge = format!("<CourtOrder><Judge>{}</Judge></CourtOrder>", "x".repeat(2 * 1024 * 1024 + 10));
    let (status, _) = app.post(&huge).await;
    assert_eq!(status, 413);

    let (status, body) = app.post_signed_with(&Order::default().document(), &app.secret, "application/json").await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(app.store.table_counts().await.expect("counts").cases, 0);
}

async fn signatures_are_checked_and_rotation_keeps_old_keys_for_the_grace_period(app: &TestApp) {
    let body = Order::default().document();
    let (status, msg) = app.post_raw(&body, None, Some("court-0405"), "application/xml").await;
    assert_eq!(status, 401);
    assert!(msg.contains("missing X-Signature"), "{msg}");
    let (status, _) = app.post_signed_with(&body, "wrong-secret", "application/xml").await;
    assert_eq!(status, 401);
    let stale = gateway::court::signature::sign(&app.secret, app.now().timestamp() - 600, body.as_bytes(), false);
    let (status, msg) = app.post_raw(&body, Some(&stale), Some("court-0405"), "application/xml").await;
    assert_eq!(status, 401);
    assert!(msg.contains("five minutes"), "{msg}");
    let good = gateway::court::signature::sign(&app.secret, app.now().timestamp(), body.as_bytes(), false);
    let (status, _) = app.post_raw(&body, Some(&good), Some("court-9999"), "application/xml").await;
    assert_eq!(status, 401, "unknown partner");
    let (status, _) = app.post_raw(&body, Some(&good), None, "application/xml").await;
    assert_eq!(status, 401, "no partner header");
    let sm3 = gateway::court::signature::sign(&app.secret, app.now().timestamp(), body.as_bytes(), true);
    let sm3_only = sm3.split(',').filter(|p| !p.starts_with("v1=")).collect::<Vec<_>>().join(",");
    let (status, _) = app.post_raw(&body, Some(&sm3_only), Some("court-0405"), "application/xml").await;
    assert_eq!(status, 200, "HMAC-SM3 alone is accepted");

    // Rotation: old and new secrets both work for the grace period, then only the new one.
    let now = app.now();
    app.store
        .rotate_partner_secret("court-0405", "new-secret-0123456789abcdef012345", now + TimeDelta::days(1), now)
        .await
        .expect("rotate");
    let next = Order { order_no: "Q-2", unit_no: "430405001002GB00001F00010002", ..Order::default() }.document();
    assert_eq!(app.post_signed_with(&next, &app.secret, "application/xml").await.0, 200, "old key in grace");
    let third = Order { order_no: "Q-3", unit_no: "430405001002GB00001F00010003", ..Order::default() }.document();
    assert_eq!(app.post_signed_with(&third, "new-secret-0123456789abcdef012345", "application/xml").await.0, 200);
    app.advance(TimeDelta::days(2));
    let fourth = Order { order_no: "Q-4", unit_no: "430405001002GB00001F00010004", ..Order::default() }.document();
    assert_eq!(app.post_signed_with(&fourth, &app.secret, "application/xml").await.0, 401, "old key after grace");

    app.store.set_partner_status("court-0405", PartnerStatus::Disabled, app.now()).await.expect("disable");
    let (status, _) = app.post_signed_with(&fourth, "new-secret-0123456789abcdef012345", "application/xml").await;
    assert_eq!(status, 401, "disabled partner");
}

async fn partners_over_their_rate_get_429(app: &TestApp) {
    match (app.store.sqlite_pool(), app.store.postgres_pool()) {
        (Some(pool), _) => {
            sqlx_exec_sqlite(pool).await;
        }
        (_, Some(pool)) => {
            sqlx_exec_postgres(pool).await;
        }
        _ => unreachable!(),
    }
    let mut statuses = Vec::new();
    for i in 0..4 {
        let unit = format!("430405001002GB00001F0001{i:04}");
        let order_no = format!("RL-{i}");
        let doc = Order { order_no: &order_no, unit_no: &unit, ..Order::default() }.document();
        statuses.push(app.post(&doc).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}

async fn sqlx_exec_sqlite(pool: &sqlx::SqlitePool) {
    sqlx::query("UPDATE partners SET rate_limit_per_minute = 3").execute(pool).await.expect("limit");
}

async fn sqlx_exec_postgres(pool: &sqlx::PgPool) {
    sqlx::query("UPDATE partners SET rate_limit_per_minute = 3").execute(pool).await.expect("limit");
}

async fn a_batch_answers_each_order_in_order(app: &TestApp) {
    let good = Order::default().element();
    let queued = Order { order_no: "B-2", served_at: "2024-10-08T08:50:00+08:00", ..Order::default() }.element();
    let bad_unit = Order { order_no: "B-3", unit_no: "43040500100", ..Order::default() }.element();
    let missing = Order { order_no: "B-4", ..Order::default() }.element().replace("<Judge>赵法官</Judge>", "");
    let unknown_release = Order { order_no: "B-5", action: "RELEASE", original: "NOPE", ..Order::default() }.element();
    let body = format!("<CourtOrders>{good}{queued}{bad_unit}{missing}{unknown_release}</CourtOrders>");
    let (status, receipts) = app.post(&body).await;
    assert_eq!(status, 200, "{receipts}");
    let statuses: Vec<&str> = receipts.split("<Receipt>").skip(1).filter_map(|r| tag(r, "Status")).collect();
    assert_eq!(statuses, ["SEIZED", "QUEUED", "REJECTED", "REJECTED", "REJECTED"], "{receipts}");
    assert!(receipts.contains("CourtOrder/Judge"), "{receipts}");

    let too_many = format!("<CourtOrders>{}</CourtOrders>", Order::default().element().repeat(501));
    let (status, body) = app.post(&too_many).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(tag(&body, "Code"), Some("batch_size"));
}

async fn concurrent_seizures_of_one_unit_queue_in_a_consistent_order(app: &TestApp) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let order_no = format!("C-{i:02}");
        let served = format!("2024-10-08T08:{:02}:00+08:00", 10 + i);
        let doc = Order { order_no: &order_no, served_at: &served, ..Order::default() }.document();
        let addr = app.addr;
        let secret = app.secret.clone();
        let now = app.now();
        tasks.push(tokio::spawn(async move {
            let signature = gateway::court::signature::sign(&secret, now.timestamp(), doc.as_bytes(), false);
            let response = reqwest::Client::new()
                .post(format!("http://{addr}/api/court/v1/orders"))
                .header("content-type", "application/xml")
                .header("x-partner-id", "court-0405")
                .header("x-signature", signature)
                .body(doc)
                .send()
                .await
                .expect("send");
            (response.status().as_u16(), response.text().await.expect("body"))
        }));
    }
    let mut seized = 0;
    for task in tasks {
        let (status, body) = task.await.expect("join");
        assert_eq!(status, 200, "{body}");
        if tag(&body, "Status") == Some("SEIZED") {
            seized += 1;
        }
    }
    assert_eq!(seized, 1, "exactly one seizure is active");
    let unit = court_orders::unit_register(&app.store, "430405001002GB00001F00010001", Default::default())
        .await
        .expect("unit");
    assert_eq!(unit.seizures().len(), 16);
    let queue: Vec<&str> = unit.queue().iter().map(|s| s.order_no.as_str()).collect();
    let mut sorted = queue.clone();
    sorted.sort_unstable();
    assert_eq!(queue, sorted, "the queue follows served-at, whatever the arrival order");
    for (i, order_no) in queue.iter().enumerate() {
        let (_, body) = app.get_order(order_no).await;
        assert_eq!(tag(&body, "QueuePosition"), Some((i + 1).to_string().as_str()), "{body}");
    }
}

async fn expired_seizures_read_lapsed_and_the_daily_job_promotes_the_queue(app: &TestApp) {
    let first = Order { end: "2024-12-31", ..Order::default() };
    assert_eq!(app.post(&first.document()).await.0, 200);
    let second =
        Order { order_no: "L-2", served_at: "2024-10-08T08:55:00+08:00", end: "2025-03-31", ..Order::default() };
    let (_, body) = app.post(&second.document()).await;
    assert_eq!(tag(&body, "Status"), Some("QUEUED"));

    app.advance(TimeDelta::days(90)); // 2025-01-06
    let (_, body) = app.get_order("Q2024-0001").await;
    assert_eq!(tag(&body, "Status"), Some("LAPSED"), "{body}");

    let expiring = app
        .store
        .seizures_expiring_within(chrono::NaiveDate::from_ymd_opt(2024, 12, 15).expect("date"), 30)
        .await
        .expect("expiring");
    assert_eq!(expiring.iter().map(|s| s.order_no.as_str()).collect::<Vec<_>>(), ["Q2024-0001"]);

    let today = domain::time::local_date(app.now());
    let report = court_orders::lapse_expired(&app.store, Default::default(), today, app.now()).await.expect("lapse");
    assert_eq!(report.lapsed, ["Q2024-0001"]);
    assert_eq!(report.promoted, ["L-2"]);
    let (_, body) = app.get_order("L-2").await;
    assert_eq!(tag(&body, "Status"), Some("SEIZED"), "{body}");
    let again =
        court_orders::lapse_expired(&app.store, Default::default(), today, app.now()).await.expect("lapse again");
    assert_eq!(again.units, 0, "the job is idempotent");
}
