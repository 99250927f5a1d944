//! One logged-in connection: the protocol's state machine (the simple and
//! the extended query protocol, transaction states, statements and portals
//! planned against a snapshot and planned again when it changes), the
//! statements' audit, and `SHOW`. Statements the front end answers itself are
//! read in [`crate::commands`]; rows are sent by [`crate::rows`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::audit::Recorded;
use tokio::io::{AsyncRead, AsyncWrite};
use warehouse::datafusion::arrow::datatypes::DataType;
use warehouse::datafusion::common::ScalarValue;
use warehouse::datafusion::error::DataFusionError;
use warehouse::datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use warehouse::datafusion::prelude::SessionContext;

use crate::cancel::Cancel;
use crate::commands::{Command, command, declare, split_statements, strip_comments};
use crate::rows::{PumpError, Pumped, Running};
use crate::types::Kind;
use crate::wire::{Body, FieldDescription, Out, WireError};
use crate::{Inner, Login, PgError, catalog, send, types};

/// How long a last message (a `FATAL`) may take to send before the connection is dropped anyway.
const FAREWELL: Duration = Duration::from_secs(1);

/// A parsed statement.
#[derive(Debug, Clone)]
pub(crate) enum Statement {
    /// Nothing but whitespace and comments.
    Empty,
    /// A query DataFusion planned (read-only checked) against `snapshot`, with
    /// its parameters' types (and the OIDs the client declared, to plan it again).
    Query {
        sql: String,
        plan: LogicalPlan,
        params: Vec<DataType>,
        fields: Vec<(String, Kind)>,
        snapshot: Box<Planned>,
        declared: Vec<u32>,
    },
    /// A statement answered by the front end itself.
    Command { sql: String, command: Command },
}

/// The snapshot a query was planned against, and the session that planned it
/// (which runs it: a plan never mixes two snapshots' tables).
#[derive(Clone)]
pub(crate) struct Planned {
    id: String,
    ctx: SessionContext,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Planned").field(&self.id).finish()
    }
}

/// A bound statement.
pub(crate) struct Portal {
    statement: Statement,
    formats: Vec<i16>,
    /// The parameters' values, to bind again when the statement is planned again.
    values: Vec<ScalarValue>,
    running: Option<Running>,
}

/// Prepared statements and portals one connection may hold; more are refused (`54000`).
pub(crate) const MAX_STATEMENTS: usize = 1000;
/// Portals and cursors one connection may hold open.
pub(crate) const MAX_PORTALS: usize = 100;

pub(crate) struct Session<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) login: Login,
    pub(crate) pid: i32,
    pub(crate) cancel: Arc<Cancel>,
    /// The cancel count when the statement being run began.
    pub(crate) mark: u64,
    /// When the message being answered must have sent its rows (its wall-clock limit).
    pub(crate) wall: Instant,
    /// Reader pins made by this connection (their names' counter).
    pub(crate) pins: u64,
    pub(crate) ctx: Option<(String, SessionContext)>,
    pub(crate) statements: HashMap<String, Statement>,
    /// Bound statements, and cursors (`DECLARE`: a portal by the cursor's name, as in PostgreSQL).
    pub(crate) portals: HashMap<String, Portal>,
    pub(crate) in_tx: bool,
    pub(crate) failed_tx: bool,
    pub(crate) settings: HashMap<String, String>,
    pub(crate) timeout: Duration,
}

pub(crate) fn formats_for(formats: &[i16], n: usize) -> Vec<i16> {
    match formats {
        [] => vec![0; n],
        [one] => vec![*one; n],
        many => many.to_vec(),
    }
}

fn describe(fields: &[(String, Kind)], formats: &[i16]) -> Vec<FieldDescription> {
    let formats = formats_for(formats, fields.len());
    fields
        .iter()
        .zip(formats)
        .map(|((name, kind), format)| FieldDescription {
            name: name.clone(),
            type_oid: kind.oid(),
            type_len: kind.type_len(),
            format,
        })
        .collect()
}

/// The SQLSTATE and message of a DataFusion error.
pub(crate) fn df_error(e: &DataFusionError, memory_mb: usize) -> PgError {
    let text = e.to_string();
    match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => {
            PgError::error("53200", warehouse::console::exhausted(memory_mb, &text))
                .hint("narrow it (a month, a district) or count from case_counts")
        }
        DataFusionError::SQL(..) => PgError::error("42601", text),
        DataFusionError::NotImplemented(_) => PgError::error("0A000", text),
        DataFusionError::SchemaError(..) => PgError::error("42703", text),
        DataFusionError::Plan(_) if text.contains("table") && text.contains("not found") => {
            PgError::error("42P01", text)
        }
        DataFusionError::Plan(_) if text.contains("function") => PgError::error("42883", text),
        DataFusionError::Plan(_) => PgError::error("42000", text),
        _ => PgError::error("XX000", text),
    }
}

