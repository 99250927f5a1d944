//! `wangban partner`: add prints the secret once; list never does; both backends.

use store::testing::TestDatabase;

use crate::support::{run, stderr, stdout, temp_dir, wangban};

fn partner_lifecycle(database_url: &str, data: &std::path::Path) {
    let output = run(wangban().args(["--database-url", database_url, "--data"]).arg(data).args([
        "partner",
        "add",
        "--kind",
        "court",
        "--id",
        "court-0405",
        "--name",
        "珠晖区人民法院",
    ]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let added: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    let secret = added["secret"].as_str().expect("secret").to_owned();
    assert_eq!(secret.len(), 64);

    let output = run(wangban().args([
        "--database-url",
        database_url,
        "partner",
        "add",
        "--kind",
        "court",
        "--id",
        "court-0405",
        "--name",
        "x",
    ]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("already exists"), "{}", stderr(&output));

    let output = run(wangban().args(["--database-url", database_url, "partner", "list"]));
    assert!(stdout(&output).contains("\"court-0405\""));
    assert!(!stdout(&output).contains(&secret), "list must never show secrets");

    let output = run(wangban().args(["--database-url", database_url, "partner", "rotate", "--id", "court-0405"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = run(wangban().args(["--database-url", database_url, "partner", "disable", "--id", "court-0405"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = run(wangban().args([
        "--database-url",
        database_url,
        "partner",
        "add",
        "--kind",
        "judge",
        "--id",
        "j",
        "--name",
        "x",
    ]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("unknown partner kind"), "{}", stderr(&output));
}

#[test]
fn partner_lifecycle_on_the_default_sqlite_file() {
    let dir = temp_dir("partner");
    let url = format!("sqlite://{}", dir.join("wangban.db").display());
    partner_lifecycle(&url, &dir);
}

#[tokio::test]
async fn partner_lifecycle_on_postgres() {
    let Some(db) = TestDatabase::postgres("partner_lifecycle_on_postgres").await.expect("postgres") else { return };
    let url = db.url.clone();
    let dir = temp_dir("partner_pg");
    tokio::task::spawn_blocking(move || partner_lifecycle(&url, &dir)).await.expect("join");
    db.drop_database().await.expect("drop");
}

#[test]
fn demo_refuses_a_folder_it_did_not_make() {
    let dir = temp_dir("demo_foreign");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("precious.txt"), "keep me").expect("write");
    let output = run(wangban().args(["demo", "--dir"]).arg(&dir));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not made by `wangban demo`"), "{}", stderr(&output));
    assert!(dir.join("precious.txt").exists());
}
