//! The one binary's library: command-line definitions, the layered settings,
//! and the commands that wire the crates together. `anyhow` lives here and
//! nowhere else.
//!
//! # Layout
//!
//! - [`app`]: the composition root: `App::build(settings)` wires the store,
//!   the gateway, the dashboards and one scheduler; `serve`, `demo` and the
//!   end-to-end tests start the system through it.
//! - [`cli`]: the clap definitions; `--help` explains every command.
//! - [`settings`]: defaults → config file → `WANGBAN__SECTION__KEY` → flags.
//! - `commands`: one module per command.

pub mod app;
pub mod cli;
mod commands;
pub mod settings;

use std::process::ExitCode;

use anyhow::Context as _;
pub use app::App;
use cli::{Cli, Command};

/// Exit code for usage errors and commands that are not available yet.
pub const EXIT_USAGE: u8 = 2;

/// Runs a parsed command line on a fresh Tokio runtime and returns the process exit code.
pub fn main_with(cli: Cli) -> ExitCode {
    quiet_on_closed_stdout();
    let settings = match settings::Settings::load(&cli) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let ran = runtime.block_on(async {
        let ran = run(cli.command, settings).await;
        // A query that timed out just now has its Ballista job cancelled before the process ends.
        #[cfg(feature = "ballista")]
        warehouse::cluster::settle(std::time::Duration::from_secs(5)).await;
        ran
    });
    match ran {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command with its settings.
pub async fn run(command: Command, settings: settings::Settings) -> anyhow::Result<ExitCode> {
    let c = &settings.connectors;
    // `config check` reports bad TLS files itself rather than stopping at them.
    let checking = matches!(command, Command::Config(_));
    if !checking && (c.ca_file.is_some() || c.client_cert_file.is_some() || c.client_key_file.is_some()) {
        let tls = settings.partner_tls()?;
        connectors::fetch::configure_client(&tls)
            .map_err(|e| anyhow::anyhow!(e))
            .context("[connectors] ca_file / client_cert_file / client_key_file")?;
    }
    match command {
        Command::Serve(args) => commands::serve::run(args, &settings).await,
        Command::Validate(args) => Ok(commands::validate::run(&args)),
        Command::Calendar(args) => commands::calendar::run(&args, &settings),
        Command::Partner(args) => commands::partner::run(args, &settings).await,
        Command::Demo(args) => commands::demo::run(args, settings).await,
        Command::Simulate(args) => commands::simulate::run(args).await,
        Command::Seizures(args) => commands::seizures::run(&args, &settings).await,
        Command::Sync(args) => commands::sync::run(&args, &settings).await,
        Command::Quarantine(args) => commands::quarantine::run(args, &settings).await,
        Command::Warehouse(args) => commands::warehouse::refresh_or_status(args, &settings).await,
        Command::Kpi(args) => commands::warehouse::kpi(args, &settings).await,
        Command::Sql(args) => commands::warehouse::sql(args, &settings).await,
        Command::Cluster(args) => commands::cluster::run(args, &settings).await,
        Command::Report(args) => commands::report::run(args, &settings).await,
        Command::User(args) => commands::user::run(args, &settings).await,
        Command::Config(args) => commands::config::run(&args, &settings).await,
        Command::Audit(args) => commands::audit::run(&args, &settings).await,
        Command::Alerts(args) => commands::alerts::run(&args, &settings).await,
        Command::Backup(args) => commands::backup::backup(&args, &settings).await,
        Command::Restore(args) => commands::backup::restore(&args, &settings).await,
    }
}

/// `wangban kpi … | head` closes standard output early: Rust's `println!`
/// then panics with "Broken pipe". Like any Unix tool, stop quietly instead
/// (exit status 141, as if killed by SIGPIPE); every other panic is reported as before.
fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
}

fn init_logging(settings: &settings::Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log.level));
    // Colours only on a terminal: in a file or the journal they are escape codes in the text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let _ = match settings.log.format {
        settings::LogFormat::Json => builder.json().try_init(),
        settings::LogFormat::Text => builder.try_init(),
    };
}
