//! `wangban config check|show`. Loading the settings already refuses unknown
//! keys, bad values and bad cron expressions (naming the key, and the line
//! and column in the file); `check` then looks at everything the settings
//! point to, so that `serve` does not fail at 3 a.m. on a file it reads late.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::{ConfigArgs, ConfigCommand};
use crate::settings::Settings;

/// One finding of `config check`.
struct Finding {
    level: Level,
    topic: &'static str,
    text: String,
}

#[derive(PartialEq)]
enum Level {
    Ok,
    Warning,
    Error,
}

pub(crate) async fn run(args: &ConfigArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    match args.command {
        ConfigCommand::Check { connect } => {
            let findings = check(settings, connect).await;
            for f in &findings {
                let tag = match f.level {
                    Level::Ok => "ok     ",
                    Level::Warning => "warning",
                    Level::Error => "error  ",
                };
                println!("{tag} {:<11} {}", f.topic, f.text);
            }
            let errors = findings.iter().filter(|f| f.level == Level::Error).count();
            let warnings = findings.iter().filter(|f| f.level == Level::Warning).count();
            if errors > 0 {
                eprintln!("error: the configuration has {errors} error(s) and {warnings} warning(s)");
                Ok(ExitCode::FAILURE)
            } else {
                eprintln!("the configuration is usable ({warnings} warning(s))");
                Ok(ExitCode::SUCCESS)
            }
        }
        ConfigCommand::Show => {
            print!("{}", show(settings)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The settings in force as TOML, with the database password and bank tokens masked.
pub(crate) fn show(settings: &Settings) -> anyhow::Result<String> {
    let mut value = toml::Value::try_from(settings)?;
    if let Some(url) = value.get_mut("database").and_then(|d| d.get_mut("url"))
        && let Some(text) = url.as_str()
    {
        *url = toml::Value::String(store::redact_url(text));
    }
    if let Some(banks) =
        value.get_mut("connectors").and_then(|c| c.get_mut("banks")).and_then(toml::Value::as_array_mut)
    {
        for bank in banks {
            if let Some(token) = bank.get_mut("token") {
                *token = toml::Value::String("***".into());
            }
        }
    }
    if let Some(url) = value.get_mut("alerts").and_then(|a| a.get_mut("webhook_url"))
        && let Some(text) = url.as_str()
    {
        *url = toml::Value::String(super::alerts::redact_webhook(text));
    }
    Ok(toml::to_string(&value)?)
}

async fn check(settings: &Settings, connect: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |level, topic, text: String| out.push(Finding { level, topic, text });

    match settings.calendar() {
        Ok(calendar) => push(Level::Ok, "calendar", format!("working days known for {:?}", calendar.years())),
        Err(e) => push(Level::Error, "calendar", format!("{e:#}")),
    }
    match settings.catalogue() {
        Ok(_) => push(Level::Ok, "catalogue", "business types and committed limits load".into()),
        Err(e) => push(Level::Error, "catalogue", format!("{e:#}")),
    }
    check_dir(&settings.data_dir, "data_dir", &mut push);
    let warehouse = settings.warehouse_dir();
    if warehouse.exists() {
        check_dir(&warehouse, "warehouse", &mut push);
    } else {
        push(Level::Ok, "warehouse", format!("{} will be created by the first refresh", warehouse.display()));
    }
    let key = settings.warehouse.key_file.clone().unwrap_or_else(|| settings.data_dir.join("warehouse.key"));
    match std::fs::metadata(&key) {
        Ok(meta) if meta.len() < 16 => {
            push(Level::Error, "warehouse", format!("key file {} is shorter than 16 bytes", key.display()))
        }
        Ok(meta) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                if meta.permissions().mode() & 0o077 != 0 {
                    push(
                        Level::Warning,
                        "warehouse",
                        format!("key file {} can be read by other users: chmod 600 it", key.display()),
                    );
                }
            }
            let _ = meta;
            push(Level::Ok, "warehouse", format!("key file {}", key.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => push(
            Level::Ok,
            "warehouse",
            format!("key file {} will be created (owner-only) by the first refresh", key.display()),
        ),
        Err(e) => push(Level::Error, "warehouse", format!("key file {}: {e}", key.display())),
    }
    if settings.warehouse.sql_max_rows == 0 || settings.warehouse.sql_timeout_seconds == 0 {
        push(Level::Error, "warehouse", "sql_max_rows and sql_timeout_seconds must be above 0".into());
    }
    if settings.warehouse.sql_memory_mb < 16 {
        push(
            Level::Warning,
            "warehouse",
            format!("sql_memory_mb = {} is too small for most queries", settings.warehouse.sql_memory_mb),
        );
    }

    let url = settings.database_url();
    if url.starts_with("sqlite:") {
        if !settings.server.listen.ip().is_loopback() {
            push(
                Level::Warning,
                "database",
                "SQLite with a server listening beyond this machine: production should use PostgreSQL".into(),
            );
        }
    } else if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
        push(Level::Error, "database", format!("{}: expected sqlite://PATH or postgres://…", store::redact_url(&url)));
    }
    if settings.database.max_connections == 0 {
        push(Level::Error, "database", "max_connections must be at least 1".into());
    }
    if connect {
        let options = store::ConnectOptions { max_connections: 1, ..Default::default() };
        match store::Store::connect_unmigrated(&url, &options).await {
            Ok(db) => {
                match db.schema_status().await {
                    Ok(s) if s.is_ahead() => push(
                        Level::Error,
                        "database",
                        format!("has {} migrations; this build knows only {}: upgrade wangban", s.applied, s.known),
                    ),
                    Ok(s) if s.applied < s.known => push(
                        Level::Ok,
                        "database",
                        format!(
                            "reachable; {} of {} migrations applied, the rest apply at the next start",
                            s.applied, s.known
                        ),
                    ),
                    Ok(s) => {
                        push(Level::Ok, "database", format!("reachable; schema up to date ({} migrations)", s.known))
                    }
                    Err(e) => push(Level::Error, "database", format!("reachable, but the schema cannot be read: {e}")),
                }
                db.close().await;
            }
            Err(e) => push(Level::Error, "database", format!("cannot open {}: {e}", store::redact_url(&url))),
        }
    } else {
        push(Level::Ok, "database", format!("{} (not opened; add --connect)", store::redact_url(&url)));
    }

    if !settings.server.listen.ip().is_loopback() && !settings.server.secure_cookies && settings.server.tls.is_none() {
        push(
            Level::Warning,
            "server",
            format!(
                "listening on {} over plain HTTP: configure [server.tls], or put TLS in front and set server.secure_cookies = true",
                settings.server.listen
            ),
        );
    } else {
        push(Level::Ok, "server", format!("listens on {}", settings.server.listen));
    }
    let entries = settings.connectors.entries();
    if entries.is_empty() && settings.partners.is_empty() {
        push(Level::Warning, "connectors", "none configured: nothing will be pulled".into());
    }
    // Each [partners.NAME] was checked field by field when the settings loaded.
    for (name, partner) in &settings.partners {
        let state = if partner.enabled { "enabled" } else { "disabled" };
        let from = match (&partner.table, &partner.http, &partner.files) {
            (Some(t), _, _) => format!("exchange table {} ({:?} mode)", t.table, t.mode),
            (None, Some(h), _) => format!("HTTP feed {}", h.url),
            (None, None, Some(f)) => format!("drop folder {} ({})", f.dir.display(), f.pattern),
            (None, None, None) => "nowhere".into(),
        };
        push(
            Level::Ok,
            "partners",
            format!(
                "{name} {state}: {} from {from}, {} fields mapped, schedule {:?}",
                partner.kind.name(),
                partner.fields.len(),
                partner.schedule
            ),
        );
    }
    for c in entries {
        let state = if c.enabled { "enabled" } else { "disabled" };
        if c.base_url.starts_with("http://") && !is_loopback_url(c.base_url) {
            push(Level::Warning, "connectors", format!("{} pulls over plain http from {}", c.name, c.base_url));
        }
        if c.kind == "bank" && c.token.is_some_and(str::is_empty) {
            push(Level::Error, "connectors", format!("{} has an empty token", c.name));
        }
        push(Level::Ok, "connectors", format!("{} {state}, schedule {:?}", c.name, c.schedule));
    }
    match settings.partner_tls() {
        Ok(tls) if tls == connectors::fetch::ClientTls::default() => {}
        Ok(tls) => push(
            Level::Ok,
            "connectors",
            format!(
                "https partners: system roots{}{}",
                if tls.ca_pem.is_some() { " plus connectors.ca_file" } else { "" },
                if tls.identity_pem.is_some() { "; client certificate presented when asked" } else { "" }
            ),
        ),
        Err(error) => push(Level::Error, "connectors", format!("{error:#}")),
    }
    if let Some(tls) = &settings.server.tls {
        match gateway::tls::server_config(&tls.files()) {
            Ok(_) => push(
                Level::Ok,
                "server",
                format!(
                    "serves HTTPS with {}; client certificates {}",
                    tls.cert_file.display(),
                    match (&tls.client_ca_file, tls.require_client_cert) {
                        (None, _) => "not asked for",
                        (Some(_), false) => "verified when presented",
                        (Some(_), true) => "required",
                    }
                ),
            ),
            Err(error) => push(Level::Error, "server", format!("[server.tls]: {error}")),
        }
    }
    let analytics = &settings.analytics;
    match analytics.pg_listen {
        None => push(Level::Ok, "analytics", "no PostgreSQL front end (set [analytics] pg_listen)".into()),
        Some(_) if analytics.pg_require_tls && settings.server.tls.is_none() => push(
            Level::Error,
            "analytics",
            "pg_require_tls needs [server.tls] (the certificate the PostgreSQL front end serves)".into(),
        ),
        Some(addr) => {
            let tls = match (settings.server.tls.is_some(), analytics.pg_require_tls) {
                (true, true) => "TLS required",
                (true, false) => "TLS offered",
                (false, _) => "no TLS",
            };
            let level =
                if addr.ip().is_loopback() || settings.server.tls.is_some() { Level::Ok } else { Level::Warning };
            push(
                level,
                "analytics",
                format!("PostgreSQL clients on {addr} ({tls}), at most {} rows a statement", analytics.pg_max_rows),
            );
        }
    }
    let alerts = &settings.alerts;
    match alerts.webhook_url.as_deref() {
        None => push(Level::Warning, "alerts", "no webhook_url: alerts show on the dashboards only".into()),
        Some(url) => push(Level::Ok, "alerts", format!("changes are posted to {}", super::alerts::redact_webhook(url))),
    }
    push(
        Level::Ok,
        "alerts",
        format!(
            "online rate trajectory {} → 90% by {}; seizures expiring within {} days; connector lag over {} h",
            alerts.baseline_month, alerts.target_month, alerts.seizure_expiry_days, alerts.connector_lag_hours
        ),
    );
    push(
        Level::Ok,
        "jobs",
        format!("seizure lapse {:?}, reconciliation {:?}", settings.jobs.seizure_lapse, settings.jobs.reconciliation),
    );
    out
}

fn check_dir(dir: &Path, topic: &'static str, push: &mut impl FnMut(Level, &'static str, String)) {
    if dir.exists() {
        if !dir.is_dir() {
            push(Level::Error, topic, format!("{} exists and is not a directory", dir.display()));
            return;
        }
        let probe = dir.join(format!(".wangban-config-check-{}", std::process::id()));
        match std::fs::write(&probe, b"") {
            Ok(()) => {
                let _ = std::fs::remove_file(&probe);
                push(Level::Ok, topic, format!("{} is writable", dir.display()));
            }
            Err(e) => push(Level::Error, topic, format!("{} is not writable: {e}", dir.display())),
        }
    } else {
        let parent = dir.ancestors().skip(1).find(|a| a.exists()).map(Path::to_path_buf);
        match parent {
            Some(p) if std::fs::metadata(&p).is_ok_and(|m| !m.permissions().readonly()) => {
                push(Level::Ok, topic, format!("{} will be created", dir.display()))
            }
            _ => push(Level::Error, topic, format!("{} does not exist and cannot be created", dir.display())),
        }
    }
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
