//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::AppError;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers; 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    state.store.ping().await.map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(json!({ "status": "ready", "database": format!("{:?}", state.store.kind()).to_lowercase() })))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use crate::{AppState, app};

    #[tokio::test]
    async fn healthz_and_readyz_answer() {
        let db = store::testing::TestDatabase::sqlite().await.expect("db");
        let router = app(AppState::new(db.store.clone()));
        let response = router
            .clone()
            .oneshot(Request::get("/healthz").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let response = router
            .clone()
            .oneshot(Request::get("/readyz").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        db.store.close().await;
        let response =
            router.oneshot(Request::get("/readyz").body(Body::empty()).expect("request")).await.expect("response");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "a closed store is not ready");
        db.drop_database().await.expect("drop");
    }
}
