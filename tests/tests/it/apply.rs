//! Court orders (`court_orders`): a whole group (multi-row statements, `store::court`)
//! gives the outcomes written out by hand from the seizure rules, and exactly
//! what applying the same orders one at a time (each a group of one, the
//! fallback) gives: the same outcomes and receipts, the same register, the
//! same audit entries; and on
//! PostgreSQL a number raced in by a concurrent writer falls back to one
//! order at a time and answers a conflict, losing nothing else.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use court_orders::{Apply, ApplyOutcome, OrderJob, Payload, Receipt};
use domain::PartnerKind;
use domain::court_order::{CourtAction, CourtOrder};
use domain::ident::{CaseNo, UnitNo};
use domain::seizure::SeizureRules;
use store::Store;
use store::testing::TestDatabase;

store::both_backends!(the_group_path_equals_one_order_at_a_time);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 10, 8, 2, 0, 0).single().expect("time")
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 10, 8).expect("date")
}

const UNITS: [&str; 3] =
    ["430405001002GB00001F00010001", "430405001002GB00001F00010002", "430405001002GB00001F00010003"];

fn order(order_no: &str, case: u32, unit: usize, action: CourtAction) -> CourtOrder {
    CourtOrder {
        order_no: order_no.to_owned(),
        court_code: "湘0405".into(),
        court_name: "珠晖区人民法院".into(),
        case_no: CaseNo::parse(&format!("(2024)湘0405执{case}号")).expect("case number"),
        action,
        unit_no: UnitNo::parse(UNITS[unit]).expect("unit number"),
        cert_no: None,
        respondent_name: "王五".into(),
        respondent_id_no: "11010519491231002X".into(),
        ruling_no: format!("(2024)湘0405执{case}号之一"),
        judge: "赵法官".into(),
        served_at: now() - chrono::TimeDelta::hours(i64::from(case % 7)),
    }
}

fn seize(order_no: &str, case: u32, unit: usize) -> CourtOrder {
    let start = today();
    let end = NaiveDate::from_ymd_opt(2027, 10, 7).expect("date");
    order(order_no, case, unit, CourtAction::Seize { start, end })
}

fn release(order_no: &str, case: u32, unit: usize, original: &str) -> CourtOrder {
    order(order_no, case, unit, CourtAction::Release { original_order_no: original.to_owned() })
}

fn render(receipt: &Receipt) -> String {
    format!("{receipt:?}")
}

fn with(rules: SeizureRules) -> Apply<'static> {
    Apply { rules, now: now(), today: today(), render: &render }
}

/// (partner, order, content hash): seizures, queues, a release that promotes,
/// a refused release, a repeat, a reused number, and two partners.
fn scenario() -> Vec<(&'static str, CourtOrder, String)> {
    vec![
        ("court-a", seize("A1", 101, 0), "h-a1".into()),
        ("court-a", seize("A2", 102, 0), "h-a2".into()),
        ("court-a", seize("A3", 103, 1), "h-a3".into()),
        ("court-a", release("A4", 103, 1, "A3"), "h-a4".into()),
        ("court-a", release("A5", 104, 2, "NOPE"), "h-a5".into()),
        ("court-a", seize("A1", 101, 0), "h-a1".into()),
        ("court-a", seize("A2", 109, 0), "h-a2-other".into()),
        ("court-b", seize("B1", 201, 2), "h-b1".into()),
        ("court-b", seize("A1", 202, 2), "h-b-a1".into()),
        ("court-a", release("A6", 101, 0, "A1"), "h-a6".into()),
    ]
}

fn outcome_text(result: &store::StoreResult<ApplyOutcome>) -> String {
    match result {
        Ok(ApplyOutcome::Applied { receipt_text, .. }) => format!("applied {receipt_text}"),
        Ok(ApplyOutcome::Duplicate { receipt_text }) => format!("duplicate {receipt_text}"),
        Ok(ApplyOutcome::Conflict { order_no }) => format!("conflict {order_no}"),
        Ok(ApplyOutcome::Refused { receipt_text, .. }) => format!("refused {receipt_text}"),
        Err(e) => format!("error {e}"),
    }
}

async fn register(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for unit in UNITS {
        let unit = court_orders::unit_register(store, unit, SeizureRules::default()).await.expect("unit");
        out.push(format!("{unit:?}"));
    }
    out
}

async fn audit(store: &Store) -> Vec<(String, String, String, String)> {
    let mut entries: Vec<_> = store
        .recent_audit(1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action.starts_with("court."))
        .map(|e| (e.actor, e.action, e.subject, e.detail))
        .collect();
    entries.reverse();
    entries
}

