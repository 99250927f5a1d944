//! The housing authority's contract filings (网签备案): one immutable GBK
//! CSV file a day, published the next morning, listed with its row count and
//! SHA-256.
//!
//! `GET /housing/v1/exports` → `[{"date","file","rows","sha256"}]`;
//! `GET /housing/v1/exports/{file}` → the file, `text/csv; charset=GBK`.
//! A cancellation (状态 注销) of an earlier filing comes in a later day's file.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::world::ContractFiling;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{Days, NaiveDate, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::caseflow::Flow;
use crate::servers::faults::Faults;

/// The CSV header, in the order of the columns.
pub const HEADER: &str =
    "合同备案号,项目名称,开发企业,开发企业信用代码,不动产单元号,买受人,买受人证件号,合同金额,建筑面积,备案时间,状态";

/// One day's file.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// The day it covers.
    pub date: NaiveDate,
    /// Its name, `filings-YYYYMMDD.csv`.
    pub name: String,
    /// Data rows (without the header).
    pub rows: usize,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// GBK bytes.
    pub bytes: Vec<u8>,
}

fn china_date(filing: &ContractFiling) -> NaiveDate {
    domain::time::local_date(filing.filed_at)
}

fn row(f: &ContractFiling, status: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let digest = Sha256::digest(f.filing_no.as_bytes());
    let project = ["江景花园", "雁城华府", "石鼓新城", "蒸湘名苑", "南岳山居", "湘江一号"][usize::from(digest[0]) % 6];
    let area = 60.0 + f64::from(digest[1]) / 2.0;
    format!(
        "{},{}{}期,{},{},{},{},{},{}.{:02},{:.2},{},{}",
        f.filing_no,
        project,
        digest[2] % 3 + 1,
        f.developer_name,
        f.developer_credit_code,
        f.unit_no,
        f.buyer_name,
        f.buyer_id_no,
        f.price_cents / 100,
        f.price_cents % 100,
        area,
        domain::time::china_time(at).format("%Y-%m-%d %H:%M:%S"),
        status
    )
}

/// Builds the daily files of a flow: every day from the first filing to the
/// day before `published_until` gets a file (possibly with no rows).
pub fn exports(flow: &Flow, published_until: NaiveDate, faults: &Faults, seed: u64) -> Vec<ExportFile> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x484f_5553);
    let mut by_day: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    for f in &flow.filings {
        by_day.entry(china_date(f)).or_default().push(row(f, "备案", f.filed_at));
        // About one filing in a hundred is cancelled some days later.
        if rng.random_bool(0.01) {
            let later = f.filed_at + TimeDelta::days(rng.random_range(3..40));
            by_day.entry(domain::time::local_date(later)).or_default().push(row(f, "注销", later));
        }
    }
    let Some(first) = by_day.keys().next().copied() else { return Vec::new() };
    let mut files = Vec::new();
    let mut day = first;
    while day < published_until {
        let rows = by_day.remove(&day).unwrap_or_default();
        let mut bytes = encoding_rs::GBK.encode(&format!("{HEADER}\r\n")).0.into_owned();
        for r in &rows {
            if faults.malformed_rate > 0.0 && rng.random_bool(faults.malformed_rate.min(1.0)) {
                // A row whose buyer's name is not GBK: lead byte 0x81 followed by a space.
                let (head, tail) = r.split_at(r.find(',').unwrap_or(0));
                bytes.extend(encoding_rs::GBK.encode(head).0.iter());
                bytes.extend([0x81, 0x20]);
                bytes.extend(encoding_rs::GBK.encode(tail).0.iter());
            } else {
                bytes.extend(encoding_rs::GBK.encode(r).0.iter());
            }
            bytes.extend(b"\r\n");
        }
        files.push(ExportFile {
            date: day,
            name: format!("filings-{}.csv", day.format("%Y%m%d")),
            rows: rows.len(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            bytes,
        });
        day = day + Days::new(1);
    }
    files
}

/// The housing authority's routes (mounted under `/housing/v1`).
pub fn router(flow: &Flow, published_until: NaiveDate, faults: &Faults, seed: u64) -> Router {
    let files: Arc<Vec<ExportFile>> = Arc::new(exports(flow, published_until, faults, seed));
    Router::new()
        .route(
            "/exports",
            get(|State(files): State<Arc<Vec<ExportFile>>>| async move {
                Json(
                    files
                        .iter()
                        .map(|f| json!({ "date": f.date.to_string(), "file": f.name, "rows": f.rows, "sha256": f.sha256 }))
                        .collect::<Vec<_>>(),
                )
            }),
        )
        .route(
            "/exports/{file}",
            get(|State(files): State<Arc<Vec<ExportFile>>>, Path(name): Path<String>| async move {
                match files.iter().find(|f| f.name == name) {
                    Some(f) => ([(header::CONTENT_TYPE, "text/csv; charset=GBK")], f.bytes.clone()).into_response(),
                    None => (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no export named {name:?}") }))).into_response(),
                }
            }),
        )
        .with_state(files)
}

/// Decodes a file as a connector would (GBK), for tests.
pub fn decode(bytes: &[u8]) -> Option<String> {
    let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(bytes);
    (!had_errors).then(|| text.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::faults::Faults;

    #[tokio::test]
    async fn daily_gbk_files_match_their_listing() {
        let flow = crate::servers::testing::flow(NaiveDate::from_ymd_opt(2024, 6, 30).expect("date"), 5, 8000, |_| {});
        let until = NaiveDate::from_ymd_opt(2024, 7, 1).expect("date");
        let servers = crate::servers::testing::serve(&flow, until, Faults::default()).await;
        let listing = crate::servers::testing::get_json(&format!("{}/exports", servers.housing_url()), None).await;
        let listing = listing.as_array().cloned().unwrap_or_default();
        assert!(listing.len() > 100, "one file a day");
        let mut filed = 0;
        for entry in &listing {
            let name = entry["file"].as_str().expect("file");
            let bytes = reqwest::get(format!("{}/exports/{name}", servers.housing_url()))
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            assert_eq!(hex::encode(Sha256::digest(&bytes)), entry["sha256"], "{name}");
            let text = decode(&bytes).expect("valid GBK");
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some(HEADER));
            let rows: Vec<&str> = lines.collect();
            assert_eq!(rows.len() as u64, entry["rows"].as_u64().expect("rows"));
            if !rows.is_empty() {
                assert!(std::str::from_utf8(&bytes).is_err(), "Chinese text in GBK is not UTF-8");
            }
            for row in rows {
                assert_eq!(row.split(',').count(), 11, "{row}");
                filed += usize::from(row.ends_with(",备案"));
            }
        }
        assert_eq!(filed, flow.filings.len());
        let missing = reqwest::get(format!("{}/exports/nope.csv", servers.housing_url())).await.expect("get");
        assert_eq!(missing.status(), 404);
        servers.stop().await.expect("stop");
    }
}
