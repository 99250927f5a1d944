//! Tools for the person onboarding a partner: `wangban partner map` (the
//! first rows, their mapped records and findings, side by side; writes
//! nothing) and `wangban partner check --connector` (does the source behave
//! as its configuration assumes).

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::Partner;
use super::config::{ColumnType, ReadMode};
use super::http::HttpPosition;
use super::mapping::value_text;
use super::table::parse_naive;
use crate::poll::{PageError, Record};

/// One row as `partner map` shows it.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Where it was read, in words.
    pub position: String,
    /// The source row (identifying numbers masked).
    pub source: Value,
    /// The canonical record the mapping made (identifying numbers masked).
    pub canonical: Value,
    /// `Ok(key)` when the record is kept, else why it would be quarantined.
    pub outcome: Result<String, String>,
    /// The findings it would be kept with: (field, rule, detail).
    pub findings: Vec<(String, String, String)>,
}

fn masked(value: &Value, id_paths: &[&str]) -> Value {
    let mut out = value.clone();
    for path in id_paths {
        if let Some(Value::String(text)) = pointer_mut(&mut out, path) {
            *text = domain::ident::mask_id_number(text);
        }
    }
    out
}

fn pointer_mut<'a>(value: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let pointer: String = path
        .split('.')
        .flat_map(|part| {
            let mut pieces = part.split('[');
            let name = pieces.next().unwrap_or_default().to_owned();
            std::iter::once(name).chain(pieces.map(|p| p.trim_end_matches(']').to_owned())).collect::<Vec<_>>()
        })
        .map(|p| format!("/{p}"))
        .collect();
    value.pointer_mut(&pointer)
}

/// The first `limit` rows of `partner`, mapped; nothing is written anywhere.
pub async fn preview(partner: &Partner, limit: usize) -> Result<Vec<Preview>, PageError> {
    let mapping = partner.mapping();
    let id_targets: Vec<&str> = mapping_targets_identifying(partner);
    let id_sources: Vec<String> = id_targets
        .iter()
        .filter_map(|t| match partner.config().fields.get(*t) {
            Some(super::mapping::FieldSpec::From(c)) => Some(c.clone()),
            Some(super::mapping::FieldSpec::Rule(r)) => r.from.clone(),
            None => None,
        })
        .collect();
    let id_sources: Vec<&str> = id_sources.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for (row, raw, position) in partner.sample(limit).await? {
        let canonical = mapping.canonical(&row).map(|(c, _)| c).unwrap_or(Value::Null);
        let (outcome, findings) = match partner.map_row(&row, &raw, &position) {
            Ok(record) => {
                let (key, flaws) = describe(&record);
                (Ok(key), flaws.iter().map(|f| (f.field.clone(), f.rule.to_owned(), f.detail.clone())).collect())
            }
            Err(bad) => (Err(format!("{}: {}", bad.reason_code, bad.reason)), Vec::new()),
        };
        out.push(Preview {
            position,
            source: masked(&row, &id_sources),
            canonical: masked(&canonical, &id_targets),
            outcome,
            findings,
        });
    }
    Ok(out)
}

fn mapping_targets_identifying(partner: &Partner) -> Vec<&'static str> {
    partner
        .mapping()
        .kind
        .targets()
        .iter()
        .map(|t| t.name)
        .filter(|n| {
            let lower = n.to_ascii_lowercase();
            lower.contains("zjh") || lower.contains("idno")
        })
        .collect()
}

fn describe(record: &Record) -> (String, &[store::findings::Flaw]) {
    match record {
        Record::Case(c, f) => (c.external_id.clone(), f),
        Record::Qc(q, f) => (q.external_id.clone(), f),
        Record::Evaluation(e, f) => (e.external_id.clone(), f),
        Record::Filing(x, f) => (x.filing_no.clone(), f),
        Record::Loan(l, f) => (l.external_id.clone(), f),
        Record::Court(r) => (r.order.order_no.clone(), &[]),
    }
}

