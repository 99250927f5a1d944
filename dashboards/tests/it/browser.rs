//! A real browser: Debian's headless Chromium, driven over WebDriver by
//! chromedriver, logs in as each role and loads every page that role may
//! open. A page fails on any console error (a blocked stylesheet or a
//! Content-Security-Policy violation shows up there), a broken image, a
//! stylesheet that did not load, or a chart that did not lay out. Screenshots
//! go to `$CARGO_TARGET_TMPDIR/screenshots/ROLE-PAGE.png`.
//!
//! `.ci/run` installs chromium and chromium-driver and sets
//! `WANGBAN_BROWSER_TESTS=required`; elsewhere the test says it is skipped
//! when chromedriver is missing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use dashboards::auth::{Page, Role};
use serde_json::{Value, json};
use store::testing::TestDatabase;

use crate::pages::{env, password};

/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct ChromeDriver {
    child: Child,
    url: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Session {
    http: reqwest::Client,
    url: String,
}

impl Session {
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        assert!(status.is_success(), "webdriver {path}: {status} {answer}");
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .command(reqwest::Method::POST, "/element", Some(json!({ "using": "css selector", "value": css })))
            .await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/value"), Some(json!({ "text": text }))).await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    async fn script(&self, js: &str) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": js, "args": [] }))).await
    }

    /// Console entries since the last call (chromedriver's log extension).
    async fn console(&self) -> Vec<Value> {
        let entries = self.command(reqwest::Method::POST, "/se/log", Some(json!({ "type": "browser" }))).await;
        entries.as_array().cloned().unwrap_or_default()
    }

    async fn screenshot(&self) -> Vec<u8> {
        let data = self.command(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD.decode(data.as_str().expect("base64 text")).expect("base64")
    }

    /// Polls a script until it returns something truthy (a click's navigation is not
    /// waited for by WebDriver); the last value either way.
    async fn wait_for(&self, js: &str) -> Value {
        let mut value = Value::Null;
        for _ in 0..200 {
            value = self.script(js).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        value
    }

    async fn delete_cookies(&self) {
        self.command(reqwest::Method::DELETE, "/cookie", None).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// Starts chromedriver, or `None` (after saying so) when it is not installed and not required.
async fn start_chromedriver() -> Option<ChromeDriver> {
    let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
    let required = std::env::var("WANGBAN_BROWSER_TESTS").is_ok_and(|v| v == "required");
    if !std::path::Path::new(&binary).exists() {
        assert!(!required, "WANGBAN_BROWSER_TESTS=required but {binary} is missing (apt-get install chromium-driver)");
        eprintln!("{binary} is missing: skipping the browser test (apt-get install chromium chromium-driver)");
        return None;
    }
    let port = free_port();
    let child = Command::new(&binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let driver = ChromeDriver { child, url: format!("http://127.0.0.1:{port}") };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{}/status", driver.url)).send().await
            && let Ok(status) = response.json::<Value>().await
            && status["value"]["ready"] == json!(true)
        {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not become ready on port {port}");
}

async fn open_session(driver: &ChromeDriver) -> Session {
    let http = reqwest::Client::new();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let capabilities = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=zh-CN"],
        },
        "goog:loggingPrefs": { "browser": "ALL" },
    }}});
    let answer: Value = http
        .post(format!("{}/session", driver.url))
        .json(&capabilities)
        .send()
        .await
        .expect("new session")
        .json()
        .await
        .expect("session json");
    let id = answer["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {answer}")).to_owned();
    Session { http, url: format!("{}/session/{id}", driver.url) }
}

