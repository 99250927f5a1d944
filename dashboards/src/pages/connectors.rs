//! The `connectors` page.

use super::*;
use store::audit::Recorded;

/// `GET /connectors`: the health of every connector and the quarantine.
pub async fn connectors(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Connectors, &filters, |role, _| async move {
        let lang = f.lang();
        let now = (dd.clock)();
        let states = dd.store.all_connector_states().await?;
        // Each feed's learned arrival rhythm, and how probable its present silence is at it.
        let mut rhythms = Vec::with_capacity(states.len());
        for s in &states {
            rhythms.push(match (warehouse::alerts::rhythm_of(&dd.store, &s.connector, now).await?, s.source_watermark) {
                (Some(r), Some(w)) => format!(
                    "{}；当前静默概率 {:.1}%",
                    r.describe(),
                    r.silence_probability(w, now) * 100.0
                ),
                (Some(r), None) => r.describe(),
                (None, _) => lang.pick("历史不足一周或近 8 周无数据，按固定阈值判断", "under a week of history, or silent for 8 weeks: fixed threshold").into(),
            });
        }
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or_else(|| "—".into(), |t| domain::time::china_time(t).format("%Y-%m-%d %H:%M:%S").to_string())
        };
        let health = Table {
            id: "health",
            numbers: vec![5, 6, 7, 8],
            title: lang.pick("连接器状态", "Connector health").into(),
            columns: column_titles(lang, &[("连接器", "Connector"), ("状态", "Status"), ("最近运行", "Last run"), ("最近成功", "Last success"), ("滞后", "Lag"), ("上次速率（条/秒）", "Last run rows/s"), ("累计记录", "Records"), ("失败次数", "Errors"), ("隔离记录", "Quarantined"), ("最近错误", "Last error"), ("到达规律", "Arrival rhythm")]),
            rows: states
                .iter()
                .zip(rhythms)
                .map(|(s, rhythm)| {
                    vec![
                        s.connector.clone(),
                        s.status.clone(),
                        time(s.last_run_at),
                        time(s.last_success_at),
                        s.lag(now).map_or_else(|| "—".into(), |l| format!("{} min", l.num_minutes())),
                        format!("{:.0}", s.last_run_rate()),
                        s.records_total.to_string(),
                        s.errors_total.to_string(),
                        s.quarantined_total.to_string(),
                        s.last_error.clone().unwrap_or_default(),
                        rhythm,
                    ]
                })
                .collect(),
        };
        let day_checks = dd.store.day_checks(60).await?;
        let days = Table {
            id: "days",
            numbers: vec![2, 3, 4, 5],
            title: lang
                .pick(
                    "前置库逐日核对（对方每日记录数对我方；不一致的日期已整日重读）",
                    "Exchange tables, day by day (the partner's count against ours; a differing day is read again whole)",
                )
                .into(),
            columns: column_titles(lang, &[("连接器", "Connector"), ("日期", "Day"), ("对方", "Partner"), ("我方（重读前）", "Ours before"), ("我方（重读后）", "Ours after"), ("重读行数", "Re-read rows"), ("结果", "Result")]),
            rows: day_checks
                .iter()
                .map(|c| {
                    vec![
                        c.connector.clone(),
                        c.day.clone(),
                        c.partner_rows.to_string(),
                        c.our_rows_before.to_string(),
                        c.our_rows_after.to_string(),
                        c.reread_rows.to_string(),
                        match (c.differs(), c.reread_rows > 0) {
                            (true, _) => lang.pick("仍不一致（见隔离区）", "still differs (see quarantine)").into(),
                            (false, true) => lang.pick("重读后一致", "agrees after re-read").into(),
                            (false, false) => lang.pick("一致", "agrees").into(),
                        },
                    ]
                })
                .collect(),
        };
        let entries = dd.store.list_quarantine(None, true, 100).await?;
        let quarantine = Table {
            id: "quarantine",
            numbers: Vec::new(),
            title: lang
                .pick(
                    "隔离区（待处理，最近 100 条；修复后用 wangban quarantine replay ID 重放）",
                    "Quarantine (pending, latest 100; replay with `wangban quarantine replay ID`)",
                )
                .into(),
            columns: column_titles(lang, &[("编号", "Id"), ("时间", "When"), ("来源", "Source"), ("位置", "Position"), ("原因", "Reason")]),
            rows: entries
                .iter()
                .map(|q| {
                    vec![
                        q.id.to_string(),
                        time(Some(q.created_at)),
                        q.source.clone(),
                        q.position.clone(),
                        format!("{}: {}", q.reason_code, q.reason),
                    ]
                })
                .collect(),
        };
        let findings = Table {
            id: "findings",
            numbers: Vec::new(),
            title: lang
                .pick(
                    "数据质量问题（记录已接收并计入指标，问题字段已脱敏；明细用 wangban quarantine list --findings）",
                    "Data-quality findings (records kept and counted, flawed values masked; details with `wangban quarantine list --findings`)",
                )
                .into(),
            columns: column_titles(lang, &[("来源", "Source"), ("字段", "Field"), ("规则", "Rule"), ("记录数", "Records")]),
            rows: dd
                .store
                .count_data_findings()
                .await?
                .into_iter()
                .map(|f| vec![f.source, f.field, f.rule, f.records.to_string()])
                .collect(),
        };
        // Month by month: the cases the registry delivered against the cases the online rate counts.
        let snapshot = dd.snapshot().await.ok();
        // The refresh keeps it with the snapshot (`reconcile::after_refresh`);
        // only a snapshot made without it is reconciled here, over the whole store.
        let checks = match &snapshot {
            Some(snap) if !snap.manifest.reconciliation.is_empty() => snap.manifest.reconciliation.clone(),
            Some(snap) => {
                let delivered = warehouse::reconcile::Delivered::from_store(&dd.store).await?;
                snap.reconcile_cases(&delivered).await?
            }
            None => Vec::new(),
        };
        let differing = checks.iter().filter(|c| c.difference() != 0).count();
        let reconciliation = Table {
            id: "case_reconciliation",
            numbers: Vec::new(),
            title: lang
                .pick(
                    "按月对账：登记系统交付的案件 = 网办率计入 + 按定义排除（差额应为 0；快照之后到达的案件也会显示为差额）",
                    "Month by month: cases the registry delivered = counted by the online rate + left out by its definition (the difference should be 0; cases that arrived after the snapshot show as a difference too)",
                )
                .into(),
            columns: column_titles(lang, &[("月份", "Month"), ("交付", "Delivered"), ("其中有数据质量问题", "Of which flawed"), ("计入", "Counted"), ("排除", "Left out"), ("差额", "Difference")]),
            rows: checks
                .iter()
                .map(|c| {
                    vec![
                        c.month.clone(),
                        c.delivered.to_string(),
                        c.flawed.to_string(),
                        c.counted.to_string(),
                        c.excluded.to_string(),
                        c.difference().to_string(),
                    ]
                })
                .collect(),
        };
        let banner = alert_banner(&dd, &[warehouse::alerts::CONNECTOR_LAG], lang).await?;
        let body = html! {
            (banner)
            @match &snapshot {
                None => p.hint { (lang.pick("尚无数仓快照，按月对账待首次刷新后显示。", "No warehouse snapshot yet: the monthly reconciliation shows after the first refresh.")) },
                Some(snap) if differing == 0 => p.ok { (lang.pick("按月对账一致：", "Every month reconciles: ")) (checks.len()) (lang.pick(" 个月，快照 ", " months, snapshot ")) (snap.manifest.snapshot_id) },
                Some(snap) => p.error { (differing) (lang.pick(" 个月对账不一致（快照 ", " months do not reconcile (snapshot ")) (snap.manifest.snapshot_id) (lang.pick("），见下表。", "); see the table.")) },
            }
            @if role == Role::Admin && !entries.is_empty() {
                form.replay method="post" action="/connectors/replay" {
                    label { (lang.pick("重放隔离记录编号", "Replay quarantine entry")) " " input type="number" name="id" min="1" required; }
                    " "
                    button type="submit" { (lang.pick("按原样重放", "Replay as kept")) }
                    " "
                    span.hint { (lang.pick("记录会按接入规则重新校验；修正后的记录请用 wangban quarantine replay ID --payload 文件。",
                                           "The record is validated again by its connector's rules; for a corrected record use wangban quarantine replay ID --payload FILE.")) }
                }
            }
        };
        Ok(Content { body, tables: vec![health, reconciliation, days, quarantine, findings] })
    })
    .await
}