/// `partner map`'s text, in Chinese.
pub fn render_previews(partner: &Partner, previews: &[Preview]) -> String {
    let kind = partner.mapping().kind;
    let mut out = format!("{}：{}（{}），前 {} 条\n", partner_name(partner), kind.label(), kind.name(), previews.len());
    if previews.is_empty() {
        out.push_str("（源中尚无可读的行）\n");
    }
    for (i, p) in previews.iter().enumerate() {
        out.push_str(&format!("\n第 {} 条 · {}\n", i + 1, p.position));
        out.push_str("  源数据 → 映射后\n");
        for target in kind.targets() {
            let Some(value) = super::mapping::get_path(&p.canonical, target.name) else { continue };
            let from = match partner.config().fields.get(target.name) {
                Some(super::mapping::FieldSpec::From(c)) => c.clone(),
                Some(super::mapping::FieldSpec::Rule(r)) => r
                    .from
                    .clone()
                    .or_else(|| r.expr.as_ref().map(|e| format!("表达式 {e}")))
                    .unwrap_or_else(|| "常量".into()),
                None => String::new(),
            };
            let source = super::mapping::get_path(&p.source, &from).map(value_text).unwrap_or_default();
            out.push_str(&format!(
                "  {from:<14} {source:<28} → {:<12} {:<28} {}\n",
                target.name,
                value_text(value),
                target.label
            ));
        }
        match &p.outcome {
            Ok(key) => out.push_str(&format!("  结果：保留（键 {key}）\n")),
            Err(why) => out.push_str(&format!("  结果：将进入隔离区：{why}\n")),
        }
        for (field, rule, detail) in &p.findings {
            out.push_str(&format!("  数据质量发现：{field} [{rule}] {detail}\n"));
        }
    }
    out
}