fn read_only_error(e: &DataFusionError) -> PgError {
    PgError::error("25006", format!("the warehouse is read-only: {}", e.find_root()))
        .hint("only queries (SELECT, WITH, EXPLAIN) are allowed")
}

impl<'a> Session<'a> {
    pub(crate) fn new(inner: &'a Inner, login: Login, pid: i32, cancel: Arc<Cancel>) -> Self {
        let mut settings = HashMap::new();
        if let Some(name) = login.params.get("application_name") {
            settings.insert("application_name".to_owned(), name.clone());
        }
        Session {
            inner,
            timeout: inner.sources.sql_limits.timeout,
            login,
            pid,
            cancel,
            mark: 0,
            wall: Instant::now(),
            pins: 0,
            ctx: None,
            statements: HashMap::new(),
            portals: HashMap::new(),
            in_tx: false,
            failed_tx: false,
            settings,
        }
    }

    pub(crate) fn memory_mb(&self) -> usize {
        self.inner.sources.sql_limits.memory_bytes >> 20
    }

    /// The id of the snapshot the warehouse names current.
    fn current_snapshot(&self) -> Result<String, PgError> {
        warehouse::snapshot::current_id(self.inner.sources.kpis.root())
            .map_err(|e| PgError::error("58030", format!("the warehouse cannot be read: {e}")))?
            .ok_or_else(|| {
                PgError::error("55000", "the warehouse has no snapshot yet").hint("run `wangban warehouse refresh`")
            })
    }

    /// The session over the current snapshot (a new one when the snapshot
    /// changed), and that snapshot's id.
    async fn context(&mut self) -> Result<(String, SessionContext), PgError> {
        // One small read per statement: a new session only when the snapshot changed.
        let current = self.current_snapshot()?;
        if let Some((id, ctx)) = &self.ctx
            && *id == current
        {
            return Ok((id.clone(), ctx.clone()));
        }
        let (ctx, id) = self.inner.sources.kpis.console_session_of_snapshot().await.map_err(|e| match e {
            warehouse::WarehouseError::NoSnapshot(m) => PgError::error("55000", m),
            other => PgError::error("58030", other.to_string()),
        })?;
        let setup = async {
            ctx.sql("SET datafusion.sql_parser.dialect = 'PostgreSQL'").await?;
            catalog::install(&ctx, &self.login.account.name, self.pid).await?;
            catalog::install_user(&ctx, &self.login.account.name);
            Ok::<_, DataFusionError>(())
        };
        setup.await.map_err(|e| PgError::error("XX000", format!("the session could not be set up: {e}")))?;
        self.ctx = Some((id.clone(), ctx.clone()));
        Ok((id, ctx))
    }

    /// `statement` planned again when the snapshot it was planned against is
    /// no longer current, so that a prepared statement answers from the
    /// current snapshot (and never from a removed one). Its columns must not
    /// change, as PostgreSQL requires of a cached plan.
    async fn replanned(&mut self, statement: Statement) -> Result<Statement, PgError> {
        let (sql, snapshot, declared, fields) = match &statement {
            Statement::Query { sql, snapshot, declared, fields, .. } => (sql, snapshot, declared, fields),
            Statement::Command { command: Command::Declare { name, query }, sql } => {
                let query = Box::pin(self.replanned(query.as_ref().clone())).await?;
                let command = Command::Declare { name: name.clone(), query: Box::new(query) };
                return Ok(Statement::Command { sql: sql.clone(), command });
            }
            _ => return Ok(statement),
        };
        if snapshot.id == self.current_snapshot()? {
            return Ok(statement);
        }
        let fresh = self.prepare(&sql.clone(), &declared.clone()).await?;
        match &fresh {
            Statement::Query { fields: now, .. } if now != fields => {
                Err(PgError::error("0A000", "cached plan must not change result type")
                    .hint("the warehouse's tables changed since the statement was prepared: prepare it again"))
            }
            _ => Ok(fresh),
        }
    }

