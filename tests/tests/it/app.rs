//! The whole system as `wangban serve` starts it (`wangban::App`), on port 0:
//! the court gateway, the dashboards and the KPI API answer from one address,
//! on both backends. Every other end-to-end test of this crate runs on the
//! same `App` (see `support::TestApp`).

use crate::support::{Order, TestApp, both_backends};

both_backends!(one_app_serves_the_gateway_the_dashboards_and_the_kpi_api);

async fn one_app_serves_the_gateway_the_dashboards_and_the_kpi_api(app: &TestApp) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let base = format!("http://{}", app.addr);
    let ready: serde_json::Value =
        client.get(format!("{base}/readyz")).send().await.expect("readyz").json().await.expect("json");
    assert_eq!(ready["status"], "ready", "{ready}");
    // The court gateway.
    let (status, receipt) = app.post(&Order::default().document()).await;
    assert_eq!(status, 200, "{receipt}");
    assert!(receipt.contains("SEIZED"), "{receipt}");
    // The dashboards: the login page, and a page that sends a visitor there.
    let login = client.get(format!("{base}/login")).send().await.expect("login");
    assert_eq!(login.status(), 200);
    assert!(login.text().await.expect("text").contains("<form"), "a login form");
    let overview = client.get(format!("{base}/")).send().await.expect("overview");
    assert_eq!(overview.status(), 303, "the overview asks for a login first");
    // The KPI API: the definitions, and a clear 503 before the first warehouse refresh.
    let list: serde_json::Value =
        client.get(format!("{base}/api/kpi")).send().await.expect("kpi").json().await.expect("json");
    assert!(list["definitions"].as_array().is_some_and(|d| d.len() == 10), "{list}");
    let figures =
        client.get(format!("{base}/api/kpi/online-rate?from=2024-01-01&to=2024-12-31")).send().await.expect("kpi");
    assert_eq!(figures.status(), 503);
    let body = figures.text().await.expect("text");
    assert!(body.contains("warehouse refresh"), "says how to make a snapshot: {body}");
}
