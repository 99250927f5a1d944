//! Choosing the query engine.

use warehouse::session::engine_session;

#[tokio::test]
async fn an_unknown_engine_is_refused_with_the_choices() {
    let Err(err) = engine_session("spark://x", None).await else { panic!("spark:// accepted") };
    assert!(err.to_string().contains("df://host:port"), "{err}");
    assert!(engine_session("local", None).await.is_ok());
    if !cfg!(feature = "ballista") {
        let Err(err) = engine_session("df://127.0.0.1:50050", None).await else { panic!("no Ballista in this build") };
        assert!(err.to_string().contains("--features ballista"), "{err}");
    }
}
