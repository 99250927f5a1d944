//! The same KPI definitions on Apache Ballista, in its in-process standalone
//! mode (a scheduler and an executor in this process, talking gRPC on
//! loopback): every golden KPI must give exactly what the local DataFusion
//! session gives. Built only with `--features ballista` (`.ci/run` runs it).

use store::testing::TestDatabase;
use warehouse::export::refresh;
use warehouse::kpi::{self, KpiQuery};
use warehouse::session::{engine_session, register_snapshot};

use crate::kpis::{GOLDEN, at, dims, flow, kpi_json, kpi_named, load, options, temp_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kpi_on_ballista_standalone_equals_the_local_answer() {
    let db = TestDatabase::sqlite().await.expect("sqlite");
    let flow = flow();
    let now = at(2025, 1, 2);
    load(&db.store, &flow, now, now).await;
    let root = temp_dir("ballista");
    refresh(&db.store, &root, &options(now, true)).await.expect("refresh");

    let ctx = engine_session("standalone", None).await.expect("standalone Ballista");
    assert!(
        ctx.state().config().options().extensions.iter().next().is_some(),
        "a Ballista session carries Ballista's configuration extension"
    );
    register_snapshot(&ctx, &root).await.expect("register the snapshot");
    // The plan is handed to the scheduler, not run in this session.
    let plan = ctx
        .sql("SELECT month, COUNT(*) FROM cases GROUP BY month")
        .await
        .expect("plan")
        .create_physical_plan()
        .await
        .expect("physical plan");
    let shown = warehouse::datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string();
    assert!(shown.contains("DistributedQueryExec"), "runs on Ballista:\n{shown}");
    for (name, by) in GOLDEN {
        let query = KpiQuery {
            from: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("date"),
            to: chrono::NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"),
            by: dims(by),
            as_of: now,
            filters: Vec::new(),
        };
        // A hang fails the test rather than holding up CI.
        let on_ballista =
            tokio::time::timeout(std::time::Duration::from_secs(60), kpi::run(&ctx, kpi_named(name), &query))
                .await
                .unwrap_or_else(|_| panic!("{name} by {by:?} did not finish on Ballista within 60 s"))
                .unwrap_or_else(|e| panic!("{name} on Ballista: {e}"));
        let local = kpi_json(&root, name, by, now).await;
        assert_eq!(on_ballista.to_json(), local, "{name} by {by:?}: Ballista and local DataFusion differ");
    }
    let _ = std::fs::remove_dir_all(root);
    db.drop_database().await.expect("drop");
}