    /// Parses and plans one statement; `declared` are the parameter types the client gave.
    async fn prepare(&mut self, sql: &str, declared: &[u32]) -> Result<Statement, PgError> {
        let body = strip_comments(sql);
        if body.is_empty() {
            return Ok(Statement::Empty);
        }
        if let Some((name, query)) = declare(body) {
            let query = Box::pin(self.prepare(query, declared)).await?;
            if !matches!(query, Statement::Query { .. }) {
                return Err(PgError::error("42601", "DECLARE … CURSOR FOR needs a query"));
            }
            return Ok(Statement::Command {
                sql: sql.to_owned(),
                command: Command::Declare { name, query: Box::new(query) },
            });
        }
        if let Some(command) = command(body, self.inner.sources.sql_limits.timeout) {
            return Ok(Statement::Command { sql: sql.to_owned(), command });
        }
        let (snapshot, ctx) = self.context().await?;
        let state = ctx.state();
        let plan = match state.create_logical_plan(body).await {
            Ok(plan) => plan,
            Err(e) => {
                // PostgreSQL-only syntax of clients' catalog queries (and `current_user`): rewritten and
                // tried again, only for a query that reads no warehouse table.
                let reads = catalog::reads(body);
                if reads == catalog::Reads::Warehouse {
                    return Err(df_error(&e, self.memory_mb()));
                }
                let rewritten = catalog::rewrite(body);
                let again = if rewritten == body { None } else { state.create_logical_plan(&rewritten).await.ok() };
                match again {
                    Some(plan) => plan,
                    // A metadata query about objects this catalog lacks: no rows, as for an object that is not there.
                    None if reads == catalog::Reads::CatalogOnly => {
                        tracing::debug!(message = "catalog query answered empty", error = %e, sql = %rewritten);
                        LogicalPlanBuilder::empty(false).build().map_err(|e| df_error(&e, self.memory_mb()))?
                    }
                    None => return Err(df_error(&e, self.memory_mb())),
                }
            }
        };
        warehouse::console::read_only().verify_plan(&plan).map_err(|e| read_only_error(&e))?;
        let types = plan.get_parameter_types().map_err(|e| df_error(&e, self.memory_mb()))?;
        let count = types
            .keys()
            .filter_map(|k| k.trim_start_matches('$').parse::<usize>().ok())
            .max()
            .unwrap_or(0)
            .max(declared.len());
        let params = (1..=count)
            .map(|i| {
                declared
                    .get(i - 1)
                    .and_then(|o| types::param_type(*o))
                    .or_else(|| types.get(&format!("${i}")).cloned().flatten())
                    .unwrap_or(DataType::Utf8)
            })
            .collect();
        let fields = plan.schema().fields().iter().map(|f| (f.name().clone(), Kind::of(f.data_type()))).collect();
        let snapshot = Box::new(Planned { id: snapshot, ctx });
        Ok(Statement::Query { sql: sql.to_owned(), plan, params, fields, snapshot, declared: declared.to_vec() })
    }

