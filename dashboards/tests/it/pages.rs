//! Router tests: every page under every role, sessions, lockout, downloads, SQL.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use dashboards::auth::{Page, Role, hash_password};
use dashboards::{CSP, Dashboards};
use simulator::caseflow::{FlowParams, generate};
use store::{Store, both_backends};
use tower::ServiceExt;
use warehouse::console::Limits;
use warehouse::export::{RefreshOptions, refresh};

pub(crate) struct Env {
    pub(crate) app: Router,
    pub(crate) dashboards: Dashboards,
    pub(crate) store: Store,
    now: Arc<Mutex<DateTime<Utc>>>,
    pub(crate) dir: PathBuf,
}

impl Env {
    fn advance(&self, by: TimeDelta) {
        let mut now = self.now.lock().expect("clock");
        *now += by;
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The self-service terminal the test operator works at.
const OPERATOR_TERMINAL: &str = "ZZ03";

pub(crate) fn password(role: Role) -> String {
    format!("password-of-{}", role.code())
}

/// One simulated year (2024, small).
fn test_flow() -> simulator::caseflow::Flow {
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 3);
    params.yearly_volume = 3000;
    generate(&params)
}

/// A store with one simulated year (2024, small), its warehouse, and one account per role.
pub(crate) async fn env(store: Store, name: &str) -> Env {
    let flow = test_flow();
    let now = Utc.with_ymd_and_hms(2025, 1, 10, 2, 0, 0).single().expect("time");
    // The flow as the registry's feed shows it, read by the registry connector's decoders.
    use connectors::registry::{parse_case, parse_evaluation, parse_qc_finding};
    use simulator::servers::registry::{case_json, evaluation_json, qc_json};
    let cases: Vec<_> =
        flow.cases.iter().map(|c| parse_case(&case_json(c, c.source_updated_at)).expect("a case decodes").0).collect();
    let qc: Vec<_> =
        flow.qc_findings.iter().map(|q| parse_qc_finding(&qc_json(q)).expect("a finding decodes").0).collect();
    let evaluations: Vec<_> = flow
        .evaluations
        .iter()
        .map(|e| parse_evaluation(&evaluation_json(e)).expect("an evaluation decodes").0)
        .collect();
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_cases(&cases, now).await.expect("cases");
    tx.upsert_qc_findings(&qc, now).await.expect("qc");
    tx.upsert_evaluations(&evaluations, now).await.expect("evaluations");
    tx.commit().await.expect("commit");
    let dir = std::env::temp_dir().join(format!(
        "wangban_test_dash_{name}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ));
    let options = RefreshOptions {
        now,
        key: b"test-key".to_vec(),
        calendar: domain::Calendar::builtin(),
        catalogue: domain::Catalogue::builtin(),
        full: true,
    };
    refresh(&store, &dir, &options).await.expect("refresh");
    for role in Role::ALL {
        let hash = hash_password(&password(role)).expect("hash");
        let section = match role {
            Role::Staff => Some("online_approval"),
            Role::Operator => Some(OPERATOR_TERMINAL),
            _ => None,
        };
        store.create_account(role.code(), role.code(), section, &hash, now).await.expect("account");
    }
    let clock = Arc::new(Mutex::new(now));
    let read = clock.clone();
    let dashboards = Dashboards {
        store: store.clone(),
        kpis: warehouse::kpi::KpiService::new(dir.clone(), 256 * 1024 * 1024),
        sql_limits: Limits { max_rows: 1000, timeout: std::time::Duration::from_secs(20), memory_bytes: 256 << 20 },
        secure_cookies: false,
        clock: Arc::new(move || *read.lock().expect("clock")),
        sandbox: None,
        reports: dashboards::report::Archive::new(dir.join("reports")),
    };
    Env { app: dashboards::router(dashboards.clone()), dashboards, store, now: clock, dir }
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: String,
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("answer");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.expect("body");
    Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

pub(crate) async fn get(app: &Router, path: &str, cookie: Option<&str>) -> Answer {
    let mut request = Request::get(path);
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    send(app, request.body(Body::empty()).expect("request")).await
}

/// `GET path` without a session, its body as JSON (asserting 200).
pub(crate) async fn get_json(app: &Router, path: &str) -> serde_json::Value {
    let answer = get(app, path, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
    serde_json::from_str(&answer.body).expect("json")
}

async fn post_form(app: &Router, path: &str, cookie: Option<&str>, form: &str) -> Answer {
    let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    send(app, request.body(Body::from(form.to_owned())).expect("request")).await
}

/// Logs in; the answer and the session cookie (`name=value`) if one was set.
pub(crate) async fn login(app: &Router, name: &str, password: &str) -> (Answer, Option<String>) {
    let answer = post_form(app, "/login", None, &format!("username={name}&password={password}")).await;
    let cookie = answer
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .filter(|c| c.len() > "wangban_session=".len())
        .map(str::to_owned);
    (answer, cookie)
}

async fn every_page_answers_each_role_as_the_access_table_says(store: Store) {
    let env = env(store, "roles").await;
    for page in Page::ALL {
        let anonymous = get(&env.app, page.path(), None).await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER, "{page:?} without a session");
        let location = anonymous.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(location.starts_with("/login?next="), "{location}");
    }
    for role in Role::ALL {
        let (answer, cookie) = login(&env.app, role.code(), &password(role)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{role:?} logs in: {}", answer.body);
        let cookie = cookie.expect("session cookie");
        let set = answer.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        for page in Page::ALL {
            let answer = get(&env.app, page.path(), Some(&cookie)).await;
            assert_eq!(answer.headers.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()), Some(CSP));
            assert!(!answer.body.contains("<script"), "no script on {page:?}");
            assert!(!answer.body.contains("style="), "no inline style on {page:?} (the CSP forbids it)");
            if page.allows(role) {
                assert_eq!(answer.status, StatusCode::OK, "{role:?} on {page:?}: {}", answer.body);
                assert!(answer.body.contains(page.title().0), "{role:?} on {page:?} shows its title");
                let content = if page == Page::Sql { "<textarea" } else { "<table" };
                assert!(answer.body.contains(content), "{role:?} on {page:?} has data: {}", answer.body);
                assert!(answer.body.len() < 200 * 1024, "{page:?} weighs {} bytes", answer.body.len());
            } else {
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{role:?} on {page:?}");
                assert!(answer.body.contains("无权"), "a 403 says why");
            }
        }
    }
    // Administrators see the accounts (never a password hash) and partners on the audit page.
    let (_, admin) = login(&env.app, "admin", &password(Role::Admin)).await;
    let page = get(&env.app, "/audit", admin.as_deref()).await;
    assert!(page.body.contains("wangban user add") && page.body.contains(">operator<"), "{}", page.body);
    assert!(!page.body.contains("$argon2"), "no password hash on the page");
    // Case lists are audited with who looked.
    let (_, qc) = login(&env.app, "qc", &password(Role::Qc)).await;
    let list = get(&env.app, "/qc/cases?category=QC01", qc.as_deref()).await;
    assert_eq!(list.status, StatusCode::OK);
    let audit = env.store.recent_audit(50).await.expect("audit");
    assert!(audit.iter().any(|e| e.actor == "qc" && e.action == "dashboard.case_list"));
    assert!(audit.iter().any(|e| e.action == "session.login"));
}

async fn overview_figures_downloads_and_bad_filters(store: Store) {
    let env = env(store, "overview").await;
    let (_, cookie) = login(&env.app, "leadership", &password(Role::Leadership)).await;
    let cookie = cookie.expect("cookie");
    let page = get(&env.app, "/?from=2024-01-01&to=2024-12-31", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    for text in ["网办率", "全程网办率", "按时办结率", "<svg", "90.0%", "第1期"] {
        assert!(page.body.contains(text), "overview shows {text}");
    }
    let csv = get(&env.app, "/?from=2024-01-01&to=2024-12-31&download=monthly", Some(&cookie)).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").starts_with("text/csv"));
    // Phase one went live on 2024-04-26: the months before are out of scope.
    assert_eq!(csv.body.lines().count(), 10, "a header and April to December:\n{}", csv.body);
    let xlsx = get(&env.app, "/?from=2024-01-01&to=2024-12-31&download=monthly&format=xlsx", Some(&cookie)).await;
    assert_eq!(xlsx.status, StatusCode::OK);
    assert!(xlsx.body.starts_with("PK"), "an xlsx file is a zip archive");
    let filtered = get(&env.app, "/?from=2024-01-01&to=2024-12-31&channel=4&download=by_type", Some(&cookie)).await;
    let rows: Vec<&str> = filtered.body.lines().skip(1).collect();
    // A check over every row holds vacuously over none: the download must have rows.
    assert!(!rows.is_empty(), "the by-type download has rows: {}", filtered.body);
    assert!(rows.iter().all(|l| l.ends_with(",0.0%") || l.ends_with(",—")), "counter only: {}", filtered.body);
    let bad = get(&env.app, "/?from=yesterday", Some(&cookie)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("yesterday"));
    let injected = get(&env.app, "/?district=1%27%20OR%201=1", Some(&cookie)).await;
    assert_eq!(injected.status, StatusCode::BAD_REQUEST);
    let missing = get(&env.app, "/?download=nope", Some(&cookie)).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let english = get(&env.app, "/?lang=en", Some(&cookie)).await;
    assert!(english.body.contains("Online rate") && english.body.contains(r#"lang="en""#));

    // Firing alerts show as a banner: what leadership acts on on the overview,
    // operational ones (a connector's lag) on the connectors page only.
    assert!(!page.body.contains("role=\"alert\""), "no banner while nothing fires");
    let lagging = store::alerts::Observation {
        kind: warehouse::alerts::CONNECTOR_LAG.into(),
        subject: "housing".into(),
        severity: "critical".into(),
        summary: "连接器 housing 数据滞后 50.0 小时".into(),
        value: 50.0,
        threshold: 24.0,
    };
    let now = *env.now.lock().expect("clock");
    env.store
        .record_alert_evaluation(&[warehouse::alerts::CONNECTOR_LAG], &[lagging], None, now)
        .await
        .expect("record alert");
    let page = get(&env.app, "/?from=2024-01-01&to=2024-12-31", Some(&cookie)).await;
    assert!(!page.body.contains("连接器滞后"), "the overview leads with what leadership acts on, not connector lag");
    let seizures = get(&env.app, "/seizures", Some(&cookie)).await;
    assert_eq!(seizures.status, StatusCode::OK);
    assert!(!seizures.body.contains("滞后 50.0 小时"), "the seizure page shows only seizure alerts");
    let connectors = get(&env.app, "/connectors", Some(&cookie)).await;
    assert!(connectors.body.contains("滞后 50.0 小时"), "the connectors page shows connector alerts");
    assert!(connectors.body.contains("按月对账一致"), "every month reconciles: {}", connectors.body);
    assert!(connectors.body.contains("id=\"case_reconciliation\"") || connectors.body.contains("case_reconciliation"));
}

async fn lockout_idle_timeout_logout_and_disabled_accounts(store: Store) {
    let env = env(store, "sessions").await;
    for _ in 0..dashboards::auth::MAX_FAILURES {
        let (answer, cookie) = login(&env.app, "qc", "wrong password!").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(cookie.is_none());
    }
    let (locked, _) = login(&env.app, "qc", &password(Role::Qc)).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "locked after repeated failures");
    env.advance(dashboards::auth::LOCKOUT + TimeDelta::seconds(1));
    let (answer, cookie) = login(&env.app, "qc", &password(Role::Qc)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let cookie = cookie.expect("cookie");
    assert_eq!(get(&env.app, "/qc", Some(&cookie)).await.status, StatusCode::OK);
    env.advance(TimeDelta::minutes(14));
    assert_eq!(get(&env.app, "/qc", Some(&cookie)).await.status, StatusCode::OK, "activity keeps it alive");
    env.advance(TimeDelta::minutes(16));
    assert_eq!(get(&env.app, "/qc", Some(&cookie)).await.status, StatusCode::SEE_OTHER, "idle for 16 minutes");
    let (_, cookie) = login(&env.app, "qc", &password(Role::Qc)).await;
    let cookie = cookie.expect("cookie");
    let out = post_form(&env.app, "/logout", Some(&cookie), "").await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(get(&env.app, "/qc", Some(&cookie)).await.status, StatusCode::SEE_OTHER, "logged out");
    let (_, cookie) = login(&env.app, "qc", &password(Role::Qc)).await;
    let cookie = cookie.expect("cookie");
    let now = *env.now.lock().expect("clock");
    env.store.set_account_disabled("qc", true, now).await.expect("disable");
    assert_eq!(get(&env.app, "/qc", Some(&cookie)).await.status, StatusCode::SEE_OTHER, "disabling ends sessions");
    let (answer, _) = login(&env.app, "qc", &password(Role::Qc)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let (unknown, _) = login(&env.app, "nobody", "whatever-password").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains("用户名或密码错误"), "same message for unknown names");
}

async fn sql_api_and_console_are_read_only_role_bound_and_audited(store: Store) {
    let env = env(store, "sql").await;
    let (_, qc) = login(&env.app, "qc", &password(Role::Qc)).await;
    let qc = qc.expect("cookie");
    let (_, leader) = login(&env.app, "leadership", &password(Role::Leadership)).await;
    let leader = leader.expect("cookie");
    let api = |cookie: Option<String>, accept: &'static str, sql: &str| {
        let mut request = Request::post("/api/sql").header(header::ACCEPT, accept);
        if let Some(c) = cookie {
            request = request.header(header::COOKIE, c);
        }
        request.body(Body::from(serde_json::json!({ "sql": sql }).to_string())).expect("request")
    };
    let count = "SELECT COUNT(*) AS n FROM cases";
    let answer = send(&env.app, api(Some(qc.clone()), "application/json", count)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let rows: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    assert!(rows[0]["n"].as_i64().unwrap_or(0) > 2000, "{rows}");
    let csv = send(&env.app, api(Some(qc.clone()), "text/csv", count)).await;
    assert!(csv.body.starts_with("n\n"), "{}", csv.body);
    assert_eq!(send(&env.app, api(None, "application/json", count)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&env.app, api(Some(leader), "application/json", count)).await.status, StatusCode::FORBIDDEN);
    let refused = send(&env.app, api(Some(qc.clone()), "application/json", "DROP TABLE cases")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let form = post_form(
        &env.app,
        "/sql",
        Some(&qc),
        "sql=SELECT+business_type%2C+COUNT(*)+AS+n+FROM+cases+GROUP+BY+business_type&format=html",
    )
    .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<td>mortgage</td>"), "{}", form.body);
    let explain = post_form(&env.app, "/sql", Some(&qc), "sql=EXPLAIN+SELECT+1&format=html").await;
    assert_eq!(explain.status, StatusCode::OK);
    let audit = env.store.recent_audit(50).await.expect("audit");
    let queries = audit.iter().filter(|e| e.action == "warehouse.sql" && e.actor == "qc").count();
    assert_eq!(queries, 5, "every query, refused ones too, is audited");
}

both_backends!(
    every_page_answers_each_role_as_the_access_table_says,
    overview_figures_downloads_and_bad_filters,
    lockout_idle_timeout_logout_and_disabled_accounts,
    sql_api_and_console_are_read_only_role_bound_and_audited,
    an_operator_sees_only_the_cases_they_handled,
    administrators_replay_quarantined_records,
    figures_drill_down_to_the_cases_behind_them,
    a_warm_up_computes_what_the_pages_ask_for,
    the_gap_analysis_agrees_with_the_kpi_and_adds_up,
);

/// `GET /api/kpi/online-rate/gap`: its counts are the KPI API's for the same
/// month, its segments add up to the whole, its shift-share parts to the
/// change; the overview shows it; bad months are 400s that say why.
async fn the_gap_analysis_agrees_with_the_kpi_and_adds_up(store: Store) {
    let env = env(store, "gap").await;
    let json = |a: Answer| -> serde_json::Value { serde_json::from_str(&a.body).expect("json") };
    let gap = get(&env.app, "/api/kpi/online-rate/gap?month=2024-12", None).await;
    assert_eq!(gap.status, StatusCode::OK, "{}", gap.body);
    let gap = json(gap);
    let kpi = json(get(&env.app, "/api/kpi/online-rate?from=2024-12-01&to=2024-12-31", None).await);
    assert_eq!(gap["snapshot_id"], kpi["snapshot_id"]);
    let (n, d) = (kpi["rows"][0]["numerator"].as_i64().expect("n"), kpi["rows"][0]["denominator"].as_i64().expect("d"));
    assert_eq!((gap["current"]["numerator"].as_i64(), gap["current"]["denominator"].as_i64()), (Some(n), Some(d)));
    let needed = ((0.9 * d as f64) - n as f64).ceil().max(0.0) as i64;
    assert_eq!(gap["needed"].as_i64(), Some(needed));
    let dims = gap["by"].as_array().expect("by");
    assert_eq!(dims.len(), 4, "type, district, channel, applicant kind");
    for dim in dims {
        let segments = dim["segments"].as_array().expect("segments");
        let sum = |key: &str, part: &str| segments.iter().map(|s| s[key][part].as_i64().unwrap_or(0)).sum::<i64>();
        assert_eq!((sum("current", "numerator"), sum("current", "denominator")), (n, d), "{}", dim["dimension"]);
        let share = &dim["shift_share"];
        let change = share["change_micro"].as_i64().expect("change");
        assert_eq!(
            share["rate_effect_micro"].as_i64().unwrap_or(0) + share["mix_effect_micro"].as_i64().unwrap_or(0),
            change
        );
        let parts: i64 = segments
            .iter()
            .map(|s| s["rate_effect_micro"].as_i64().unwrap_or(0) + s["mix_effect_micro"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(parts, change, "{}", dim["dimension"]);
    }
    let rate = |v: &serde_json::Value| v["rate"].as_f64().unwrap_or(0.0);
    let shown = (rate(&gap["current"]) * 1e6).round() as i64 - (rate(&gap["previous"]) * 1e6).round() as i64;
    assert_eq!(dims[0]["shift_share"]["change_micro"].as_i64(), Some(shown), "the change of the rates as shown");
    assert!(gap["projection"]["status"].is_string(), "{}", gap["projection"]);

    for (query, says) in [
        ("month=2024-13", "2024-13"),
        ("", "month is required"),
        ("month=2023-06", "before the plan"),
        ("month=2024-02", "no cases in scope"),
    ] {
        let bad = get(&env.app, &format!("/api/kpi/online-rate/gap?{query}"), None).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}: {}", bad.body);
        assert!(bad.body.contains(says), "{query}: {}", bad.body);
    }

    let (_, cookie) = login(&env.app, "leadership", &password(Role::Leadership)).await;
    let page = get(&env.app, "/?from=2024-01-01&to=2024-12-31", cookie.as_deref()).await;
    assert!(page.body.contains("差距分析") && page.body.contains("结构效应"), "the overview shows the gap");
    let csv = get(&env.app, "/?from=2024-01-01&to=2024-12-31&download=gap", cookie.as_deref()).await;
    assert_eq!(csv.status, StatusCode::OK);
    let segments: usize = dims.iter().map(|d| d["segments"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(csv.body.lines().count(), 1 + segments, "a header and every segment");
}

async fn a_warm_up_computes_what_the_pages_ask_for(store: Store) {
    let env = env(store, "warm").await;
    let (snapshot, warmed) = env.dashboards.warm().await.expect("warm");
    assert!(!snapshot.is_empty());
    assert_eq!(
        warmed,
        15 + 12 + 5,
        "every KPI of the default pages, the online rate of each of the 12 months, and the 5 of the gap analysis"
    );
    let (_, leader) = login(&env.app, "leadership", &password(Role::Leadership)).await;
    for path in ["/", "/types", "/qc", "/seizures", "/connectors"] {
        assert_eq!(get(&env.app, path, leader.as_deref()).await.status, StatusCode::OK, "{path}");
    }
    let (_, after) = env.dashboards.warm().await.expect("warm again");
    assert_eq!(after, warmed, "the default pages asked for nothing the warm-up had not computed");
    // A filtered view is computed on demand and kept.
    get(&env.app, "/?district=430405", leader.as_deref()).await;
    assert!(env.dashboards.warm().await.expect("warm").1 > warmed);
}

async fn figures_drill_down_to_the_cases_behind_them(store: Store) {
    let env = env(store, "drill").await;
    let (_, qc) = login(&env.app, "qc", &password(Role::Qc)).await;
    let (_, leader) = login(&env.app, "leadership", &password(Role::Leadership)).await;
    let (_, staff) = login(&env.app, "staff", &password(Role::Staff)).await;
    // Overview points and bars open case lists for those who may see them.
    let overview = get(&env.app, "/", qc.as_deref()).await;
    assert!(overview.body.contains("href=\"/cases?"), "qc's overview drills to cases");
    let types = get(&env.app, "/types", qc.as_deref()).await;
    assert!(types.body.contains("href=\"/cases?"), "qc's types page drills to cases");
    let overview = get(&env.app, "/", leader.as_deref()).await;
    assert!(!overview.body.contains("/cases?"), "leadership sees no named case lists");
    let types = get(&env.app, "/types", leader.as_deref()).await;
    assert!(!types.body.contains("/cases?"), "nor on the types page");
    assert_eq!(get(&env.app, "/cases", leader.as_deref()).await.status, StatusCode::FORBIDDEN);

    // One month of one type: every case of the store behind it, no other.
    let list = get(&env.app, "/cases?month=2024-06&business_type=mortgage&download=cases", qc.as_deref()).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let from = Utc.with_ymd_and_hms(2024, 5, 31, 16, 0, 0).single().expect("time");
    let to = Utc.with_ymd_and_hms(2024, 6, 30, 16, 0, 0).single().expect("time");
    let expected: Vec<_> = env
        .store
        .cases_submitted_between(from, to)
        .await
        .expect("cases")
        .into_iter()
        .filter(|c| c.record.business_type() == domain::BusinessType::Mortgage)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(list.body.lines().count(), expected.len() + 1, "{}", list.body);
    assert!(expected.iter().all(|c| list.body.contains(&c.record.case_no)));
    assert!(expected.iter().all(|c| !list.body.contains(&c.record.applicant_id_no)), "identities are masked");

    // Staff of the online approval section: only cases at their step.
    let mine = get(&env.app, "/cases?download=cases", staff.as_deref()).await;
    assert_eq!(mine.status, StatusCode::OK);
    let statuses: std::collections::BTreeSet<&str> =
        mine.body.lines().skip(1).filter_map(|l| l.split(',').nth(4)).collect();
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|s| ["已申请", "已受理", "补正中", "已核定"].contains(s)), "{statuses:?}");
    let all = get(&env.app, "/cases?download=cases", qc.as_deref()).await;
    assert!(all.body.lines().count() > mine.body.lines().count());
    // A code filter with a quote is refused, not interpolated.
    let bad = get(&env.app, "/cases?district=430405'%20OR%20'1'='1", qc.as_deref()).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let audit = env.store.recent_audit(30).await.expect("audit");
    assert!(audit.iter().any(|e| e.actor == "staff" && e.subject == "/cases" && e.detail.contains("online_approval")));
}

async fn administrators_replay_quarantined_records(store: Store) {
    let env = env(store, "replay").await;
    let now = Utc.with_ymd_and_hms(2025, 1, 10, 2, 0, 0).single().expect("time");
    // A case kept back under a rule since fixed: it validates now. And one that never will.
    let mut case = test_flow().cases[0].clone();
    case.external_id = "YW-REPLAYED-1".into();
    case.case_no = case.external_id.clone();
    let good = simulator::servers::registry::case_json(&case, now).to_string();
    let bad = br#"{"ywh": 1}"#;
    fn entry(payload: &[u8]) -> store::quarantine::NewQuarantine<'_> {
        store::quarantine::NewQuarantine {
            source: "registry",
            position: "cases row 1",
            reason_code: "unknown_code",
            reason: "test",
            payload,
        }
    }
    let mut tx = env.store.begin().await.expect("begin");
    let good_id = tx.quarantine(&entry(good.as_bytes()), now).await.expect("quarantine");
    let bad_id = tx.quarantine(&entry(bad), now).await.expect("quarantine");
    tx.commit().await.expect("commit");

    let (_, admin) = login(&env.app, "admin", &password(Role::Admin)).await;
    let page = get(&env.app, "/connectors", admin.as_deref()).await;
    assert!(page.body.contains("action=\"/connectors/replay\""), "administrators get the replay form");
    let (_, leader) = login(&env.app, "leadership", &password(Role::Leadership)).await;
    let page = get(&env.app, "/connectors", leader.as_deref()).await;
    assert!(!page.body.contains("/connectors/replay"), "leadership sees the quarantine, not the form");
    let refused = post_form(&env.app, "/connectors/replay", leader.as_deref(), &format!("id={good_id}")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let replayed = post_form(&env.app, "/connectors/replay", admin.as_deref(), &format!("id={good_id}")).await;
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.body);
    assert!(env.store.get_case("registry", "YW-REPLAYED-1").await.expect("get").is_some(), "the record was written");
    let again = post_form(&env.app, "/connectors/replay", admin.as_deref(), &format!("id={good_id}")).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "a record is replayed once");
    let still_bad = post_form(&env.app, "/connectors/replay", admin.as_deref(), &format!("id={bad_id}")).await;
    assert_eq!(still_bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(still_bad.body.contains("still fails"), "{}", still_bad.body);
    let missing = post_form(&env.app, "/connectors/replay", admin.as_deref(), "id=999999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let audit = env.store.recent_audit(20).await.expect("audit");
    assert_eq!(audit.iter().filter(|e| e.actor == "admin" && e.action == "quarantine.replay").count(), 4);
}

async fn an_operator_sees_only_the_cases_they_handled(store: Store) {
    let env = env(store, "operator").await;
    let from = Utc.with_ymd_and_hms(2023, 12, 31, 16, 0, 0).single().expect("time");
    let to = Utc.with_ymd_and_hms(2025, 1, 10, 16, 0, 0).single().expect("time");
    let mine = env.store.cases_handled_by(OPERATOR_TERMINAL, from, to, 10_000).await.expect("mine");
    let theirs = env.store.cases_handled_by("ZZ04", from, to, 10_000).await.expect("theirs");
    assert!(!mine.is_empty() && !theirs.is_empty(), "the flow spreads terminal cases over the terminals");
    assert!(mine.iter().all(|c| c.record.channel == domain::Channel::SelfService));

    let (_, cookie) = login(&env.app, "operator", &password(Role::Operator)).await;
    let page = get(&env.app, "/my/cases", cookie.as_deref()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let rows = page.body.matches("<tr>").count() - 1; // less the header row
    assert_eq!(rows, mine.len().min(500), "every case of the terminal in the period, no other");
    assert!(page.body.contains(&mine[0].record.case_no));
    assert!(
        theirs.iter().all(|c| !page.body.contains(&format!(">{}<", c.record.case_no))),
        "another terminal's case leaked"
    );
    assert!(!page.body.contains(&mine[0].record.applicant_id_no), "identity numbers are masked");
    assert!(page.body.contains(&mine[0].record.applicant_id_masked()));
    // The period filter narrows it, and the CSV holds the same rows.
    let csv = get(&env.app, "/my/cases?from=2024-06-01&to=2024-06-30&download=my_cases", cookie.as_deref()).await;
    let june = mine
        .iter()
        .filter(|c| domain::time::local_date(c.record.submitted_at).format("%Y-%m").to_string() == "2024-06")
        .count();
    assert_eq!(csv.body.lines().count(), june + 1, "{}", csv.body);
    // Nothing else: not the overview, not the SQL API.
    assert_eq!(get(&env.app, "/", cookie.as_deref()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&env.app, "/qc/cases", cookie.as_deref()).await.status, StatusCode::FORBIDDEN);
    let audit = env.store.recent_audit(20).await.expect("audit");
    let views: Vec<_> = audit.iter().filter(|e| e.actor == "operator" && e.subject == "/my/cases").collect();
    assert_eq!(views.len(), 2, "each view is audited");
    assert!(views.iter().all(|e| e.detail.contains(OPERATOR_TERMINAL)));

    // An operator account without a terminal sees an explanation, not someone's cases.
    let hash = hash_password("another-operator-pw").expect("hash");
    env.store.create_account("op2", "operator", None, &hash, Utc::now()).await.expect("account");
    let (_, other) = login(&env.app, "op2", "another-operator-pw").await;
    let page = get(&env.app, "/my/cases", other.as_deref()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("未绑定") && !page.body.contains("<table"), "{}", page.body);
}
