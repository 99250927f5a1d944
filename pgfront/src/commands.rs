//! The statements the front end answers itself, read from their SQL text:
//! transaction control, `SET` and `SHOW`, cursors (`DECLARE`, `FETCH`,
//! `CLOSE`), `DEALLOCATE` and `DISCARD`, and what is refused. Also the
//! splitting of a simple query into its statements. Nothing here runs a
//! statement ([`crate::session`] does).

use std::time::Duration;

use crate::PgError;
use crate::session::Statement;

/// What the front end answers itself.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    /// Acknowledged with a tag (`BEGIN`, `SET`, `DISCARD ALL`, …); `tx` changes the transaction state.
    Tag { tag: &'static str, tx: Option<bool>, report: Option<(String, String)>, timeout: Option<Duration> },
    /// `SHOW name`.
    Show(String),
    /// `DECLARE name CURSOR FOR query`.
    Declare { name: String, query: Box<Statement> },
    /// `FETCH [FORWARD] [n | ALL] FROM name`.
    Fetch { name: String, count: Option<usize> },
    /// `CLOSE name` or `CLOSE ALL`.
    Close(Option<String>),
    /// `DEALLOCATE [PREPARE] name` or `DEALLOCATE ALL`.
    Deallocate(Option<String>),
    /// `DISCARD ALL` (or `PLANS`, `TEMP`, `SEQUENCES`): statements and portals freed.
    Discard,
    /// `ROLLBACK TO [SAVEPOINT] name`: the block goes on, no longer failed
    /// (nothing is written here, so a savepoint has nothing to undo).
    RollbackTo,
    /// Refused, with why.
    Refuse(PgError),
}

/// Splits a simple query into its statements at `;` outside quotes,
/// comments and dollar quotes.
pub(crate) fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                if let Some(len) = bytes[i + 1..].iter().position(|b| *b == b'$')
                    && bytes[i + 1..i + 1 + len].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
                {
                    let tag = &sql[i..i + len + 2];
                    match sql[i + len + 2..].find(tag) {
                        Some(end) => i += len + 2 + end + tag.len() - 1,
                        None => i = bytes.len(),
                    }
                }
            }
            b';' => {
                out.push(&sql[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&sql[start.min(sql.len())..]);
    let nonblank: Vec<&str> = out.into_iter().filter(|s| !strip_comments(s).is_empty()).collect();
    if nonblank.is_empty() { vec![""] } else { nonblank }
}

/// The statement without leading whitespace and comments.
pub(crate) fn strip_comments(sql: &str) -> &str {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map(|(_, r)| r).unwrap_or("").trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map(|(_, r)| r).unwrap_or("").trim_start();
        } else {
            return s.trim_end().trim_end_matches(';').trim_end();
        }
    }
}

pub(crate) fn unquote(value: &str) -> String {
    let v = value.trim();
    let v = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v);
    let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
    v.to_owned()
}

/// A `statement_timeout` value in milliseconds (`5000`, `'30s'`, `'2min'`).
pub(crate) fn timeout_ms(value: &str) -> Option<u64> {
    let v = unquote(value).to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: u64 = number.parse().ok()?;
    let per = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    // A number too large for milliseconds is no valid timeout (and loosens nothing).
    n.checked_mul(per)
}

/// Settings clients set that change nothing here.
const HARMLESS: &[&str] = &[
    "application_name",
    "extra_float_digits",
    "datestyle",
    "intervalstyle",
    "client_min_messages",
    "bytea_output",
    "search_path",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "jit",
    "default_transaction_isolation",
    "transaction_isolation",
    "idle_in_transaction_session_timeout",
    "lock_timeout",
    "plan_cache_mode",
    "timezone",
    "time zone",
    "session characteristics",
];