    /// Starts running a query planned against `snapshot`: pins the snapshot
    /// while its rows are read, and audits the statement before any row
    /// leaves (a statement that cannot be audited is not answered).
    async fn start(
        &mut self,
        sql: &str,
        plan: LogicalPlan,
        fields: Vec<(String, Kind)>,
        snapshot: &Planned,
    ) -> Result<Running, PgError> {
        let started = Instant::now();
        let result = self.start_stream(sql, plan, fields, snapshot, started).await;
        let audited = match &result {
            Ok(_) => self.audit(sql, None, None, started.elapsed()).await,
            Err(e) => self.audit(sql, None, Some(e), started.elapsed()).await,
        };
        match (result, audited) {
            (Ok(running), Ok(())) => Ok(running),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    }

    async fn start_stream(
        &mut self,
        sql: &str,
        plan: LogicalPlan,
        fields: Vec<(String, Kind)>,
        snapshot: &Planned,
        started: Instant,
    ) -> Result<Running, PgError> {
        let ctx = snapshot.ctx.clone();
        self.pins += 1;
        let pin_name = format!("{}{}-{}", crate::READER_PIN_PREFIX, self.pid, self.pins);
        let pin = warehouse::snapshot::ReaderPin::hold(self.inner.sources.kpis.root(), &pin_name, &snapshot.id)
            .map_err(|e| PgError::error("58030", format!("the snapshot could not be pinned: {e}")))?;
        let memory_mb = self.memory_mb();
        let stream = async { ctx.execute_logical_plan(plan).await?.execute_stream().await };
        let stream = tokio::select! {
            s = tokio::time::timeout(self.timeout, stream) => s
                .map_err(|_| self.timed_out())?
                .map_err(|e| df_error(&e, memory_mb))?,
            () = self.cancel.after(self.mark) => return Err(cancelled()),
        };
        Ok(Running {
            stream: Some(std::sync::Mutex::new(stream)),
            pending: None,
            fields,
            rows: 0,
            busy: started.elapsed(),
            started,
            sql: sql.to_owned(),
            audited: false,
            _pin: Some(pin),
        })
    }

    pub(crate) fn timed_out(&self) -> PgError {
        PgError::error("57014", format!("canceling statement due to statement timeout ({} s)", self.timeout.as_secs()))
            .hint("narrow the query (a month, a district) or count from case_counts")
    }

    /// Records a statement in the audit log.
    async fn audit(
        &self,
        sql: &str,
        rows: Option<usize>,
        error: Option<&PgError>,
        elapsed: Duration,
    ) -> Result<(), PgError> {
        let now = (self.inner.sources.clock)();
        let entry = Recorded::WarehouseSql {
            error: error.map(|e| format!("{}: {}", e.code, e.message)),
            millis: Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
            rows,
            sql,
        };
        self.inner.sources.store.record(now, &self.login.account.name, "pgwire", &entry).await.map_err(|e| {
            PgError::error("XX000", format!("the statement could not be audited, so it is not answered: {e}"))
        })
    }

    /// Audits a running query that ended, whether or not all of it was sent.
    pub(crate) async fn finish(&self, running: &mut Running, error: Option<&PgError>) -> Result<(), PgError> {
        if running.audited {
            return Ok(());
        }
        running.audited = true;
        self.audit(&running.sql, Some(running.rows), error, running.started.elapsed()).await
    }

    /// Runs a command; writes its answer (not `ReadyForQuery`).
    async fn run_command<S: AsyncWrite + Unpin>(
        &mut self,
        sql: &str,
        command: &Command,
        formats: &[i16],
        stream: &mut S,
        out: &mut Out,
        described: bool,
    ) -> Result<(), PgError> {
        let started = Instant::now();
        match command {
            Command::Refuse(e) => {
                self.audit(sql, None, Some(e), started.elapsed()).await?;
                return Err(e.clone());
            }
            Command::Tag { tag, tx, report, timeout } => {
                if let Some(tx) = tx {
                    self.in_tx = *tx;
                    self.failed_tx = false;
                    if !*tx {
                        self.close_all_portals().await;
                    }
                }
                if let Some((name, value)) = report {
                    self.settings.insert(name.clone(), value.clone());
                    out.parameter_status(name, value);
                }
                if let Some(t) = timeout {
                    self.timeout = *t;
                }
                self.audit(sql, Some(0), None, started.elapsed()).await?;
                out.command_complete(tag);
            }
            Command::Show(name) => {
                let value = self.show(name)?;
                if !described {
                    out.row_description(&describe(&[(name.clone(), Kind::Text)], formats));
                }
                let row = out.begin_row(1);
                out.value(|b| b.extend_from_slice(value.as_bytes()));
                out.end_row(row);
                self.audit(sql, Some(1), None, started.elapsed()).await?;
                out.command_complete("SHOW");
            }
            Command::Declare { name, query } => {
                let Statement::Query { sql: query_sql, plan, fields, snapshot, params, .. } = query.as_ref() else {
                    return Err(PgError::error("42601", "DECLARE … CURSOR FOR needs a query"));
                };
                if !params.is_empty() {
                    return Err(PgError::error(
                        "08P01",
                        "a DECLARE whose query has $1 parameters needs the extended protocol (Parse/Bind)",
                    ));
                }
                if self.portals.contains_key(name) {
                    return Err(PgError::error("42P03", format!("cursor \"{name}\" already exists")));
                }
                if self.portals.len() >= MAX_PORTALS {
                    return Err(too_many_portals());
                }
                // Audited by start, whether it starts or fails.
                let running = self.start(query_sql, plan.clone(), fields.clone(), snapshot).await?;
                let binary =
                    sql.to_ascii_lowercase().split_whitespace().take_while(|w| *w != "cursor").any(|w| w == "binary");
                let portal = Portal {
                    statement: query.as_ref().clone(),
                    formats: vec![i16::from(binary)],
                    values: Vec::new(),
                    running: Some(running),
                };
                self.portals.insert(name.clone(), portal);
                out.command_complete("DECLARE CURSOR");
            }
            Command::Fetch { name, count } => {
                let Some(mut portal) = self.portals.remove(name) else {
                    return Err(PgError::error("34000", format!("cursor \"{name}\" does not exist")));
                };
                let Some(running) = portal.running.as_mut() else {
                    self.portals.insert(name.clone(), portal);
                    return Err(PgError::error("34000", format!("\"{name}\" is not a cursor")));
                };
                // A FETCH answers in its own portal's formats when bound (extended protocol), else the cursor's.
                let formats = if described { formats.to_vec() } else { portal.formats.clone() };
                if !described {
                    out.row_description(&describe(&running.fields, &formats));
                }
                let limit = count.unwrap_or(usize::MAX);
                let before = running.rows;
                let pumped = self.pump(running, &formats, Some(limit), stream, out).await;
                let result = match pumped {
                    Ok(Pumped::Done { .. }) => {
                        let sent = running.rows - before;
                        let audited = self.finish(running, None).await;
                        out.command_complete(&format!("FETCH {sent}"));
                        audited
                    }
                    Ok(Pumped::Suspended) => {
                        out.command_complete(&format!("FETCH {}", running.rows - before));
                        Ok(())
                    }
                    Err(PumpError::Pg(e)) => {
                        let _ = self.finish(running, Some(&e)).await;
                        Err(e)
                    }
                    Err(PumpError::Io(e)) => Err(PgError::fatal("08006", e.to_string())),
                };
                self.portals.insert(name.clone(), portal);
                result?;
            }
            Command::Close(name) => {
                let names: Vec<String> = match name {
                    Some(n) => vec![n.clone()],
                    None => self.portals.keys().cloned().collect(),
                };
                for n in names {
                    match self.portals.remove(&n) {
                        Some(mut portal) => {
                            if let Some(running) = portal.running.as_mut() {
                                self.finish(running, None).await?;
                            }
                        }
                        None if name.is_some() => {
                            return Err(PgError::error("34000", format!("cursor \"{n}\" does not exist")));
                        }
                        None => {}
                    }
                }
                out.command_complete("CLOSE CURSOR");
            }
            Command::Deallocate(name) => {
                match name {
                    Some(n) if self.statements.remove(n).is_none() => {
                        return Err(PgError::error("26000", format!("prepared statement \"{n}\" does not exist")));
                    }
                    Some(_) => {}
                    None => self.statements.retain(|name, _| name.is_empty()),
                }
                self.audit(sql, Some(0), None, started.elapsed()).await?;
                out.command_complete(if name.is_some() { "DEALLOCATE" } else { "DEALLOCATE ALL" });
            }
            Command::RollbackTo => {
                self.failed_tx = false;
                self.audit(sql, Some(0), None, started.elapsed()).await?;
                out.command_complete("ROLLBACK");
            }
            Command::Discard => {
                self.close_all_portals().await;
                self.statements.clear();
                self.audit(sql, Some(0), None, started.elapsed()).await?;
                out.command_complete("DISCARD ALL");
            }
        }
        Ok(())
    }

    fn show(&self, name: &str) -> Result<String, PgError> {
        let lower = name.to_ascii_lowercase();
        if let Some(v) = self.settings.get(&lower) {
            return Ok(v.clone());
        }
        match lower.as_str() {
            "session_authorization" => return Ok(self.login.account.name.clone()),
            "application_name" => return Ok(String::new()),
            "statement_timeout" => return Ok(format!("{}ms", self.timeout.as_millis())),
            "idle_in_transaction_session_timeout" => {
                return Ok(format!("{}ms", self.inner.limits.idle_in_transaction.as_millis()));
            }
            _ => {}
        }
        crate::params::fixed(&lower)
            .map(str::to_owned)
            .ok_or_else(|| PgError::error("42704", format!("unrecognized configuration parameter \"{name}\"")))
    }

    async fn close_all_portals(&mut self) {
        let portals: Vec<Portal> = self.portals.drain().map(|(_, p)| p).collect();
        for mut portal in portals {
            if let Some(running) = portal.running.as_mut() {
                let _ = self.finish(running, None).await;
            }
        }
    }

    /// Runs the statements of a simple `Query` message.
    async fn simple_query<S: AsyncWrite + Unpin>(
        &mut self,
        sql: &str,
        stream: &mut S,
        out: &mut Out,
    ) -> Result<(), WireError> {
        for text in split_statements(sql) {
            let started = Instant::now();
            let ends_block = {
                let lower = strip_comments(text).to_ascii_lowercase();
                ["commit", "end", "rollback", "abort"].iter().any(|w| lower.split_whitespace().next() == Some(w))
            };
            if self.failed_tx && !ends_block {
                PgError::error(
                    "25P02",
                    "current transaction is aborted, commands ignored until end of transaction block",
                )
                .write(out);
                break;
            }
            let result = match self.prepare(text, &[]).await {
                Err(e) => {
                    let audited = self.audit(text, None, Some(&e), started.elapsed()).await;
                    Err(audited.err().unwrap_or(e))
                }
                Ok(Statement::Empty) => {
                    out.empty(b'I');
                    Ok(())
                }
                Ok(Statement::Command { sql, command }) => {
                    self.run_command(&sql, &command, &[], stream, out, false).await
                }
                Ok(Statement::Query { sql, plan, fields, params, snapshot, .. }) => {
                    if !params.is_empty() {
                        Err(PgError::error(
                            "08P01",
                            "a query with $1 parameters needs the extended protocol (Parse/Bind)",
                        ))
                    } else {
                        self.run_to_end(&sql, plan, fields, &snapshot, stream, out).await
                    }
                }
            };
            if let Err(e) = result {
                e.write(out);
                if e.severity == "FATAL" {
                    let _ = tokio::time::timeout(FAREWELL, send(stream, out)).await;
                    return Err(WireError::Protocol(e.message));
                }
                if self.in_tx {
                    self.failed_tx = true;
                }
                break;
            }
        }
        self.ready(out);
        send(stream, out).await?;
        Ok(())
    }

    /// Runs a query and sends all of it (simple protocol).
    async fn run_to_end<S: AsyncWrite + Unpin>(
        &mut self,
        sql: &str,
        plan: LogicalPlan,
        fields: Vec<(String, Kind)>,
        snapshot: &Planned,
        stream: &mut S,
        out: &mut Out,
    ) -> Result<(), PgError> {
        let mut running = self.start(sql, plan, fields, snapshot).await?;
        out.row_description(&describe(&running.fields, &[]));
        self.complete(&mut running, &[], None, stream, out).await.map(|_| ())
    }

    fn ready(&self, out: &mut Out) {
        // ReadyForQuery with the transaction state: idle, in a block, or in a failed block.
        let status = if !self.in_tx {
            b'I'
        } else if self.failed_tx {
            b'E'
        } else {
            b'T'
        };
        let at = out.buf.len();
        out.ready();
        if let Some(last) = out.buf.get_mut(at + 5) {
            *last = status;
        }
    }

    /// Serves the connection until the client leaves.
    pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        mut self,
        stream: &mut S,
        mut out: Out,
    ) -> Result<(), WireError> {
        // After an error in the extended protocol, messages are skipped until Sync.
        let mut skipping = false;
        let result = loop {
            // An open transaction block, portal or cursor holds the analysts' shared memory: it may idle only so long.
            let holding = self.in_tx || !self.portals.is_empty();
            let read = crate::wire::read_message(stream);
            let message = if holding {
                match tokio::time::timeout(self.inner.limits.idle_in_transaction, read).await {
                    Ok(message) => message?,
                    Err(_) => {
                        self.close_all_portals().await;
                        let e = PgError::fatal(
                            "25P03",
                            format!(
                                "terminating connection due to idle-in-transaction timeout ({} s with a transaction or cursor open)",
                                self.inner.limits.idle_in_transaction.as_secs()
                            ),
                        );
                        e.write(&mut out);
                        let _ = tokio::time::timeout(FAREWELL, send(stream, &mut out)).await;
                        break Err(WireError::Protocol(e.message));
                    }
                }
            } else {
                read.await?
            };
            let Some(message) = message else { break Ok(()) };
            if skipping && !matches!(message.tag, b'S' | b'X') {
                continue;
            }
            self.mark = self.cancel.mark();
            self.wall = Instant::now() + self.inner.limits.statement_wall;
            let result = match message.tag {
                b'Q' => {
                    let sql = Body::new(&message.body).cstr()?;
                    self.simple_query(&sql, stream, &mut out).await?;
                    Ok(())
                }
                b'P' => self.parse(&message.body, &mut out).await,
                b'B' => self.bind(&message.body, &mut out).await,
                b'D' => self.describe(&message.body, &mut out),
                b'E' => self.execute(&message.body, stream, &mut out).await,
                b'C' => self.close(&message.body, &mut out).await,
                b'H' => {
                    send(stream, &mut out).await?;
                    Ok(())
                }
                b'S' => {
                    skipping = false;
                    if !self.in_tx {
                        self.close_all_portals().await;
                    }
                    self.ready(&mut out);
                    send(stream, &mut out).await?;
                    Ok(())
                }
                b'X' => break Ok(()),
                b'F' => Err(PgError::error("0A000", "the function call protocol is not available")),
                b'd' | b'c' | b'f' => Err(PgError::error("08P01", "no COPY is in progress")),
                other => {
                    let e = PgError::fatal("08P01", format!("unknown message type {:?}", other as char));
                    e.write(&mut out);
                    send(stream, &mut out).await?;
                    break Err(WireError::Protocol(e.message));
                }
            };
            if let Err(e) = result {
                e.write(&mut out);
                if e.severity == "FATAL" {
                    let _ = tokio::time::timeout(FAREWELL, send(stream, &mut out)).await;
                    break Err(WireError::Protocol(e.message));
                }
                if self.in_tx {
                    self.failed_tx = true;
                }
                skipping = true;
            }
        };
        self.close_all_portals().await;
        result
    }

