//! `wangban cluster scheduler` and `wangban cluster executor`: this host's
//! part of a Ballista cluster (`warehouse::cluster`, docs/ballista.md).

use std::process::ExitCode;

use crate::cli::ClusterArgs;
#[cfg(feature = "ballista")]
use crate::cli::ClusterCommand;
use crate::settings::Settings;

#[cfg(not(feature = "ballista"))]
pub(crate) async fn run(_args: ClusterArgs, _settings: &Settings) -> anyhow::Result<ExitCode> {
    eprintln!(
        "error: this build has no Ballista cluster: build with `cargo build --release -p wangban --features ballista`"
    );
    Ok(ExitCode::from(crate::EXIT_USAGE))
}

#[cfg(feature = "ballista")]
pub(crate) async fn run(args: ClusterArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    use warehouse::cluster;

    let c = &settings.cluster;
    match args.command {
        ClusterCommand::Scheduler { listen } => {
            let bind = listen.unwrap_or(c.scheduler_listen);
            let options = cluster::SchedulerOptions { bind, external_host: cluster::host_name() };
            cluster::run_scheduler(options, |bound| {
                tracing::info!(%bound, "Ballista scheduler listening");
                eprintln!("scheduler listening on {bound}");
            })
            .await
            .with_context(|| format!("the scheduler on {bind}"))?;
        }
        ClusterCommand::Executor {
            scheduler,
            bind_host,
            external_host,
            flight_port,
            grpc_port,
            work_dir,
            memory_mb,
            concurrent_tasks,
        } => {
            let scheduler = scheduler.unwrap_or_else(|| c.scheduler.clone());
            let Some((host, port)) = scheduler.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            else {
                eprintln!("error: --scheduler {scheduler:?}: expected host:port");
                return Ok(ExitCode::from(crate::EXIT_USAGE));
            };
            let options = cluster::ExecutorOptions {
                scheduler_host: host.to_owned(),
                scheduler_port: port,
                bind_host: bind_host.unwrap_or_else(|| c.executor_bind_host.clone()),
                external_host: external_host
                    .or_else(|| c.executor_external_host.clone())
                    .unwrap_or_else(cluster::host_name),
                flight_port: flight_port.unwrap_or(c.executor_flight_port),
                grpc_port: grpc_port.unwrap_or(c.executor_grpc_port),
                work_dir: work_dir
                    .or_else(|| c.executor_work_dir.clone())
                    .unwrap_or_else(|| settings.data_dir.join("ballista-work")),
                memory_bytes: memory_mb.unwrap_or(c.executor_memory_mb) << 20,
                concurrent_tasks: concurrent_tasks.unwrap_or(c.executor_concurrent_tasks),
            };
            eprintln!(
                "executor {}:{} (flight) registering with the scheduler at {scheduler}",
                options.external_host, options.flight_port
            );
            cluster::run_executor(options).await.with_context(|| format!("the executor of scheduler {scheduler}"))?;
        }
        ClusterCommand::Job { id, scheduler } => {
            let scheduler = scheduler.unwrap_or_else(|| c.scheduler.clone());
            let state = cluster::job_state(&format!("http://{scheduler}"), &id)
                .await
                .with_context(|| format!("asking the scheduler at {scheduler}"))?;
            println!("{state}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