/// What is wrong with the page on screen, if anything.
async fn page_problems(session: &Session) -> Vec<String> {
    let mut problems = Vec::new();
    for entry in session.console().await {
        if entry["level"] == "SEVERE" || entry["level"] == "WARNING" {
            problems.push(format!("console {}: {}", entry["level"], entry["message"]));
        }
    }
    let broken = session
        .script("return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);")
        .await;
    if broken.as_array().is_some_and(|b| !b.is_empty()) {
        problems.push(format!("broken images: {broken}"));
    }
    let sheets = session
        .script(
            "return Array.from(document.styleSheets).map(s => { try { return s.cssRules.length; } catch (e) { return -1; } });",
        )
        .await;
    let loaded = sheets.as_array().is_some_and(|s| !s.is_empty() && s.iter().all(|n| n.as_i64().unwrap_or(0) > 0));
    if !loaded {
        problems.push(format!("stylesheet not loaded: rules per sheet {sheets}"));
    }
    let flat = session
        .script(
            "return Array.from(document.querySelectorAll('svg')).filter(s => { const r = s.getBoundingClientRect(); return r.width < 50 || r.height < 50; }).length;",
        )
        .await;
    if flat.as_i64().unwrap_or(0) > 0 {
        problems.push(format!("{flat} chart(s) did not lay out"));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_cleanly_in_chromium() {
    let Some(driver) = start_chromedriver().await else { return };
    let db = TestDatabase::sqlite().await.expect("sqlite");
    let env = env(db.store.clone(), "browser").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = env.app.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
    });
    let base = format!("http://{addr}");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");

    let session = open_session(&driver).await;
    let mut failures = Vec::new();
    let mut pages_seen = 0;
    for role in [Role::Leadership, Role::Qc, Role::Staff, Role::Operator, Role::Admin] {
        session.delete_cookies().await;
        session.goto(&format!("{base}/login")).await;
        session.type_into("input[name=username]", role.code()).await;
        session.type_into("input[name=password]", &password(role)).await;
        session.click("form button[type=submit]").await;
        let after_login = session
            .wait_for(
                "return document.readyState === 'complete' && location.pathname !== '/login' ? location.pathname : '';",
            )
            .await;
        if after_login == "" || after_login == "/login" {
            let text = session.script("return document.body.innerText;").await;
            panic!("{} is still not in after logging in: at {after_login}, page says {text}", role.code());
        }
        for page in Page::ALL.into_iter().filter(|p| p.allows(role)) {
            session.goto(&format!("{base}{}", page.path())).await;
            let path = session.script("return location.pathname;").await;
            if path != page.path() {
                failures.push(format!("{} {}: ended on {path}", role.code(), page.path()));
                continue;
            }
            for problem in page_problems(&session).await {
                failures.push(format!("{} {}: {problem}", role.code(), page.path()));
            }
            let png = session.screenshot().await;
            assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
            let name = page.path().trim_matches('/').replace('/', "-");
            let name = if name.is_empty() { "overview".to_owned() } else { name };
            std::fs::write(shots.join(format!("{}-{name}.png", role.code())), png).expect("save screenshot");
            pages_seen += 1;
        }
        if role == Role::Qc {
            // The console end to end: type a query, run it, read the table.
            session.goto(&format!("{base}/sql")).await;
            let element = session.find("textarea[name=sql]").await;
            session.command(reqwest::Method::POST, &format!("/element/{element}/clear"), Some(json!({}))).await;
            session
                .type_into(
                    "textarea[name=sql]",
                    "SELECT business_type, COUNT(*) AS n FROM cases GROUP BY business_type ORDER BY business_type",
                )
                .await;
            session.click("button[value=html]").await;
            let rows = session
                .wait_for("return document.readyState === 'complete' && document.querySelectorAll('table tbody tr').length >= 5;")
                .await;
            if rows != json!(true) {
                let text = session.script("return document.body.innerText;").await;
                panic!("the console shows no result rows; the page says {text}");
            }
            for problem in page_problems(&session).await {
                failures.push(format!("qc /sql (after a query): {problem}"));
            }
        }
    }
    assert!(pages_seen >= 12, "only {pages_seen} pages were visited");
    assert!(failures.is_empty(), "pages with problems:\n{}", failures.join("\n"));
    eprintln!("browser: {pages_seen} pages clean; screenshots in {}", shots.display());
    server.abort();
    drop(env);
    db.drop_database().await.expect("drop");
}
