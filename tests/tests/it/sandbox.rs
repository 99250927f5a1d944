//! Sandbox partners, over real HTTP on both backends: their orders get every
//! check and real receipts but change only the sandbox register (its own
//! database), never the real register, its audit log or its inbox; the signed
//! report tells each what was wrong: the string it should have signed, the
//! line and column of a format error, the field and rule of an invalid identifier.

use gateway::court::signature::sign;
use store::Store;

use crate::support::{Order, SANDBOX_PARTNER, SANDBOX_SECRET, TestApp, reason_code, tag};

macro_rules! with_sandbox {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = store::testing::TestDatabase::sqlite().await.expect("sqlite");
                    let sandbox = store::testing::TestDatabase::sqlite().await.expect("sqlite sandbox");
                    let app = crate::support::TestApp::start_with_sandbox(db, sandbox).await;
                    super::$name(&app).await;
                    app.finish().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(db) = store::testing::TestDatabase::postgres(stringify!($name)).await.expect("postgres") else { return };
                    let sandbox = store::testing::TestDatabase::postgres("sandbox").await.expect("postgres").expect("sandbox database");
                    let app = crate::support::TestApp::start_with_sandbox(db, sandbox).await;
                    super::$name(&app).await;
                    app.finish().await;
                }
            }
        )*
    };
}

with_sandbox!(sandbox_orders_get_real_receipts_and_never_touch_the_real_register, the_report_names_what_was_wrong);

/// What the real register holds: seizures by state, audit entries, the order's status, the partner's inbox payloads.
async fn footprint(
    store: &Store,
    partner: &str,
    order_no: &str,
    app: &TestApp,
) -> (Vec<(String, i64)>, usize, bool, i64) {
    let seizures = store.seizure_counts().await.expect("counts");
    let audit = store.recent_audit(10_000).await.expect("audit").len();
    let today = domain::time::local_date(app.now());
    let known = court_orders::status(store, partner, order_no, today).await.expect("status").is_some();
    let inbox = store.inbox_count(partner).await.expect("inbox");
    (seizures, audit, known, inbox)
}

async fn sandbox_orders_get_real_receipts_and_never_touch_the_real_register(app: &TestApp) {
    let sandbox = app.sandbox_store().expect("sandbox");
    let order = Order { order_no: "SANDBOX-0001", ..Order::default() };
    let before = footprint(&app.store, SANDBOX_PARTNER, order.order_no, app).await;

    let (status, body) = app.post_as(SANDBOX_PARTNER, SANDBOX_SECRET, &order.document()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tag(&body, "Status"), Some("SEIZED"), "a real receipt: {body}");
    // The same order again is idempotent there as anywhere.
    let (status, again) = app.post_as(SANDBOX_PARTNER, SANDBOX_SECRET, &order.document()).await;
    assert_eq!((status, tag(&again, "RecordedAt")), (200, tag(&body, "RecordedAt")), "{again}");
    // A second seizure on the unit queues behind the first: the rules apply in full.
    let second = Order { order_no: "SANDBOX-0002", case_no: "(2024)湘0405执124号", ..Order::default() };
    let (status, queued) = app.post_as(SANDBOX_PARTNER, SANDBOX_SECRET, &second.document()).await;
    assert_eq!((status, tag(&queued, "Status")), (200, Some("QUEUED")), "{queued}");
    // A release of an unknown order is refused by the rules, with a receipt.
    let release = Order { order_no: "SANDBOX-0003", action: "RELEASE", original: "NOPE", ..Order::default() };
    let (status, refused) = app.post_as(SANDBOX_PARTNER, SANDBOX_SECRET, &release.document()).await;
    assert_eq!((status, reason_code(&refused)), (422, Some("unknown_original_order")), "{refused}");

    // The sandbox register has them; the real one has nothing of them.
    let today = domain::time::local_date(app.now());
    let receipt = court_orders::status(sandbox, SANDBOX_PARTNER, "SANDBOX-0001", today).await.expect("status");
    assert_eq!(receipt.map(|r| r.status.code()), Some("SEIZED"));
    assert!(sandbox.seizure_counts().await.expect("counts").iter().map(|(_, n)| n).sum::<i64>() >= 2);
    assert_eq!(
        footprint(&app.store, SANDBOX_PARTNER, order.order_no, app).await,
        before,
        "the real register is untouched"
    );
    // The payloads were kept, in the sandbox's inbox, never in the real one.
    assert_eq!(before.3, 0);
    assert!(sandbox.inbox_count(SANDBOX_PARTNER).await.expect("inbox") >= 3, "the sandbox keeps its payloads");
    // Its status is read from the sandbox.
    let (status, read) = app.get_as(SANDBOX_PARTNER, SANDBOX_SECRET, "/api/court/v1/orders/SANDBOX-0001").await;
    assert_eq!((status, tag(&read, "Status")), (200, Some("SEIZED")), "{read}");

    // A real partner's order still goes to the real register, and it may not read the sandbox report.
    let (status, real) = app.post(&Order { order_no: "REAL-0001", ..Order::default() }.document()).await;
    assert_eq!((status, tag(&real, "Status")), (200, Some("SEIZED")), "{real}");
    assert!(court_orders::status(sandbox, &app.partner_id, "REAL-0001", today).await.expect("status").is_none());
    let (status, refused) = app.get_as(&app.partner_id, &app.secret, "/api/court/v1/sandbox/report").await;
    assert_eq!((status, tag(&refused, "Code")), (403, Some("not_sandbox")), "{refused}");
}