/// `SET …`: acknowledged when harmless, refused when it would loosen a limit.
pub(crate) fn set_command(rest: &str, limit: Duration) -> Command {
    let ok = |report: Option<(String, String)>, timeout: Option<Duration>| Command::Tag {
        tag: "SET",
        tx: None,
        report,
        timeout,
    };
    let lower = rest.to_ascii_lowercase();
    let lower = lower.trim_start_matches("session ").trim_start_matches("local ").trim();
    if lower.starts_with("transaction") || lower.starts_with("session characteristics") {
        if lower.contains("read write") {
            return Command::Refuse(PgError::error("25006", "the warehouse is read-only: READ WRITE is not available"));
        }
        return ok(None, None);
    }
    let (name, value) = match lower.split_once(" to ").or_else(|| lower.split_once('=')) {
        Some((n, v)) => (n.trim().to_owned(), v.trim().to_owned()),
        None if lower.starts_with("time zone") => ("timezone".to_owned(), lower["time zone".len()..].trim().to_owned()),
        None => (lower.to_owned(), String::new()),
    };
    let name = name.trim_matches('"').to_owned();
    let refuse = |why: String| {
        Command::Refuse(
            PgError::error("42501", format!("SET {name} is not allowed: {why}"))
                .hint("the engine's settings and the analysts' limits are fixed by the server"),
        )
    };
    match name.as_str() {
        "client_encoding" | "names" => {
            let v = unquote(&value).replace(['-', '_'], "");
            if v == "utf8" || v == "unicode" {
                ok(None, None)
            } else {
                Command::Refuse(PgError::error("22023", format!("client_encoding {value} is not available: only UTF8")))
            }
        }
        "standard_conforming_strings" if matches!(unquote(&value).as_str(), "on" | "true") => ok(None, None),
        "default_transaction_read_only" | "transaction_read_only"
            if matches!(unquote(&value).as_str(), "on" | "true" | "1") =>
        {
            ok(None, None)
        }
        "statement_timeout" => match timeout_ms(&value) {
            Some(0) => refuse("the time limit cannot be lifted".into()),
            Some(ms) if Duration::from_millis(ms) > limit => {
                refuse(format!("the time limit is at most {} s", limit.as_secs()))
            }
            Some(ms) => ok(None, Some(Duration::from_millis(ms))),
            None => Command::Refuse(PgError::error("22023", format!("invalid statement_timeout {value}"))),
        },
        n if HARMLESS.contains(&n) => {
            let report = (n == "application_name").then(|| ("application_name".to_owned(), unquote(&value)));
            ok(report, None)
        }
        _ => refuse(
            "only session settings clients send (application_name, DateStyle, statement_timeout …) are accepted".into(),
        ),
    }
}

/// What a statement is, by its first words; `None`: a query for DataFusion.
pub(crate) fn command(sql: &str, limit: Duration) -> Option<Command> {
    let lower = sql.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let tag = |tag: &'static str, tx: Option<bool>| Some(Command::Tag { tag, tx, report: None, timeout: None });
    match words.as_slice() {
        ["begin", ..] | ["start", "transaction", ..] => tag("BEGIN", Some(true)),
        ["commit", ..] | ["end", ..] => tag("COMMIT", Some(false)),
        ["rollback", "to", ..] => Some(Command::RollbackTo),
        ["rollback", ..] | ["abort", ..] => tag("ROLLBACK", Some(false)),
        // Drivers wrap their own queries in savepoints (psycopg's TypeInfo.fetch, SQLAlchemy's begin_nested).
        ["savepoint", ..] => tag("SAVEPOINT", None),
        ["release", ..] => tag("RELEASE", None),
        ["set", ..] => Some(set_command(sql.trim_start()[3..].trim(), limit)),
        ["reset", ..] => tag("RESET", None),
        ["discard", ..] => Some(Command::Discard),
        ["deallocate", "all"] | ["deallocate", "prepare", "all"] => Some(Command::Deallocate(None)),
        ["deallocate", "prepare", name] | ["deallocate", name] => {
            Some(Command::Deallocate(Some(sql.split_whitespace().last().unwrap_or(name).trim_matches('"').to_owned())))
        }
        ["unlisten", ..] => tag("UNLISTEN", None),
        ["show", "all"] => {
            Some(Command::Refuse(PgError::error("0A000", "SHOW ALL is not available: SHOW one setting")))
        }
        // SQLAlchemy's first question, and PostgreSQL's other multi-word SHOWs.
        ["show", "transaction", "isolation", "level"] => Some(Command::Show("transaction_isolation".to_owned())),
        ["show", "time", "zone"] => Some(Command::Show("TimeZone".to_owned())),
        ["show", "session", "authorization"] => Some(Command::Show("session_authorization".to_owned())),
        ["show", name] => Some(Command::Show(name.trim_matches('"').to_owned())),
        ["close", "all"] => Some(Command::Close(None)),
        ["close", name] => Some(Command::Close(Some(name.trim_matches('"').to_owned()))),
        ["fetch" | "move", ..] => Some(fetch_command(sql)),
        ["copy", ..] => Some(Command::Refuse(
            PgError::error("0A000", "COPY is not available in the read-only warehouse")
                .hint("export with a SELECT: results are streamed, up to the front end's row limit"),
        )),
        ["listen" | "notify" | "vacuum" | "analyze" | "lock" | "grant" | "revoke" | "prepare" | "execute", ..] => {
            Some(Command::Refuse(PgError::error(
                "25006",
                format!("the warehouse is read-only: {} is not available", words[0].to_uppercase()),
            )))
        }
        _ => None,
    }
}

