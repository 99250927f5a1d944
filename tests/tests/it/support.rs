//! Starting the service on port 0 for a test, with a clock the test controls,
//! a registered court partner, and helpers to sign and send requests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use domain::PartnerKind;
use gateway::court::signature::sign;
use store::Store;
use store::testing::TestDatabase;

/// A running service and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub partner_id: String,
    pub secret: String,
    now: Arc<Mutex<DateTime<Utc>>>,
    client: reqwest::Client,
    running: Option<wangban::app::Running>,
    data_dir: std::path::PathBuf,
    db: Option<TestDatabase>,
    sandbox_db: Option<TestDatabase>,
}

/// The sandbox partner [`TestApp::start_with_sandbox`] registers.
pub const SANDBOX_PARTNER: &str = "court-sandbox";
/// Its secret.
pub const SANDBOX_SECRET: &str = "sandbox-secret-for-tests-0123456789";

/// A fixed starting instant: 2024-10-08 09:00 China time.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 10, 8, 1, 0, 0).single().expect("time")
}

impl TestApp {
    /// Starts the service on `db` with a court partner `court-0405`.
    pub async fn start(db: TestDatabase) -> Self {
        Self::start_with(db, None).await
    }

    /// Starts the service on `db` with a court partner `court-0405`, and a
    /// sandbox register on `sandbox` with the sandbox partner [`SANDBOX_PARTNER`].
    pub async fn start_with_sandbox(db: TestDatabase, sandbox: TestDatabase) -> Self {
        Self::start_with(db, Some(sandbox)).await
    }