async fn the_report_names_what_was_wrong(app: &TestApp) {
    // A format error on line 4.
    let malformed = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CourtOrder>\n  <OrderNo>S-1</OrderNo>\n  <CaseNo>(2024)湘0405执1号</Case>\n</CourtOrder>\n";
    let (status, malformed_answer) = app.post_as(SANDBOX_PARTNER, SANDBOX_SECRET, malformed).await;
    assert_eq!((status, tag(&malformed_answer, "Code")), (400, Some("malformed_xml")), "{malformed_answer}");
    assert!(
        tag(&malformed_answer, "Message").is_some_and(|m| m.contains("line 4, column ")),
        "every partner gets the place: {malformed_answer}"
    );
    // An invalid unit number (27 characters).
    let bad_unit = Order { order_no: "S-2", unit_no: "430405001002GB00001F0001000", ..Order::default() };
    let (status, refused_answer) = app.post_as(SANDBOX_PARTNER, SANDBOX_SECRET, &bad_unit.document()).await;
    assert_eq!((status, reason_code(&refused_answer)), (422, Some("invalid_field")), "{refused_answer}");
    // A signature over other bytes than those sent (here: without the XML declaration).
    let order = Order { order_no: "S-3", ..Order::default() };
    let t = app.now().timestamp();
    let wrong = sign(SANDBOX_SECRET, t, order.element().as_bytes(), false);
    let (status, body) = app.post_raw(&order.document(), Some(&wrong), Some(SANDBOX_PARTNER), "application/xml").await;
    assert_eq!(status, 401, "{body}");
    // A good one.
    let (status, _) = app.post_as(SANDBOX_PARTNER, SANDBOX_SECRET, &order.document()).await;
    assert_eq!(status, 200);

    let (status, report) = app.get_as(SANDBOX_PARTNER, SANDBOX_SECRET, "/api/court/v1/sandbox/report?limit=10").await;
    assert_eq!(status, 200, "{report}");
    let requests: Vec<&str> = report.split("<Request ").skip(1).collect();
    assert_eq!(requests.len(), 4, "four requests, newest first: {report}");
    assert!(requests[0].contains("status=\"200\"") && !requests[0].contains("<Problem"), "{}", requests[0]);
    // Newest first: the signature failure names the exact string to sign.
    assert!(requests[1].contains("status=\"401\"") && requests[1].contains("code=\"unauthorized\""), "{}", requests[1]);
    let expected =
        format!("{t}.&lt;?xml version=\"1.0\" encoding=\"UTF-8\"?&gt;\n&lt;CourtOrder&gt;&lt;OrderNo&gt;S-3");
    let expected = expected.replace('"', "&quot;");
    assert!(
        tag(requests[1], "StringToSign").is_some_and(|s| s.starts_with(&expected)),
        "the string to sign starts with {expected}: {}",
        requests[1]
    );
    assert!(requests[2].contains("status=\"422\"") && requests[2].contains("orderNo=\"S-2\""), "{}", requests[2]);
    assert_eq!(tag(requests[2], "Field"), Some("CourtOrder/UnitNo"), "{}", requests[2]);
    assert!(tag(requests[2], "Rule").is_some_and(|r| r.contains("GB/T 37346")), "{}", requests[2]);
    assert!(tag(requests[2], "Message").is_some_and(|m| m.contains("wrong length")), "{}", requests[2]);
    assert!(
        requests[3].contains("line=\"4\" column=\"25\"") && requests[3].contains("code=\"malformed_xml\""),
        "{}",
        requests[3]
    );

    // The report and the answers are documents of the published XSD (checked with lxml, not our code).
    if crate::simulator_contracts::contract_tools() {
        let dir =
            std::env::temp_dir().join(format!("wangban-sandbox-report-{}-{}", std::process::id(), app.addr.port()));
        let folder = dir.join("court-push");
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::write(folder.join("report.xml"), &report).expect("write");
        std::fs::write(folder.join("error.xml"), &malformed_answer).expect("write");
        std::fs::write(folder.join("refused.xml"), &refused_answer).expect("write");
        let validated = crate::simulator_contracts::validate_folder(&dir);
        assert!(validated.contains("court-push/report.xml validates"), "{validated}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    // The administrators' page would show the same log: it is the sandbox store's.
    let logged = app.sandbox_store().expect("sandbox").recent_sandbox_requests(10).await.expect("log");
    assert_eq!(logged.len(), 4);
    assert!(app.store.recent_sandbox_requests(10).await.expect("real log").is_empty(), "nothing in the real store");
}
