//! Alert states across evaluations, and webhook deliveries as an outbox.

use store::alerts::Observation;
use store::{Store, both_backends};

use crate::support::at;

both_backends!(alerts_fire_continue_and_resolve, deliveries_are_pending_until_acknowledged);

fn lag(connector: &str, hours: f64) -> Observation {
    Observation {
        kind: "connector_lag".into(),
        subject: connector.into(),
        severity: "warning".into(),
        summary: format!("连接器 {connector} 数据滞后 {hours} 小时"),
        value: hours,
        threshold: 24.0,
    }
}

fn rate() -> Observation {
    Observation {
        kind: "online_rate_below_trajectory".into(),
        subject: String::new(),
        severity: "critical".into(),
        summary: "2026-10 网办率 80.0%".into(),
        value: 0.8,
        threshold: 0.86,
    }
}

async fn alerts_fire_continue_and_resolve(store: Store) {
    let t0 = at(2026, 11, 1, 9, 0);
    let kinds = ["online_rate_below_trajectory", "connector_lag"];
    let changes =
        store.record_alert_evaluation(&kinds, &[rate(), lag("bank-icbc", 30.0)], Some("s1"), t0).await.expect("eval");
    assert_eq!(changes.fired.len(), 2);
    assert_eq!(changes.continuing, 0);

    // Still firing an hour later with a new value: `since` stays, the value moves.
    let t1 = at(2026, 11, 1, 10, 0);
    let changes =
        store.record_alert_evaluation(&kinds, &[rate(), lag("bank-icbc", 31.0)], Some("s2"), t1).await.expect("eval");
    assert!(changes.fired.is_empty());
    assert_eq!(changes.continuing, 2);
    let alerts = store.alerts().await.expect("list");
    let bank = alerts.iter().find(|a| a.subject == "bank-icbc").expect("bank alert");
    assert_eq!((bank.since, bank.value, bank.snapshot_id.as_deref()), (t0, 31.0, Some("s2")));

    // A rule not evaluated this time (no snapshot) keeps its state; one evaluated and not seen resolves.
    let t2 = at(2026, 11, 1, 11, 0);
    let changes = store.record_alert_evaluation(&["connector_lag"], &[], None, t2).await.expect("eval");
    assert_eq!(changes.resolved, [("connector_lag".to_owned(), "bank-icbc".to_owned())]);
    let alerts = store.alerts().await.expect("list");
    assert_eq!(alerts.len(), 2);
    assert!(alerts[0].is_firing() && alerts[0].kind == "online_rate_below_trajectory", "firing first: {alerts:?}");
    assert_eq!((alerts[1].state.as_str(), alerts[1].since), ("resolved", t2));

    // Firing again starts a new `since`.
    let t3 = at(2026, 11, 2, 9, 0);
    let changes =
        store.record_alert_evaluation(&kinds, &[rate(), lag("bank-icbc", 40.0)], Some("s3"), t3).await.expect("eval");
    assert_eq!(changes.fired, [("connector_lag".to_owned(), "bank-icbc".to_owned())]);
    let alerts = store.alerts().await.expect("list");
    let bank = alerts.iter().find(|a| a.subject == "bank-icbc").expect("bank alert");
    assert_eq!((bank.state.as_str(), bank.since), ("firing", t3));
}

async fn deliveries_are_pending_until_acknowledged(store: Store) {
    let kinds = ["connector_lag"];
    let t0 = at(2026, 11, 1, 9, 0);
    store.record_alert_evaluation(&kinds, &[lag("housing", 30.0)], None, t0).await.expect("eval");
    let pending = store.pending_alert_notifications().await.expect("pending");
    assert_eq!(pending.len(), 1);

    // A failed delivery leaves it pending, with the error and the attempt counted.
    store.record_alert_delivery(&pending, Some("connection refused"), t0).await.expect("failed");
    let again = store.pending_alert_notifications().await.expect("pending");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].attempts, again[0].last_error.as_deref()), (1, Some("connection refused")));

    store.record_alert_delivery(&again, None, t0).await.expect("sent");
    assert!(store.pending_alert_notifications().await.expect("pending").is_empty(), "sent once");
    // Still firing: nothing new to say.
    store.record_alert_evaluation(&kinds, &[lag("housing", 35.0)], None, at(2026, 11, 1, 10, 0)).await.expect("eval");
    assert!(store.pending_alert_notifications().await.expect("pending").is_empty());

    // Resolved: pending again, as a resolution.
    store.record_alert_evaluation(&kinds, &[], None, at(2026, 11, 1, 11, 0)).await.expect("eval");
    let resolved = store.pending_alert_notifications().await.expect("pending");
    assert_eq!(resolved.iter().map(|a| a.state.as_str()).collect::<Vec<_>>(), ["resolved"]);
    store.record_alert_delivery(&resolved, None, t0).await.expect("sent");
    assert!(store.pending_alert_notifications().await.expect("pending").is_empty());

    // Fired and resolved between two deliveries: nothing worth sending.
    store
        .record_alert_evaluation(&kinds, &[lag("court_platform", 30.0)], None, at(2026, 11, 2, 9, 0))
        .await
        .expect("eval");
    store.record_alert_evaluation(&kinds, &[], None, at(2026, 11, 2, 10, 0)).await.expect("eval");
    assert!(store.pending_alert_notifications().await.expect("pending").is_empty());
}