    async fn parse(&mut self, body: &[u8], out: &mut Out) -> Result<(), PgError> {
        let mut b = Body::new(body);
        let name = b.cstr().map_err(protocol)?;
        let sql = b.cstr().map_err(protocol)?;
        let n = b.i16().map_err(protocol)?;
        let declared =
            (0..n.max(0)).map(|_| b.i32().map(|o| o as u32)).collect::<Result<Vec<_>, _>>().map_err(protocol)?;
        let started = Instant::now();
        let statement = match self.prepare(&sql, &declared).await {
            Ok(s) => s,
            Err(e) => {
                self.audit(&sql, None, Some(&e), started.elapsed()).await?;
                return Err(e);
            }
        };
        if !name.is_empty() && self.statements.contains_key(&name) {
            return Err(PgError::error("42P05", format!("prepared statement \"{name}\" already exists")));
        }
        if !self.statements.contains_key(&name) && self.statements.len() >= MAX_STATEMENTS {
            return Err(PgError::error(
                "54000",
                format!("too many prepared statements (at most {MAX_STATEMENTS} a connection)"),
            )
            .hint("close statements you no longer use (Close, or DEALLOCATE name)"));
        }
        self.statements.insert(name, statement);
        out.empty(b'1');
        Ok(())
    }

    async fn bind(&mut self, body: &[u8], out: &mut Out) -> Result<(), PgError> {
        let mut b = Body::new(body);
        let portal = b.cstr().map_err(protocol)?;
        let name = b.cstr().map_err(protocol)?;
        let n = b.i16().map_err(protocol)?.max(0) as usize;
        let param_formats = (0..n).map(|_| b.i16()).collect::<Result<Vec<_>, _>>().map_err(protocol)?;
        let count = b.i16().map_err(protocol)?.max(0) as usize;
        let mut raw = Vec::with_capacity(count);
        for _ in 0..count {
            let len = b.i32().map_err(protocol)?;
            raw.push(if len < 0 { None } else { Some(b.take(len as usize).map_err(protocol)?.to_vec()) });
        }
        let r = b.i16().map_err(protocol)?.max(0) as usize;
        let formats = (0..r).map(|_| b.i16()).collect::<Result<Vec<_>, _>>().map_err(protocol)?;
        let statement = self
            .statements
            .get(&name)
            .cloned()
            .ok_or_else(|| PgError::error("26000", format!("prepared statement \"{name}\" does not exist")))?;
        // Planned again when the snapshot changed since the Parse (pooled clients keep statements for hours).
        let statement = self.replanned(statement).await?;
        self.statements.insert(name, statement.clone());
        let values = read_values(&statement, &raw, &param_formats)?;
        let statement = with_values(statement, &values, self.memory_mb())?;
        if !self.portals.contains_key(&portal) && self.portals.len() >= MAX_PORTALS {
            return Err(too_many_portals());
        }
        self.portals.insert(portal, Portal { statement, formats, values, running: None });
        out.empty(b'2');
        Ok(())
    }

