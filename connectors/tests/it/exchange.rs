//! A partner's exchange table (前置库) read by configuration, against real
//! PostgreSQL and MariaDB servers, into a SQLite and a PostgreSQL store, with
//! the faults such tables really have: a transaction holding an earlier
//! timestamp open while later rows commit, hundreds of rows with one
//! timestamp across page boundaries, our clock minutes off the partner's,
//! logical deletes, a row re-written between our read and our mark, and a
//! sync killed between pages. Not one row is lost or doubled against the
//! simulator's truth.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use connectors::partner::Partner;
use connectors::partner::config::PartnerConfig;
use connectors::poll::{Outcome, RunOptions, Source as _, poll_once};
use simulator::exchange::{self, Exchange, ExchangeCase};
use store::{Store, both_backends};

/// The variable naming the MariaDB server for exchange tests (`.ci/test` sets
/// it, and `WANGBAN_TEST_MYSQL_REQUIRED=1` makes its absence a failure).
const MYSQL_URL_VAR: &str = "WANGBAN_TEST_MYSQL_URL";

/// The variable that makes the ODBC runs required (`.ci/test` sets it once
/// it has installed unixODBC and the PostgreSQL and MariaDB ODBC drivers).
const ODBC_REQUIRED_VAR: &str = "WANGBAN_TEST_ODBC_REQUIRED";

/// Whether Debian's ODBC drivers are installed (`odbcinst -q -d`).
fn odbc_drivers() -> Option<String> {
    let output = std::process::Command::new("odbcinst").args(["-q", "-d"]).output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One exchange database: its label, the URL the simulator writes through
/// (native), and the URL the partner configuration reads through (native, or ODBC).
struct ExchangeDb {
    label: &'static str,
    write: String,
    read: String,
}

/// Fresh exchange databases, one per server and access available: PostgreSQL
/// and MariaDB, each natively through sqlx and through its ODBC driver.
async fn exchange_databases() -> Vec<ExchangeDb> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let drivers = odbc_drivers().unwrap_or_default();
    if std::env::var(ODBC_REQUIRED_VAR).is_ok() {
        assert!(
            drivers.contains("PostgreSQL Unicode") && drivers.contains("MariaDB Unicode"),
            "{ODBC_REQUIRED_VAR} is set but the PostgreSQL and MariaDB ODBC drivers are not installed: {drivers}"
        );
    } else if drivers.is_empty() {
        eprintln!("no ODBC drivers (odbcinst -q -d): the exchange tests skip ODBC");
    }
    let mut out = Vec::new();
    let fresh = || {
        format!(
            "wangban_test_xchg_{}_{}_{}",
            std::process::id(),
            Utc::now().timestamp_micros(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )
    };
    if let Ok(admin) = std::env::var(store::testing::POSTGRES_URL_VAR) {
        let pool = sqlx::PgPool::connect(&admin).await.expect("PostgreSQL admin");
        let (base, _) = admin.rsplit_once('/').expect("a database in the URL");
        for odbc in [false, true] {
            if odbc && !drivers.contains("PostgreSQL Unicode") {
                continue;
            }
            let name = fresh();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.expect("create");
            let write = format!("{base}/{name}");
            let read = if odbc {
                format!("odbc:Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=5432;Database={name};Uid=postgres;")
            } else {
                write.clone()
            };
            out.push(ExchangeDb { label: if odbc { "postgresql-odbc" } else { "postgresql" }, write, read });
        }
        pool.close().await;
    }
    match std::env::var(MYSQL_URL_VAR) {
        Ok(admin) => {
            let pool = sqlx::MySqlPool::connect(&admin).await.expect("MariaDB admin");
            let (base, _) = admin.rsplit_once('/').expect("a database in the URL");
            for odbc in [false, true] {
                if odbc && !drivers.contains("MariaDB Unicode") {
                    continue;
                }
                let name = fresh();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&pool)
                    .await
                    .expect("create");
                let write = format!("{base}/{name}");
                let read = if odbc {
                    format!(
                        "odbc:Driver={{MariaDB Unicode}};Server=127.0.0.1;Port=3306;Database={name};User=root;Password=;"
                    )
                } else {
                    write.clone()
                };
                out.push(ExchangeDb { label: if odbc { "mariadb-odbc" } else { "mariadb" }, write, read });
            }
            pool.close().await;
        }
        Err(_) if std::env::var("WANGBAN_TEST_MYSQL_REQUIRED").is_ok() => {
            panic!("{MYSQL_URL_VAR} is unset but WANGBAN_TEST_MYSQL_REQUIRED is: MariaDB must be tested")
        }
        Err(_) => eprintln!("{MYSQL_URL_VAR} is unset: the exchange tests skip MariaDB"),
    }
    out
}