/// `partner map --json`.
pub fn previews_json(previews: &[Preview]) -> Value {
    Value::Array(
        previews
            .iter()
            .map(|p| {
                json!({
                    "position": p.position,
                    "source": p.source,
                    "mapped": p.canonical,
                    "kept": p.outcome.is_ok(),
                    "key": p.outcome.as_ref().ok(),
                    "quarantine_reason": p.outcome.as_ref().err(),
                    "findings": p.findings.iter().map(|(f, r, d)| json!({"field": f, "rule": r, "detail": d})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn partner_name(partner: &Partner) -> &str {
    use crate::poll::Source as _;
    partner.name()
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    /// `pass`, `warn` or `fail`.
    pub level: &'static str,
    /// What was checked.
    pub check: &'static str,
    /// What was found.
    pub detail: String,
}

/// Checks a configured source against what its configuration assumes.
/// `now` is our clock (the partner's is compared with it).
pub async fn check(partner: &Partner, now: DateTime<Utc>) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    let mut line = |level, check, detail: String| lines.push(CheckLine { level, check, detail });
    match partner.table() {
        Some(table) => {
            let cfg = table.config();
            match table.clock().await {
                Err(e) => {
                    line("fail", "连接", format!("{e}"));
                    return lines;
                }
                Ok(clock) => {
                    let zone = zone_of(cfg.session_time_zone.as_deref().unwrap_or("+08:00"));
                    let theirs = zone.from_local_datetime(&clock).single().map(|t| t.with_timezone(&Utc));
                    let offset = theirs.map(|t| (t - now).num_seconds()).unwrap_or(0);
                    let level = if offset.unsigned_abs() > cfg.settle_seconds.max(60) { "warn" } else { "pass" };
                    line(
                        level,
                        "时钟偏差",
                        format!(
                            "对方数据库时钟比本机{} {} 秒（读取上界取对方时钟减 {} 秒，偏差不影响完整性）",
                            if offset >= 0 { "快" } else { "慢" },
                            offset.abs(),
                            cfg.settle_seconds
                        ),
                    );
                }
            }
            let first = cfg.page_size.min(1000);
            match (table.peek(first).await, table.peek(first).await) {
                (Ok(a), Ok(b)) => {
                    let keys = |rows: &[super::table::TextRow]| {
                        rows.iter().map(|r| (table.key_of(r), table.version_of(r))).collect::<Vec<_>>()
                    };
                    if keys(&a) == keys(&b) {
                        line("pass", "两次读取一致", format!("首页 {} 行两次读取相同", a.len()));
                    } else {
                        line("fail", "两次读取一致", "首页两次读取结果不同：排序不确定（键不唯一？）".into());
                    }
                    if cfg.mode == ReadMode::Increment
                        && let Some(cursor) = &cfg.cursor
                    {
                        let values: Vec<String> =
                            a.iter().map(|r| r.columns.get(cursor).map(value_text).unwrap_or_default()).collect();
                        let unreadable = values
                            .iter()
                            .filter(|v| match cfg.cursor_type {
                                ColumnType::Timestamp => parse_naive(v).is_none(),
                                _ => v.parse::<i64>().is_err(),
                            })
                            .count();
                        let ordered = values.windows(2).all(|w| match cfg.cursor_type {
                            ColumnType::Timestamp => parse_naive(&w[0]) <= parse_naive(&w[1]),
                            _ => w[0].parse::<i64>().ok() <= w[1].parse::<i64>().ok(),
                        });
                        if unreadable == 0 && ordered {
                            let ty = if cfg.cursor_type == ColumnType::Timestamp { "时间" } else { "整数" };
                            line("pass", "游标列排序", format!("{cursor} 按{ty}读取，顺序正确"));
                        } else {
                            line(
                                "fail",
                                "游标列排序",
                                format!("{cursor}：{unreadable} 个值无法按类型读取，或顺序不对"),
                            );
                        }
                    }
                }
                (Err(e), _) | (_, Err(e)) => line("fail", "两次读取一致", e.to_string()),
            }
            if cfg.mode == ReadMode::Increment {
                match table.widest_cursor_value().await {
                    Ok(Some((value, n))) => line(
                        "pass",
                        "同一游标值行数",
                        format!("最多 {n} 行共用游标值 {value}（按 (游标, 键) 分页，同值跨页不丢不重）"),
                    ),
                    Ok(None) => {}
                    Err(e) => line("fail", "同一游标值行数", e.to_string()),
                }
                let nulls = table.count_null_cursor().await;
                match nulls {
                    Ok(0) => {}
                    Ok(n) => line("fail", "游标列为空", format!("{n} 行游标为空，增量读取读不到它们")),
                    Err(e) => line("fail", "游标列为空", e.to_string()),
                }
            }
            if cfg.mode == ReadMode::SyncFlag {
                match table.may_mark().await {
                    Ok(()) => line("pass", "同步标志写权限", "本账号可以更新同步标志".into()),
                    Err(e) => line("fail", "同步标志写权限", format!("本账号不能更新同步标志：{e}")),
                }
            }
            for (target, from, codes) in partner.mapping().code_tables() {
                match table.distinct(from, 1000).await {
                    Ok(values) => {
                        let missing: Vec<&String> = values.iter().filter(|v| !codes.contains_key(v.trim())).collect();
                        if missing.is_empty() {
                            line(
                                "pass",
                                "代码表覆盖",
                                format!("{from} → {target}：数据中的 {} 个代码都在代码表中", values.len()),
                            );
                        } else {
                            let list: Vec<&str> = missing.iter().take(20).map(|s| s.as_str()).collect();
                            line("fail", "代码表覆盖", format!("{from} → {target}：代码表缺少 {}", list.join("、")));
                        }
                    }
                    Err(e) => line("fail", "代码表覆盖", e.to_string()),
                }
            }
        }
        None if partner.files().is_some() => {
            let files = partner.files().unwrap_or_else(|| unreachable!("checked in the guard"));
            match files.list(std::time::SystemTime::now()) {
                Ok(names) => line(
                    "pass",
                    "投放目录",
                    format!(
                        "{} 中有 {} 个已落定的文件{}",
                        files.config().dir.display(),
                        names.len(),
                        names.last().map(|n| format!("，最新 {n}")).unwrap_or_default()
                    ),
                ),
                Err(e) => line("fail", "投放目录", e.to_string()),
            }
        }
        None => {
            let Some(http) = partner.http() else { return lines };
            match (http.read(&HttpPosition::default()).await, http.read(&HttpPosition::default()).await) {
                (Ok(a), Ok(b)) => {
                    line("pass", "连接", format!("首页 {} 条", a.records.len()));
                    if a.records.iter().map(|r| &r.1).eq(b.records.iter().map(|r| &r.1)) {
                        line("pass", "两次读取一致", "首页两次读取相同".into());
                    } else {
                        line("warn", "两次读取一致", "首页两次读取不同（源在变化，或排序不确定）".into());
                    }
                    for (target, from, codes) in partner.mapping().code_tables() {
                        let missing: std::collections::BTreeSet<String> = a
                            .records
                            .iter()
                            .filter_map(|(r, _)| super::mapping::get_path(r, from).map(value_text))
                            .filter(|v| !v.is_empty() && !codes.contains_key(v.trim()))
                            .collect();
                        if missing.is_empty() {
                            line("pass", "代码表覆盖", format!("{from} → {target}：首页代码都在代码表中"));
                        } else {
                            let list: Vec<String> = missing.into_iter().take(20).collect();
                            line("fail", "代码表覆盖", format!("{from} → {target}：代码表缺少 {}", list.join("、")));
                        }
                    }
                }
                (Err(e), _) | (_, Err(e)) => line("fail", "连接", e.to_string()),
            }
        }
    }
    match preview(partner, 20).await {
        Ok(previews) => {
            let bad = previews.iter().filter(|p| p.outcome.is_err()).count();
            let level = if bad == 0 { "pass" } else { "warn" };
            line(level, "映射", format!("前 {} 条中 {} 条将进入隔离区", previews.len(), bad));
        }
        Err(e) => line("fail", "映射", e.to_string()),
    }
    lines
}

fn zone_of(text: &str) -> chrono::FixedOffset {
    super::mapping::parse_zone(text)
        .or_else(|| chrono::FixedOffset::east_opt(8 * 3600))
        .unwrap_or_else(|| unreachable!("+08:00 is a valid offset"))
}