    fn describe(&mut self, body: &[u8], out: &mut Out) -> Result<(), PgError> {
        let mut b = Body::new(body);
        let what = b.u8().map_err(protocol)?;
        let name = b.cstr().map_err(protocol)?;
        let (statement, formats) = match what {
            b'S' => {
                let s = self
                    .statements
                    .get(&name)
                    .ok_or_else(|| PgError::error("26000", format!("prepared statement \"{name}\" does not exist")))?;
                let oids: Vec<u32> = match query_of(s) {
                    Some(Statement::Query { params, declared, .. }) => params
                        .iter()
                        .enumerate()
                        .map(|(i, t)| declared.get(i).copied().filter(|o| *o != 0).unwrap_or_else(|| Kind::of(t).oid()))
                        .collect(),
                    _ => Vec::new(),
                };
                out.parameter_description(&oids);
                (s, Vec::new())
            }
            b'P' => {
                let p = self
                    .portals
                    .get(&name)
                    .ok_or_else(|| PgError::error("34000", format!("portal \"{name}\" does not exist")))?;
                (&p.statement, p.formats.clone())
            }
            other => return Err(PgError::fatal("08P01", format!("Describe of {:?}", other as char))),
        };
        match statement {
            Statement::Query { fields, .. } => out.row_description(&describe(fields, &formats)),
            Statement::Command { command: Command::Show(name), .. } => {
                out.row_description(&describe(&[(name.clone(), Kind::Text)], &formats));
            }
            Statement::Command { command: Command::Fetch { name, .. }, .. } => {
                match self.portals.get(name).and_then(|p| p.running.as_ref()) {
                    Some(running) => out.row_description(&describe(&running.fields, &formats)),
                    None => return Err(PgError::error("34000", format!("cursor \"{name}\" does not exist"))),
                }
            }
            _ => out.empty(b'n'),
        }
        Ok(())
    }