/// Drops an exchange database made by [`exchange_databases`].
async fn drop_exchange(label: &str, url: &str) {
    let (base, name) = url.rsplit_once('/').expect("a database in the URL");
    if label.starts_with("postgresql") {
        let admin = std::env::var(store::testing::POSTGRES_URL_VAR).expect("admin URL");
        let pool = sqlx::PgPool::connect(&admin).await.expect("admin");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&pool)
            .await
            .expect("drop");
        pool.close().await;
    } else {
        let pool = sqlx::MySqlPool::connect(&format!("{base}/mysql")).await.expect("admin");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&pool).await.expect("drop");
        pool.close().await;
    }
}

/// The adapter for the simulator's table, its URL in a file (never in the configuration).
fn partner(url: &str, mode: &str) -> Partner {
    let dir = std::env::temp_dir().join(format!(
        "wangban_test_xchg_{}_{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("url");
    std::fs::write(&file, format!("{url}\n")).expect("url file");
    let text = exchange::adapter_toml(&format!("{{ file = {:?} }}", file.display().to_string()), mode);
    let config: PartnerConfig = toml::from_str(&text).expect("adapter");
    Partner::new("gtmap", config).expect("valid adapter")
}

/// Runs the connector until a run reads nothing new; our clock is ten
/// minutes ahead of the partner's. `first_pages` limits the first run (a
/// sync killed after that many pages).
async fn sync(partner: &Partner, store: &Store, first_pages: u64) -> Outcome {
    let mut total = Outcome::default();
    for run in 0..50 {
        let now = Utc::now() + chrono::Duration::minutes(10);
        let mut options = RunOptions::new(now);
        if run == 0 {
            options.max_pages = first_pages;
        }
        let outcome = poll_once(partner, store, options).await.expect("store");
        assert_eq!(outcome.error, None, "run {run}");
        let new = outcome.inserted + outcome.updated;
        total.pages += outcome.pages;
        total.inserted += outcome.inserted;
        total.updated += outcome.updated;
        total.unchanged += outcome.unchanged;
        total.quarantined += outcome.quarantined;
        if run > 0 && new == 0 && outcome.quarantined == 0 {
            break;
        }
    }
    total
}

async fn assert_store_matches(store: &Store, truth: &BTreeMap<String, (ExchangeCase, char)>, label: &str) {
    for (ywh, (case, op)) in truth {
        let stored =
            store.get_case("registry", ywh).await.expect("store").unwrap_or_else(|| panic!("{label}: {ywh} lost"));
        let expected = match (op, case.zt.as_str()) {
            ('D', _) => domain::CaseStatus::Withdrawn,
            (_, "受理") => domain::CaseStatus::Submitted,
            (_, "登簿") => domain::CaseStatus::Recorded,
            _ => domain::CaseStatus::Archived,
        };
        assert_eq!(stored.record.status, expected, "{label}: {ywh}");
    }
    let counts = store.table_counts().await.expect("counts");
    assert_eq!(counts.cases, truth.len() as i64, "{label}: no case doubled or invented");
}

async fn increment_mode_loses_and_doubles_nothing(like: Store) {
    let day = NaiveDate::from_ymd_opt(2026, 12, 7).expect("date");
    for ExchangeDb { label, write: url, read } in exchange_databases().await {
        // A fresh store for each exchange server.
        let db = store::testing::TestDatabase::like(&like).await.expect("fresh store");
        let store = db.store.clone();
        let x = Exchange::connect(&url).await.expect("exchange database");
        x.create_cases_table().await.expect("table");
        let gtmap = partner(&read, "increment");
        let all = exchange::cases(460, 7, day);
        let mut truth = BTreeMap::new();
        let clock = x.clock().await.expect("clock");
        // 300 rows with one CD_TIME: three pages of 100 and more, all one value.
        x.write_at(&all[..300], clock - chrono::Duration::seconds(60), 'I').await.expect("write");
        // A transaction holds an earlier CD_TIME open while later rows commit.
        let held = x.hold(&all[300..310], clock - chrono::Duration::seconds(30), 'I').await.expect("hold");
        x.write_at(&all[310..400], clock - chrono::Duration::seconds(20), 'I').await.expect("write");
        for c in &all[..300].iter().chain(&all[310..400]).collect::<Vec<_>>()[..] {
            truth.insert(c.ywh.clone(), ((*c).clone(), 'I'));
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
        // Killed after two pages, then resumed.
        let first = sync(&gtmap, &store, 2).await;
        assert_eq!(first.inserted, 390, "{label}: {first:?}");
        assert_store_matches(&store, &truth, label).await;

        // The held rows commit now, long after the settle delay: the lookback reads them.
        held.commit().await.expect("commit");
        for c in &all[300..310] {
            truth.insert(c.ywh.clone(), (c.clone(), 'I'));
        }
        // Fifty cases change; one is deleted; sixty new ones arrive with one time.
        let later = x.clock().await.expect("clock");
        let changed: Vec<ExchangeCase> =
            all[..50].iter().map(|c| ExchangeCase { zt: "办结".into(), ..c.clone() }).collect();
        x.write_at(&changed, later, 'U').await.expect("write");
        x.write_at(&all[400..], later, 'I').await.expect("write");
        x.write_at(&all[60..61], later + chrono::Duration::milliseconds(1), 'D').await.expect("delete");
        for c in changed.iter().chain(&all[400..]) {
            truth.insert(c.ywh.clone(), (c.clone(), 'I'));
        }
        truth.insert(all[60].ywh.clone(), (all[60].clone(), 'D'));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let second = sync(&gtmap, &store, 1).await;
        assert_eq!(second.inserted, 70, "{label}: the ten held rows and sixty new: {second:?}");
        assert_eq!(second.updated, 51, "{label}: fifty changed and one deleted: {second:?}");
        assert_store_matches(&store, &truth, label).await;
        let audit = store.recent_audit(200).await.expect("audit");
        assert!(
            audit.iter().any(|e| e.action == "record.ended_by_partner" && e.subject == format!("case:{}", all[60].ywh)),
            "{label}: the delete is audited"
        );
        // Nothing in quarantine: every code was in the tables, every ID valid.
        assert_eq!(first.quarantined + second.quarantined, 0, "{label}");
        // The same rows read again harm nothing.
        let again = sync(&gtmap, &store, u64::MAX).await;
        assert_eq!(again.inserted + again.updated, 0, "{label}: {again:?}");

        // A row committed a day late, far behind the lookback: the passes miss
        // it; the day reconciliation sees its day differ and reads the day again.
        let late = ExchangeCase { ywh: "GT999999".into(), ..all[0].clone() };
        x.write_at(std::slice::from_ref(&late), later - chrono::Duration::hours(20), 'I').await.expect("late row");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let missed = sync(&gtmap, &store, u64::MAX).await;
        assert_eq!(missed.inserted, 0, "{label}: beyond the lookback, a pass does not see it");
        let today = domain::time::local_date(Utc::now());
        let checks = connectors::partner::days::reconcile_days(&gtmap, &store, today, 3, Utc::now())
            .await
            .expect("day reconciliation");
        assert!(
            checks.iter().any(|c| c.reread_rows > 0 && c.our_rows_before + 1 == c.our_rows_after),
            "{label}: {checks:?}"
        );
        assert!(checks.iter().all(|c| !c.differs()), "{label}: every day agrees after its re-read: {checks:?}");
        assert!(store.get_case("registry", "GT999999").await.expect("store").is_some(), "{label}: found and loaded");
        assert_eq!(store.day_checks(10).await.expect("checks").len(), 3);
        truth.insert(late.ywh.clone(), (late, 'I'));
        assert_store_matches(&store, &truth, label).await;
        db.drop_database().await.expect("drop");
        drop(x);
        drop(gtmap);
        drop_exchange(label, &url).await;
    }
}

async fn sync_flag_mode_marks_only_what_it_read(like: Store) {
    let day = NaiveDate::from_ymd_opt(2026, 12, 7).expect("date");
    for ExchangeDb { label, write: url, read } in exchange_databases().await {
        // A fresh store for each exchange server.
        let db = store::testing::TestDatabase::like(&like).await.expect("fresh store");
        let store = db.store.clone();
        let x = Exchange::connect(&url).await.expect("exchange database");
        x.create_cases_table().await.expect("table");
        let gtmap = partner(&read, "sync_flag");
        let mut all = exchange::cases(250, 11, day);
        // One row carries a code the table lacks: quarantined, its reason written back.
        all[5].djlx = "999".into();
        let clock = x.clock().await.expect("clock");
        x.write_at(&all, clock - chrono::Duration::seconds(10), 'I').await.expect("write");

        // A page is read; the partner re-writes one of its rows before we mark it.
        let page = gtmap.fetch_page(None).await.expect("page");
        assert_eq!(page.marks.len(), 100);
        let rewritten = ExchangeCase { zt: "办结".into(), ..all[3].clone() };
        x.write_at(std::slice::from_ref(&rewritten), clock, 'U').await.expect("re-write");
        let table = gtmap.table().expect("a table");
        let marked = table.mark(&page.marks).await.expect("mark");
        assert_eq!(marked, 99, "{label}: the re-written row stays pending");
        let states = x.sync_states().await.expect("states");
        let state = |ywh: &str| states.iter().find(|s| s.0 == ywh).cloned().expect("row");
        assert_eq!(state(&all[3].ywh).1, 0, "{label}");
        assert_eq!(state(&all[5].ywh).1, 2, "{label}: quarantined rows get the failed flag");
        assert!(
            state(&all[5].ywh).2.as_deref().is_some_and(|e| e.contains("djlx")),
            "{label}: {:?}",
            state(&all[5].ywh)
        );
        assert!(state(&all[0].ywh).3, "{label}: the read time is written back");

        // The whole table through the poll loop: every row once, the re-written one at its new version.
        let outcome = sync(&gtmap, &store, u64::MAX).await;
        assert_eq!(outcome.quarantined, 0, "{label}: row 5 was marked failed on the first page: {outcome:?}");
        let mut truth: BTreeMap<String, (ExchangeCase, char)> =
            all.iter().filter(|c| c.djlx != "999").map(|c| (c.ywh.clone(), (c.clone(), 'I'))).collect();
        truth.insert(rewritten.ywh.clone(), (rewritten.clone(), 'U'));
        // The first page was read but not written through the loop: its rows are pending no more
        // except the re-written one, so the store holds the other 150 and that one.
        let held: BTreeMap<_, _> = truth
            .iter()
            .filter(|(k, _)| page.marks.iter().all(|m| &m.key != *k) || **k == rewritten.ywh)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_store_matches(&store, &held, label).await;
        let pending = x.sync_states().await.expect("states").iter().filter(|s| s.1 == 0).count();
        assert_eq!(pending, 0, "{label}: everything read is marked");
        db.drop_database().await.expect("drop");
        drop(x);
        drop(gtmap);
        drop_exchange(label, &url).await;
    }
}

both_backends!(increment_mode_loses_and_doubles_nothing, sync_flag_mode_marks_only_what_it_read);

#[tokio::test]
async fn credentials_never_reach_an_error() {
    let dir = std::env::temp_dir().join(format!("wangban_test_xchg_secret_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("url");
    // A server that is not there, with a password that must not be printed.
    std::fs::write(&file, "postgres://sync:Zx9-very-secret@127.0.0.1:9/qzk").expect("file");
    let text = exchange::adapter_toml(&format!("{{ file = {:?} }}", file.display().to_string()), "increment");
    let config: PartnerConfig = toml::from_str(&text).expect("adapter");
    let gtmap = Partner::new("gtmap", config).expect("valid");
    let error = gtmap.fetch_page(None).await.expect_err("no server");
    let text = format!("{error} {error:?}");
    assert!(!text.contains("Zx9-very-secret"), "{text}");
    assert!(text.contains("BDC_YW_SL"), "the error names the table: {text}");
    // Through ODBC, whose driver may echo the connection string.
    if odbc_drivers().is_some_and(|d| d.contains("PostgreSQL Unicode")) {
        std::fs::write(
            &file,
            "odbc:Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=9;Database=qzk;Uid=sync;Pwd=Zx9-very-secret;",
        )
        .expect("file");
        let config: PartnerConfig = toml::from_str(&exchange::adapter_toml(
            &format!("{{ file = {:?} }}", file.display().to_string()),
            "increment",
        ))
        .expect("adapter");
        let gtmap = Partner::new("gtmap-odbc", config).expect("valid");
        let error = gtmap.fetch_page(None).await.expect_err("no server");
        let text = format!("{error} {error:?}");
        assert!(!text.contains("Zx9-very-secret"), "{text}");
        assert!(text.contains("BDC_YW_SL"), "the error names the table: {text}");
    }
}

/// The two worked examples in docs/adapters.md are valid configurations.
#[test]
fn the_documented_examples_are_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/adapters.md")).expect("docs");
    let blocks: Vec<&str> = text.split("```toml").skip(1).filter_map(|b| b.split("```").next()).collect();
    let mut checked = 0;
    for block in blocks.iter().filter(|b| b.trim_start().starts_with("[partners.")) {
        #[derive(serde::Deserialize)]
        struct File {
            partners: BTreeMap<String, PartnerConfig>,
        }
        let file: File = toml::from_str(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        for (name, config) in file.partners {
            connectors::partner::mapping::Mapping::new(config.kind, name.as_str(), &config.fields, &config.codes)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            if config.table.is_some() {
                Partner::new(&name, config).unwrap_or_else(|e| panic!("{e}"));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 3, "the three examples were found and checked");
}

/// The registry through its HTTP contract (the shipped adapter) and through an
/// exchange table holding the same cases load the same case records, flaws
/// and all: the KPIs, computed from those records, are the same.
async fn registry_through_http_and_through_an_exchange_table_agree(like: Store) {
    use simulator::caseflow::{FlowParams, generate};
    let mut url = None;
    for made in exchange_databases().await {
        if made.label == "postgresql" {
            url = Some(made.write);
        } else {
            drop_exchange(made.label, &made.write).await;
        }
    }
    let Some(url) = url else { return };
    let mut params = FlowParams::new(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"), 31);
    params.yearly_volume = 1200;
    params.anomalies.bad_check_digit = 0.02;
    params.anomalies.duplicate_delivery = 0.0;
    params.anomalies.late_correction = 0.0;
    let flow = generate(&params);
    let today = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");

    // Through HTTP.
    let servers = simulator::servers::start(
        "127.0.0.1:0".parse().expect("addr"),
        &flow,
        today,
        simulator::servers::faults::Faults::default(),
        3,
    )
    .await
    .expect("servers");
    let http_db = store::testing::TestDatabase::like(&like).await.expect("store");
    let config = connectors::partner::shipped::config(
        connectors::partner::shipped::REGISTRY_CASES,
        &servers.registry_url(),
        "0 * * * *",
    )
    .expect("adapter");
    let http = Partner::new("registry", config).expect("adapter");
    let now = Utc::now();
    let outcome = poll_once(&http, &http_db.store, RunOptions::new(now)).await.expect("run");
    assert_eq!(outcome.error, None);

    // Through an exchange table with the same fields as columns.
    let x = Exchange::connect(&url).await.expect("exchange");
    x.write_registry_cases(&flow.cases).await.expect("write");
    let dir =
        std::env::temp_dir().join(format!("wangban_test_xchg_reg_{}_{}", std::process::id(), now.timestamp_micros()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("url"), &url).expect("url");
    let text = exchange::registry_adapter_toml(&format!("{{ file = {:?} }}", dir.join("url").display().to_string()));
    let config: PartnerConfig = toml::from_str(&text).expect("mapping");
    let table = Partner::new("registry-exchange", config).expect("mapping");
    let table_db = store::testing::TestDatabase::like(&like).await.expect("store");
    let outcome = sync(&table, &table_db.store, u64::MAX).await;
    assert_eq!(outcome.quarantined, 0);

    // The same records, field for field, and the same findings.
    let (a, b) =
        (http_db.store.table_counts().await.expect("counts"), table_db.store.table_counts().await.expect("counts"));
    assert_eq!(a.cases, flow.cases.len() as i64);
    assert_eq!(a, b);
    for case in &flow.cases {
        let through_http =
            http_db.store.get_case("registry", &case.external_id).await.expect("get").expect("case").record;
        let through_table =
            table_db.store.get_case("registry", &case.external_id).await.expect("get").expect("case").record;
        assert_eq!(through_http, through_table, "{}", case.external_id);
    }
    let findings = |s: &Store| {
        let s = s.clone();
        async move {
            s.count_data_findings()
                .await
                .expect("findings")
                .into_iter()
                .map(|f| (f.field, f.rule, f.records))
                .collect::<Vec<_>>()
        }
    };
    let flawed = findings(&http_db.store).await;
    assert!(!flawed.is_empty(), "the flow has flawed identifiers");
    assert_eq!(flawed, findings(&table_db.store).await);
    http_db.drop_database().await.expect("drop");
    table_db.drop_database().await.expect("drop");
    drop(x);
    drop(table);
    drop_exchange("postgresql", &url).await;
}

both_backends!(registry_through_http_and_through_an_exchange_table_agree);
