//! `GET /contracts/…`: the partner contracts of `contracts/` (JSON Schema,
//! XSD, the CSV spec and the signature vectors), served as the very files in
//! the repository so a partner validates against what our tests use.
//! `GET /contracts/` lists them.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every served file: (path under `/contracts/`, content type, content).
pub const FILES: [(&str, &str, &str); 12] = [
    ("registry-cases/schema.json", JSON, include_str!("../../contracts/registry-cases/schema.json")),
    ("registry-qc-findings/schema.json", JSON, include_str!("../../contracts/registry-qc-findings/schema.json")),
    ("registry-evaluations/schema.json", JSON, include_str!("../../contracts/registry-evaluations/schema.json")),
    ("housing-listing/schema.json", JSON, include_str!("../../contracts/housing-listing/schema.json")),
    ("housing-file/spec.json", JSON, include_str!("../../contracts/housing-file/spec.json")),
    ("bank/schema.json", JSON, include_str!("../../contracts/bank/schema.json")),
    ("provident-fund/schema.xsd", XML, include_str!("../../contracts/provident-fund/schema.xsd")),
    ("court-platform-requests/schema.xsd", XML, include_str!("../../contracts/court-platform-requests/schema.xsd")),
    ("court-platform-feedback/schema.xsd", XML, include_str!("../../contracts/court-platform-feedback/schema.xsd")),
    ("court-push/court-api.xsd", XML, crate::court::XSD),
    ("court-push/signature-vectors.json", JSON, include_str!("../../contracts/court-push/signature-vectors.json")),
    ("README.md", "text/markdown; charset=utf-8", include_str!("../../contracts/README.md")),
];

const JSON: &str = "application/json";
const XML: &str = "application/xml; charset=utf-8";

/// `GET /contracts/`: the served files, as a JSON array of paths.
pub async fn index() -> Response {
    let paths: Vec<String> = FILES.iter().map(|(path, _, _)| format!("/contracts/{path}")).collect();
    axum::Json(paths).into_response()
}

/// `GET /contracts/{*path}`: one file, or 404 naming the index.
pub async fn file(Path(path): Path<String>) -> Response {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, content)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, *content_type)], *content).into_response()
        }
        None => {
            (StatusCode::NOT_FOUND, format!("no contract file {path:?}; GET /contracts/ lists them\n")).into_response()
        }
    }
}