    async fn execute<S: AsyncWrite + Unpin>(
        &mut self,
        body: &[u8],
        stream: &mut S,
        out: &mut Out,
    ) -> Result<(), PgError> {
        let mut b = Body::new(body);
        let name = b.cstr().map_err(protocol)?;
        let max = b.i32().map_err(protocol)?;
        let limit = (max > 0).then_some(max as usize);
        let Some(mut portal) = self.portals.remove(&name) else {
            return Err(PgError::error("34000", format!("portal \"{name}\" does not exist")));
        };
        if self.failed_tx
            && !matches!(
                &portal.statement,
                Statement::Command { command: Command::Tag { tx: Some(false), .. } | Command::RollbackTo, .. }
            )
        {
            self.portals.insert(name, portal);
            return Err(PgError::error(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        let result = match &portal.statement {
            Statement::Empty => {
                out.empty(b'I');
                Ok(())
            }
            Statement::Command { sql, command } => {
                let (sql, command) = (sql.clone(), command.clone());
                self.run_command(&sql, &command, &portal.formats, stream, out, true).await
            }
            Statement::Query { .. } => {
                if portal.running.is_none() {
                    // Planned again, with the same values, when the snapshot changed since the Bind.
                    let started = Instant::now();
                    let fresh = match self.replanned(portal.statement.clone()).await {
                        Ok(fresh) => with_values(fresh, &portal.values, self.memory_mb()),
                        Err(e) => Err(e),
                    };
                    match fresh {
                        Ok(fresh) => portal.statement = fresh,
                        Err(e) => {
                            if let Statement::Query { sql, .. } = &portal.statement {
                                self.audit(sql, None, Some(&e), started.elapsed()).await?;
                            }
                            return Err(e);
                        }
                    }
                    if let Statement::Query { sql, plan, fields, snapshot, .. } = &portal.statement {
                        portal.running = Some(self.start(sql, plan.clone(), fields.clone(), snapshot).await?);
                    }
                }
                let formats = portal.formats.clone();
                match portal.running.as_mut() {
                    Some(running) => self.complete(running, &formats, limit, stream, out).await.map(|_| ()),
                    None => Ok(()),
                }
            }
        };
        self.portals.insert(name, portal);
        result
    }

    async fn close(&mut self, body: &[u8], out: &mut Out) -> Result<(), PgError> {
        let mut b = Body::new(body);
        let what = b.u8().map_err(protocol)?;
        let name = b.cstr().map_err(protocol)?;
        match what {
            b'S' => {
                self.statements.remove(&name);
            }
            b'P' => {
                if let Some(mut portal) = self.portals.remove(&name)
                    && let Some(running) = portal.running.as_mut()
                {
                    self.finish(running, None).await?;
                }
            }
            other => return Err(PgError::fatal("08P01", format!("Close of {:?}", other as char))),
        }
        out.empty(b'3');
        Ok(())
    }
}

/// The query a statement runs: its own, or a `DECLARE`'s.
fn query_of(statement: &Statement) -> Option<&Statement> {
    match statement {
        Statement::Query { .. } => Some(statement),
        Statement::Command { command: Command::Declare { query, .. }, .. } => Some(query.as_ref()),
        _ => None,
    }
}

/// A Bind's values, read as the statement's parameters (a `DECLARE`'s are its query's).
fn read_values(statement: &Statement, raw: &[Option<Vec<u8>>], formats: &[i16]) -> Result<Vec<ScalarValue>, PgError> {
    let (params, declared) = match query_of(statement) {
        Some(Statement::Query { params, declared, .. }) => (params.as_slice(), declared.as_slice()),
        _ => (&[][..], &[][..]),
    };
    if raw.len() != params.len() {
        return Err(PgError::error(
            "08P01",
            format!("the statement has {} parameters, the Bind gave {}", params.len(), raw.len()),
        ));
    }
    let formats = formats_for(formats, raw.len());
    raw.iter()
        .zip(params)
        .enumerate()
        .map(|(i, (value, target))| {
            // A binary value is read in the type the client declared (NUMERIC, OID, …), else as the parameter's.
            let oid = declared.get(i).copied().filter(|o| *o != 0).unwrap_or_else(|| Kind::of(target).oid());
            types::read_param(i + 1, value.as_deref(), formats[i] == 1, oid, target)
        })
        .collect::<Result<Vec<ScalarValue>, _>>()
        .map_err(|e| PgError::error("22P02", e.to_string()))
}

/// `statement` with its parameters replaced by `values` (a `DECLARE`'s query's).
fn with_values(statement: Statement, values: &[ScalarValue], memory_mb: usize) -> Result<Statement, PgError> {
    match statement {
        Statement::Query { sql, plan, params, fields, snapshot, declared } if !params.is_empty() => {
            let plan = plan.with_param_values(values.to_vec()).map_err(|e| df_error(&e, memory_mb))?;
            Ok(Statement::Query { sql, plan, params: Vec::new(), fields, snapshot, declared })
        }
        Statement::Command { sql, command: Command::Declare { name, query } } => {
            let query = with_values(*query, values, memory_mb)?;
            Ok(Statement::Command { sql, command: Command::Declare { name, query: Box::new(query) } })
        }
        other => Ok(other),
    }
}

fn too_many_portals() -> PgError {
    PgError::error("54000", format!("too many open portals and cursors (at most {MAX_PORTALS} a connection)"))
        .hint("close cursors you no longer read (CLOSE name)")
}

/// A message that breaks the protocol: the connection ends.
fn protocol(e: WireError) -> PgError {
    PgError::fatal("08P01", e.to_string())
}

pub(crate) fn cancelled() -> PgError {
    PgError::error("57014", "canceling statement due to user request")
}