pub(crate) fn fetch_command(sql: &str) -> Command {
    // FETCH [FORWARD | NEXT] [count | ALL] { FROM | IN } name
    let words: Vec<String> = sql.split_whitespace().map(str::to_owned).collect();
    let Some(at) = words.iter().rposition(|w| w.eq_ignore_ascii_case("from") || w.eq_ignore_ascii_case("in")) else {
        return Command::Refuse(PgError::error("42601", "FETCH needs FROM cursor_name"));
    };
    let Some(name) = words.get(at + 1) else {
        return Command::Refuse(PgError::error("42601", "FETCH needs a cursor name"));
    };
    let mut count = Some(1);
    for w in &words[1..at] {
        let w = w.to_ascii_lowercase();
        match w.as_str() {
            "forward" | "next" => {}
            "all" => count = None,
            n => match n.parse::<usize>() {
                Ok(n) => count = Some(n),
                Err(_) => {
                    return Command::Refuse(PgError::error(
                        "0A000",
                        format!("FETCH {w} is not available: only FORWARD"),
                    ));
                }
            },
        }
    }
    Command::Fetch { name: name.trim_matches('"').to_owned(), count }
}

/// `DECLARE name [BINARY] [NO SCROLL] CURSOR [WITH[OUT] HOLD] FOR query` → name and query.
pub(crate) fn declare(sql: &str) -> Option<(String, &str)> {
    let lower = sql.to_ascii_lowercase();
    let rest = lower.trim_start().strip_prefix("declare")?;
    let cursor_at = rest.find(" cursor ")?;
    let name = rest[..cursor_at].split_whitespace().next()?.trim_matches('"').to_owned();
    let for_at = rest[cursor_at..].find(" for ")? + cursor_at;
    let offset = sql.len() - sql.trim_start().len() + "declare".len() + for_at + " for ".len();
    Some((name, &sql[offset..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_queries_split_at_semicolons_outside_quotes_and_comments() {
        assert_eq!(split_statements("SELECT 1; SELECT ';'"), ["SELECT 1", " SELECT ';'"]);
        assert_eq!(split_statements("SELECT $$a;b$$; -- c;\n"), ["SELECT $$a;b$$"]);
        assert_eq!(split_statements("/* ; */ SELECT 2"), ["/* ; */ SELECT 2"]);
        assert_eq!(split_statements(""), [""]);
        assert_eq!(split_statements(";;"), [""]);
    }

    #[test]
    fn set_accepts_what_clients_send_and_refuses_what_loosens_a_limit() {
        let limit = Duration::from_secs(30);
        assert!(matches!(set_command("extra_float_digits = 3", limit), Command::Tag { tag: "SET", .. }));
        assert!(matches!(set_command("application_name = 'DBeaver'", limit), Command::Tag { report: Some(_), .. }));
        assert!(matches!(set_command("client_encoding to 'UTF8'", limit), Command::Tag { .. }));
        assert!(
            matches!(set_command("statement_timeout = '5s'", limit), Command::Tag { timeout: Some(t), .. } if t == Duration::from_secs(5))
        );
        for loosening in [
            "statement_timeout = 0",
            "statement_timeout = '10min'",
            "datafusion.execution.memory_limit = '10G'",
            "datafusion.runtime.memory_limit = '10G'",
            "work_mem = '1GB'",
            "client_encoding = 'GBK'",
        ] {
            assert!(matches!(set_command(loosening, limit), Command::Refuse(_)), "{loosening}");
        }
        assert!(matches!(set_command("SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", limit), Command::Refuse(_)));
    }

    #[test]
    fn cursors_are_declared_and_fetched_by_name() {
        let (name, query) =
            declare("DECLARE \"c1\" NO SCROLL CURSOR WITHOUT HOLD FOR SELECT * FROM cases").expect("declare");
        assert_eq!((name.as_str(), query), ("c1", "SELECT * FROM cases"));
        assert!(matches!(fetch_command("FETCH FORWARD 2000 FROM \"c1\""), Command::Fetch { count: Some(2000), .. }));
        assert!(matches!(fetch_command("fetch all in c1"), Command::Fetch { count: None, .. }));
        assert!(matches!(command("COPY cases TO '/tmp/x'", Duration::from_secs(1)), Some(Command::Refuse(_))));
    }
}
