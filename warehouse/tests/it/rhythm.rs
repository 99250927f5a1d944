//! Connector lag judged by each feed's own rhythm, learned from the history
//! the poll loop keeps: a quiet feed with successful polls raises nothing, a
//! busy feed that stops raises an alert within its expected gap, and a failed
//! poll alerts at once.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use store::{Store, both_backends};
use warehouse::alerts::{self, AlertRules};

fn china(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    domain::time::from_china(NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(h, min, 0)).expect("time"))
}

async fn lag_follows_each_feeds_rhythm(store: Store) {
    // Monday 2025-01-06.
    let monday = |h, m| china(2025, 1, 6, h, m);
    let mut tx = store.begin().await.expect("begin");
    for week in 1..=4 {
        for day in 0..5 {
            let date =
                NaiveDate::from_ymd_opt(2025, 1, 6).expect("date") - TimeDelta::weeks(week) + TimeDelta::days(day);
            let at = |h| domain::time::from_china(date.and_hms_opt(h, 0, 0).expect("time"));
            // The court platform: two requests a weekday morning.
            tx.add_arrivals("court_platform", &[(at(10), 2)]).await.expect("arrivals");
            // A bank: sixty an hour in office hours.
            let busy: Vec<_> = (9..17).map(|h| (at(h), 60)).collect();
            tx.add_arrivals("bank:icbc", &busy).await.expect("arrivals");
        }
    }
    // Added twice in one hour: counted together.
    tx.add_arrivals("bank:icbc", &[(monday(9, 0), 30)]).await.expect("arrivals");
    tx.add_arrivals("bank:icbc", &[(monday(9, 0), 30)]).await.expect("arrivals");
    for (name, watermark, status) in [
        ("court_platform", china(2025, 1, 3, 10, 0), "ok"),
        ("bank:icbc", monday(14, 0), "ok"),
        ("housing", monday(13, 55), "degraded"),
    ] {
        let mut state = tx.connector_state(name).await.expect("state");
        state.source_watermark = Some(watermark);
        state.status = status.into();
        state.last_error = (status == "degraded").then(|| "partner answered 503".to_owned());
        tx.save_connector_state(&state, monday(14, 0)).await.expect("save");
    }
    tx.commit().await.expect("commit");
    let history = store.arrivals_since("bank:icbc", monday(8, 0)).await.expect("history");
    assert_eq!(history, [(monday(9, 0), 60)]);

    let rules = AlertRules::default();
    let at = |now| {
        let store = store.clone();
        let rules = rules.clone();
        async move {
            let mut subjects: Vec<String> = alerts::connectors_lagging(&store, &rules, now)
                .await
                .expect("lag rule")
                .into_iter()
                .map(|o| format!("{} {}", o.subject, o.severity))
                .collect();
            subjects.sort();
            subjects
        }
    };
    // 14:02: the bank's two quiet minutes are ordinary; the failed poll alerts at once.
    assert_eq!(at(monday(14, 2)).await, ["housing critical"]);
    // 14:10: ten minutes without one of sixty an hour is not.
    assert_eq!(at(monday(14, 10)).await, ["bank:icbc warning", "housing critical"]);
    // Monday evening: the court platform, silent since Friday morning, is quiet by nature.
    let evening = at(monday(19, 0)).await;
    assert!(!evening.iter().any(|s| s.starts_with("court_platform")), "{evening:?}");
}

both_backends!(lag_follows_each_feeds_rhythm);