    async fn start_with(db: TestDatabase, sandbox: Option<TestDatabase>) -> Self {
        let now = Arc::new(Mutex::new(start_time()));
        let clock_now = now.clone();
        let clock: gateway::Clock = Arc::new(move || *clock_now.lock().expect("clock"));
        let secret = "s3cret-for-tests-0123456789abcdef".to_owned();
        db.store
            .create_partner(
                "court-0405",
                PartnerKind::Court,
                "珠晖区人民法院",
                &secret,
                start_time() - TimeDelta::days(1),
            )
            .await
            .expect("partner");
        if sandbox.is_some() {
            // `App::build` copies it into the sandbox register.
            db.store
                .create_sandbox_partner(SANDBOX_PARTNER, "沙箱法院", SANDBOX_SECRET, start_time() - TimeDelta::days(1))
                .await
                .expect("sandbox partner");
        }
        // The whole system as `serve` starts it, on the test's databases and clock.
        let data_dir = std::env::temp_dir().join(format!(
            "wangban_test_app_{}_{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ));
        let mut settings = wangban::settings::Settings { data_dir: data_dir.clone(), ..Default::default() };
        settings.database.url = Some(db.url.clone());
        settings.database.sandbox_url = sandbox.as_ref().map(|s| s.url.clone());
        // Over the test's own stores: some tests put a proxy or a size limit in front of the database.
        let sandbox_store = match &sandbox {
            Some(sandbox) => sandbox.store.clone(),
            None => settings.open_sandbox_store().await.expect("the default sandbox register"),
        };
        let listen = Some("127.0.0.1:0".parse().expect("addr"));
        let app = wangban::App::build_on(&settings, listen, clock, db.store.clone(), sandbox_store)
            .await
            .expect("the app starts");
        let addr: SocketAddr = app.url().trim_start_matches("http://").parse().expect("addr");
        let running = app.spawn();
        Self {
            addr,
            store: db.store.clone(),
            partner_id: "court-0405".into(),
            secret,
            now,
            client: reqwest::Client::new(),
            running: Some(running),
            data_dir,
            db: Some(db),
            sandbox_db: sandbox,
        }
    }

    /// The sandbox register's store, when started with one.
    pub fn sandbox_store(&self) -> Option<&Store> {
        self.sandbox_db.as_ref().map(|db| &db.store)
    }

    /// POSTs `body` as `partner`, signed with `secret` at the service's time.
    pub async fn post_as(&self, partner: &str, secret: &str, body: &str) -> (u16, String) {
        let signature = sign(secret, self.now().timestamp(), body.as_bytes(), false);
        self.post_raw(body, Some(&signature), Some(partner), "application/xml").await
    }

    /// GETs `path` as `partner`, signed over the path with `secret`.
    pub async fn get_as(&self, partner: &str, secret: &str, path: &str) -> (u16, String) {
        let signed = path.split('?').next().unwrap_or(path);
        let signature = sign(secret, self.now().timestamp(), signed.as_bytes(), false);
        let response = self
            .client
            .get(format!("http://{}{path}", self.addr))
            .header("x-partner-id", partner)
            .header("x-signature", signature)
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// The service's current time.
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock")
    }

    /// Moves the service's clock.
    pub fn advance(&self, by: TimeDelta) {
        *self.now.lock().expect("clock") += by;
    }

    /// POSTs a body signed with `secret` at the service's current time.
    pub async fn post_signed_with(&self, body: &str, secret: &str, content_type: &str) -> (u16, String) {
        let signature = sign(secret, self.now().timestamp(), body.as_bytes(), false);
        self.post_raw(body, Some(&signature), Some(&self.partner_id), content_type).await
    }

    /// POSTs a body signed with the partner's secret.
    pub async fn post(&self, body: &str) -> (u16, String) {
        self.post_signed_with(body, &self.secret, "application/xml").await
    }

    /// POSTs a signed body; a connection that fails or drops is an `Err`
    /// rather than a panic (for fault tests, where it can happen).
    pub async fn try_post(&self, body: &str) -> Result<(u16, String), reqwest::Error> {
        let signature = sign(&self.secret, self.now().timestamp(), body.as_bytes(), false);
        let response = self
            .client
            .post(format!("http://{}/api/court/v1/orders", self.addr))
            .header("content-type", "application/xml")
            .header("x-signature", signature)
            .header("x-partner-id", &self.partner_id)
            .body(body.to_owned())
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    /// POSTs with exactly the given headers.
    pub async fn post_raw(
        &self,
        body: &str,
        signature: Option<&str>,
        partner: Option<&str>,
        content_type: &str,
    ) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("http://{}/api/court/v1/orders", self.addr))
            .header("content-type", content_type)
            .body(body.to_owned());
        if let Some(s) = signature {
            request = request.header("x-signature", s);
        }
        if let Some(p) = partner {
            request = request.header("x-partner-id", p);
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// GETs an order's status, signed over the path.
    pub async fn get_order(&self, order_no: &str) -> (u16, String) {
        self.get_as(&self.partner_id, &self.secret, &format!("/api/court/v1/orders/{order_no}")).await
    }

    /// Stops the service and drops the database.
    pub async fn finish(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean shutdown");
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(db) = self.db.take() {
            db.drop_database().await.expect("drop");
        }
        if let Some(db) = self.sandbox_db.take() {
            db.drop_database().await.expect("drop sandbox");
        }
    }
}

/// A `<CourtOrder>` document.
pub struct Order<'a> {
    pub order_no: &'a str,
    pub action: &'a str,
    pub unit_no: &'a str,
    pub start: &'a str,
    pub end: &'a str,
    pub original: &'a str,
    pub served_at: &'a str,
    pub case_no: &'a str,
}

impl Default for Order<'_> {
    fn default() -> Self {
        Self {
            order_no: "Q2024-0001",
            action: "SEIZE",
            unit_no: "430405001002GB00001F00010001",
            start: "2024-10-08",
            end: "2027-10-07",
            original: "",
            served_at: "2024-10-08T08:30:00+08:00",
            case_no: "(2024)湘0405执123号",
        }
    }
}

impl Order<'_> {
    /// The `<CourtOrder>` element.
    pub fn element(&self) -> String {
        let dates = if self.action == "RELEASE" {
            String::new()
        } else {
            format!("<StartDate>{}</StartDate><EndDate>{}</EndDate>", self.start, self.end)
        };
        let original = if self.original.is_empty() {
            String::new()
        } else {
            format!("<OriginalOrderNo>{}</OriginalOrderNo>", self.original)
        };
        format!(
            "<CourtOrder><OrderNo>{}</OrderNo><CourtCode>湘0405</CourtCode><CourtName>珠晖区人民法院</CourtName>\
             <CaseNo>{}</CaseNo><Action>{}</Action><UnitNo>{}</UnitNo>\
             <Respondent><Name>王五</Name><IdNo>11010519491231002X</IdNo></Respondent>{dates}{original}\
             <RulingNo>(2024)湘0405执123号之一</RulingNo><Judge>赵法官</Judge><ServedAt>{}</ServedAt></CourtOrder>",
            self.order_no, self.case_no, self.action, self.unit_no, self.served_at
        )
    }

    /// The whole document.
    pub fn document(&self) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}", self.element())
    }
}

/// The text of the first `<name>` element in `xml`.
pub fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(&xml[start..end])
}

/// The `code` attribute of the first `<Reason>`.
pub fn reason_code(xml: &str) -> Option<&str> {
    let start = xml.find("<Reason code=\"")? + "<Reason code=\"".len();
    let end = xml[start..].find('"')? + start;
    Some(&xml[start..end])
}

/// Declares a `sqlite` and a `postgres` test for each `async fn name(app: TestApp)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = store::testing::TestDatabase::sqlite().await.expect("sqlite");
                    let app = crate::support::TestApp::start(db).await;
                    super::$name(&app).await;
                    app.finish().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(db) = store::testing::TestDatabase::postgres(stringify!($name)).await.expect("postgres") else { return };
                    let app = crate::support::TestApp::start(db).await;
                    super::$name(&app).await;
                    app.finish().await;
                }
            }
        )*
    };
}
pub(crate) use both_backends;