async fn the_group_path_equals_one_order_at_a_time(group: Store) {
    let each_db = TestDatabase::like(&group).await.expect("second database");
    let each = each_db.store.clone();
    for store in [&group, &each] {
        for partner in ["court-a", "court-b"] {
            store.create_partner(partner, PartnerKind::Court, partner, "secret", now()).await.expect("partner");
        }
    }
    let scenario = scenario();
    let bodies: Vec<Vec<u8>> =
        scenario.iter().map(|(_, o, _)| format!("<CourtOrder>{}</CourtOrder>", o.order_no).into_bytes()).collect();
    let jobs: Vec<OrderJob<'_>> = scenario
        .iter()
        .zip(&bodies)
        .map(|((partner, order, hash), body)| OrderJob {
            partner_id: partner,
            order,
            content_sha256: hash,
            payload: Payload::New { channel: "court_push", content_type: "application/xml", bytes: body },
        })
        .collect();
    let rules = SeizureRules::default();

    let grouped = court_orders::apply(&group, &jobs, with(rules)).await.expect("group");
    // One at a time, in the order a group applies them (by unit, then as sent), in one transaction.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|i| jobs[*i].order.unit_no.as_str());
    let mut tx = each.begin().await.expect("begin");
    let mut one_by_one: Vec<Option<store::StoreResult<ApplyOutcome>>> = (0..jobs.len()).map(|_| None).collect();
    for i in order {
        let mut result = court_orders::apply_in(&mut tx, &jobs[i..=i], with(rules)).await.expect("one");
        one_by_one[i] = result.pop();
    }
    tx.commit().await.expect("commit");
    let one_by_one: Vec<store::StoreResult<ApplyOutcome>> =
        one_by_one.into_iter().map(|r| r.expect("a result")).collect();

    let grouped: Vec<String> = grouped.iter().map(outcome_text).collect();
    let one_by_one: Vec<String> = one_by_one.iter().map(outcome_text).collect();
    assert_eq!(grouped, one_by_one, "the same outcomes and receipts");
    let kinds: Vec<&str> = grouped.iter().map(|t| t.split(' ').next().unwrap_or_default()).collect();
    assert_eq!(
        kinds,
        [
            "applied",
            "applied",
            "applied",
            "applied",
            "refused",
            "duplicate",
            "conflict",
            "applied",
            "applied",
            "applied"
        ],
        "{grouped:#?}"
    );
    // What each order comes to, written out by hand from the seizure rules (not from either path).
    let expected = [
        "status: Seized",         // A1: unit 0 was free
        "status: Queued",         // A2: behind A1 on unit 0
        "status: Seized",         // A3: unit 1 was free
        "status: Released",       // A4: releases A3
        "unknown_original_order", // A5: releases an order that does not exist
        "duplicate",              // A1 again, same content: its first receipt
        "conflict A2",            // A2 again, other content
        "status: Seized",         // B1: unit 2 was free
        "status: Queued",         // court-b's own A1: behind B1 on unit 2
        "status: Released",       // A6: releases A1, which promotes A2
    ];
    for (i, (text, want)) in grouped.iter().zip(expected).enumerate() {
        assert!(text.contains(want), "order {i} ({}): want {want:?}, got {text}", scenario[i].1.order_no);
    }
    let active = |store: Store, unit: &'static str| async move {
        let register = court_orders::unit_register(&store, unit, rules).await.expect("unit");
        register.active().map(|s| s.order_no.clone())
    };
    assert_eq!(active(group.clone(), UNITS[0]).await.as_deref(), Some("A2"), "A2 promoted when A1 was released");
    assert_eq!(active(group.clone(), UNITS[1]).await, None, "A3 released, none queued");
    assert_eq!(active(group.clone(), UNITS[2]).await.as_deref(), Some("B1"));
    assert_eq!(register(&group).await, register(&each).await, "the same register");
    assert_eq!(audit(&group).await, audit(&each).await, "the same audit entries, in the same order");
    // Applied again, everything is a repeat, on either path.
    let again = court_orders::apply(&group, &jobs[..4], with(rules)).await.expect("again");
    assert!(again.iter().all(|r| matches!(r, Ok(ApplyOutcome::Duplicate { .. }))), "{again:?}");
    each_db.drop_database().await.expect("drop");

    // PostgreSQL: another writer takes a number while this group is being
    // applied (other unit, so no unit lock is shared): the group falls back
    // to one order at a time and answers that order with a conflict.
    if group.kind() == store::BackendKind::Postgres {
        let raced = seize("R1", 301, 1);
        let other = seize("R1", 302, 2);
        let mine = seize("R2", 303, 2);
        let mut first = group.begin().await.expect("begin");
        fn job<'a>(order: &'a CourtOrder, hash: &'a str) -> OrderJob<'a> {
            let body = b"<CourtOrder>R1</CourtOrder>".as_slice();
            OrderJob {
                partner_id: "court-a",
                order,
                content_sha256: hash,
                payload: Payload::New { channel: "court_push", content_type: "application/xml", bytes: body },
            }
        }
        let taken = court_orders::apply_in(&mut first, &[job(&raced, "h-r1")], with(rules)).await.expect("first");
        assert!(matches!(taken[0], Ok(ApplyOutcome::Applied { .. })));
        let second = {
            let group = group.clone();
            let (other, mine) = (other.clone(), mine.clone());
            tokio::spawn(async move {
                let jobs = [job(&other, "h-r1-other"), job(&mine, "h-r2")];
                let results = court_orders::apply(&group, &jobs, with(rules)).await.expect("second");
                results.iter().map(outcome_text).collect::<Vec<_>>()
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        first.commit().await.expect("commit first");
        let results = second.await.expect("join");
        assert_eq!(results[0], "conflict R1", "{results:?}");
        assert!(results[1].starts_with("applied"), "the other order of the group stands: {results:?}");
    }
}
