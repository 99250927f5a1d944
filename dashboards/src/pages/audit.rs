//! The `audit` page.

use super::*;

/// `GET /audit`: the newest audit entries and whether the chain verifies.
pub async fn audit(State(d): State<Dashboards>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let f = filters.clone();
    let dd = d.clone();
    d.serve_page(&headers, Page::Audit, &filters, |_, _| async move {
        let lang = f.lang();
        let entries = dd.store.recent_audit(200).await?;
        let chain = dd.store.verify_audit_chain().await?;
        let body = html! {
            @match chain {
                Ok(n) => p.ok { (lang.pick("哈希链校验通过，共 ", "The hash chain verifies: ")) (n) (lang.pick(" 条。", " entries.")) },
                Err(b) => p.error { (lang.pick("哈希链在第 ", "The hash chain breaks at entry ")) (b.id) (lang.pick(" 条断开：", ": ")) (b.reason) },
            }
        };
        let table = Table {
            id: "audit",
            numbers: Vec::new(),
            title: lang.pick("最近 200 条", "Latest 200").into(),
            columns: column_titles(lang, &[("编号", "Id"), ("时间", "When"), ("操作人", "Actor"), ("操作", "Action"), ("对象", "Subject"), ("详情", "Detail")]),
            rows: entries
                .iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        domain::time::china_time(e.at).format("%Y-%m-%d %H:%M:%S").to_string(),
                        e.actor.clone(),
                        e.action.clone(),
                        e.subject.clone(),
                        e.detail.clone(),
                    ]
                })
                .collect(),
        };
        let when = |t: chrono::DateTime<chrono::Utc>| domain::time::china_time(t).format("%Y-%m-%d %H:%M").to_string();
        let now = (dd.clock)();
        let accounts = Table {
            id: "accounts",
            numbers: Vec::new(),
            title: lang.pick("账户（用 wangban user add|disable|enable|reset 管理）", "Accounts (managed with wangban user add|disable|enable|reset)").into(),
            columns: column_titles(lang, &[("用户名", "Name"), ("角色", "Role"), ("科室/终端", "Section or terminal"), ("状态", "State"), ("连续失败", "Failed logins"), ("创建", "Created")]),
            rows: dd
                .store
                .accounts()
                .await?
                .into_iter()
                .map(|a| {
                    let state = if a.disabled {
                        lang.pick("已停用", "disabled").to_owned()
                    } else if a.locked_until.is_some_and(|t| t > now) {
                        format!("{} {}", lang.pick("锁定至", "locked until"), a.locked_until.map(when).unwrap_or_default())
                    } else {
                        lang.pick("正常", "active").to_owned()
                    };
                    let role = Role::from_code(&a.role).map_or_else(|| a.role.clone(), |r| lang.pick(r.name_zh(), r.code()).to_owned());
                    vec![a.name, role, a.section.unwrap_or_default(), state, a.failed_logins.to_string(), when(a.created_at)]
                })
                .collect(),
        };
        let partners = Table {
            id: "partners",
            numbers: Vec::new(),
            title: lang.pick("合作方（用 wangban partner add|rotate|disable 管理；密钥从不显示）", "Partners (managed with wangban partner add|rotate|disable; secrets never shown)").into(),
            columns: column_titles(lang, &[("编号", "Id"), ("类别", "Kind"), ("名称", "Name"), ("状态", "State"), ("每分钟限额", "Requests per minute"), ("创建", "Created")]),
            rows: dd
                .store
                .list_partners()
                .await?
                .into_iter()
                .map(|p| {
                    vec![
                        p.id,
                        p.kind.code().to_owned(),
                        p.name,
                        format!("{:?}", p.status).to_lowercase(),
                        p.rate_limit_per_minute.map(|n| n.to_string()).unwrap_or_else(|| lang.pick("不限", "no limit").to_owned()),
                        when(p.created_at),
                    ]
                })
                .collect(),
        };
        Ok(Content { body, tables: vec![table, accounts, partners] })
    })
    .await
}