/// The replay form.
#[derive(Debug, Deserialize)]
pub struct ReplayForm {
    /// Quarantine entry id.
    pub id: i64,
}

/// `POST /connectors/replay` (administrators): validates a quarantined record
/// again with its connector's parser and, if it passes now, writes it as the
/// poll loop would (`connectors::replay`); audited either way.
pub async fn quarantine_replay(
    State(d): State<Dashboards>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
    Form(form): Form<ReplayForm>,
) -> Response {
    let lang = filters.lang();
    let (account, role) = match d.authorize(&headers, Page::Connectors, lang).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    if role != Role::Admin {
        return forbidden(&account, Some(role), lang);
    }
    let now = (d.clock)();
    let result = ::connectors::replay::replay(&d.store, form.id, None, now).await;
    let (status, message) = match &result {
        Ok(outcome) => (StatusCode::OK, format!("{} {}: {outcome:?}", lang.pick("已重放", "Replayed"), form.id)),
        Err(::connectors::replay::ReplayError::NotFound(_)) => {
            (StatusCode::NOT_FOUND, result.as_ref().err().map(ToString::to_string).unwrap_or_default())
        }
        Err(::connectors::replay::ReplayError::Store(e)) => {
            tracing::error!(message = "quarantine replay failed", error = %e);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                lang.pick("存储暂不可用，请稍后重试", "the store is unavailable; retry later").to_owned(),
            )
        }
        Err(other) => (StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    };
    let entry = Recorded::QuarantineReplay { id: form.id, result: &message, status: status.as_u16() };
    if let Err(e) = d.store.record(now, &account.name, &form.id.to_string(), &entry).await {
        tracing::error!(message = "could not audit a replay", error = %e);
    }
    let body = html! {
        p class=(if status == StatusCode::OK { "notice" } else { "error" }) { (message) }
        p { a href=(filters.link("/connectors", &[])) { (lang.pick("返回数据接入", "Back to connectors")) } }
    };
    (status, layout(Page::Connectors, Some((&account, role)), &filters, lang, body)).into_response()
}
