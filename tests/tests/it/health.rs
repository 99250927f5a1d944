//! The service starts on port 0, answers its probes and metrics over HTTP, and shuts down gracefully.

use gateway::{AppState, Application};
use store::testing::TestDatabase;

/// Starts the service on port 0 over `db`, checks both probes, stops it.
async fn service_answers_probes(db: TestDatabase) {
    let app = Application::build("127.0.0.1:0".parse().expect("addr"), AppState::new(db.store.clone()))
        .await
        .expect("bind port 0");
    let addr = app.local_addr().expect("bound address");
    assert_ne!(addr.port(), 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let health = client.get(format!("http://{addr}/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    // Every answer carries a request id (also in the log lines of the request); a caller's plain id is kept.
    let id = health.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(!id.is_empty());
    let again = client.get(format!("http://{addr}/healthz")).send().await.expect("healthz");
    assert_ne!(again.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some(id.as_str()), "ids are unique");
    let traced =
        client.get(format!("http://{addr}/readyz")).header("x-request-id", "proxy-42").send().await.expect("readyz");
    assert_eq!(traced.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("proxy-42"));
    let odd =
        client.get(format!("http://{addr}/readyz")).header("x-request-id", "a b<c>").send().await.expect("readyz");
    assert_ne!(
        odd.headers().get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("a b<c>"),
        "a messy id is replaced"
    );
    let ready: serde_json::Value =
        client.get(format!("http://{addr}/readyz")).send().await.expect("readyz").json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    let missing = client.get(format!("http://{addr}/no-such-page")).send().await.expect("404");
    assert_eq!(missing.status(), 404);
    // Every answered request is counted under its route pattern, with its latency.
    let metrics = client.get(format!("http://{addr}/metrics")).send().await.expect("metrics");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    assert!(text.contains(r#"wangban_http_requests_total{route="/healthz",method="GET",status="200"} 2"#), "{text}");
    assert!(text.contains(r#"wangban_http_requests_total{route="unmatched",method="GET",status="404"} 1"#), "{text}");
    assert!(text.contains(r#"wangban_http_request_duration_seconds_count{route="/readyz",method="GET"} 3"#), "{text}");
    assert!(text.contains("# TYPE wangban_seizures gauge"), "{text}");

    stop.send(()).expect("server still running");
    server.await.expect("join").expect("clean shutdown");
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn service_on_sqlite_answers_probes() {
    service_answers_probes(TestDatabase::sqlite().await.expect("sqlite")).await;
}

#[tokio::test]
async fn service_on_postgres_answers_probes() {
    if let Some(db) = TestDatabase::postgres("service_on_postgres_answers_probes").await.expect("postgres") {
        service_answers_probes(db).await;
    }
}
