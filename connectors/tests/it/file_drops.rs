//! A drop folder by configuration (前置机): GBK CSV files, each read once,
//! exactly, with its checksum; a bad row quarantined with its file and line;
//! a file whose checksum file disagrees is not read and stops the run with
//! the cursor where it was.

use chrono::Utc;
use connectors::partner::Partner;
use connectors::partner::config::PartnerConfig;
use connectors::poll::{RunOptions, poll_once};
use sha2::Digest;
use store::{Store, both_backends};

fn drop_file(dir: &std::path::Path, name: &str, lines: &[&str], checksum: Option<&str>) {
    let text = lines.join("\r\n");
    let (bytes, _, _) = encoding_rs::GBK.encode(&text);
    std::fs::write(dir.join(name), &bytes).expect("file");
    let sum = checksum.map_or_else(|| hex::encode(sha2::Sha256::digest(&bytes)), str::to_owned);
    std::fs::write(dir.join(format!("{name}.sha256")), format!("{sum}  {name}\n")).expect("checksum");
}

const HEADER: &str = "差错编号,业务号,差错类型,等级,责任科室,检查时间,更新时间";

async fn drop_folders_are_read_once_exactly(store: Store) {
    let dir = std::env::temp_dir().join(format!(
        "wangban_test_drops_{}_{}_{:?}",
        std::process::id(),
        Utc::now().timestamp_micros(),
        store.kind()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let text = format!(
        r#"
kind = "qc_finding"
schedule = "0 * * * *"
[files]
dir = {:?}
pattern = "qc-*.csv"
encoding = "gbk"
settle_seconds = 0
checksum_suffix = ".sha256"
[fields]
id = "差错编号"
ywh = "业务号"
cclx = {{ from = "差错类型", codes = "cclx" }}
ccdj = "等级"
zrks = "责任科室"
jcsj = {{ from = "检查时间", format = "%Y-%m-%d %H:%M:%S" }}
gxsj = {{ from = "更新时间", format = "%Y-%m-%d %H:%M:%S" }}
[codes.cclx]
"申请材料" = "SQCL"
"权利人" = "QLR"
"#,
        dir.display().to_string()
    );
    let config: PartnerConfig = toml::from_str(&text).expect("config");
    let partner = Partner::new("qc-drops", config).expect("valid");
    drop_file(
        &dir,
        "qc-20241008.csv",
        &[
            HEADER,
            "CC-1,YW1,申请材料,1,登记科,2024-10-08 09:00:00,2024-10-08 09:00:00",
            "CC-2,YW2,权利人,9,登记科,2024-10-08 10:00:00,2024-10-08 10:00:00",
            "CC-3,YW3,其他,2,档案科,2024-10-08 11:00:00,2024-10-08 11:00:00",
        ],
        None,
    );
    drop_file(
        &dir,
        "qc-20241009.csv",
        &[HEADER, "CC-4,YW4,权利人,3,登记科,2024-10-09 09:00:00,2024-10-09 09:00:00"],
        None,
    );
    std::fs::write(dir.join("notes.txt"), "not a drop file").expect("other file");
    let now = Utc::now();
    let first = poll_once(&partner, &store, RunOptions::new(now)).await.expect("run");
    assert_eq!(first.error, None);
    assert_eq!((first.pages, first.inserted, first.quarantined), (2, 2, 2), "{first:?}");
    let files = store.source_files("qc-drops").await.expect("files");
    assert_eq!(files.len(), 2);
    let quarantined = store.list_quarantine(Some("qc-drops"), true, 10).await.expect("quarantine");
    let positions: Vec<&str> = quarantined.iter().map(|q| q.position.as_str()).collect();
    assert!(positions.contains(&"qc-20241008.csv 第 3 行"), "{positions:?}");
    assert!(quarantined.iter().any(|q| q.reason.contains("其他") && q.reason.contains("cclx")), "{quarantined:?}");

    // Read again: nothing new. A later file with a wrong checksum: not read, the run stops there.
    let again = poll_once(&partner, &store, RunOptions::new(now)).await.expect("run");
    assert_eq!((again.rows(), again.error.as_deref()), (0, None), "{again:?}");
    drop_file(
        &dir,
        "qc-20241010.csv",
        &[HEADER, "CC-5,YW5,权利人,1,登记科,2024-10-10 09:00:00,2024-10-10 09:00:00"],
        Some("00ff"),
    );
    let bad = poll_once(&partner, &store, RunOptions::new(now)).await.expect("run");
    assert!(bad.error.as_deref().is_some_and(|e| e.contains("qc-20241010.csv") && e.contains("checksum")), "{bad:?}");
    // Fixed by the partner: read now, once.
    drop_file(
        &dir,
        "qc-20241010.csv",
        &[HEADER, "CC-5,YW5,权利人,1,登记科,2024-10-10 09:00:00,2024-10-10 09:00:00"],
        None,
    );
    let fixed = poll_once(&partner, &store, RunOptions::new(now)).await.expect("run");
    assert_eq!((fixed.error, fixed.inserted), (None, 1));
    assert_eq!(store.table_counts().await.expect("counts").qc_findings, 3);
    let _ = std::fs::remove_dir_all(&dir);
}

both_backends!(drop_folders_are_read_once_exactly);
