//! The `trafficgen` binary: parse the command line, run it on a tokio runtime, map the outcome
//! to the exit code. Everything else lives in the library (`app::run`).

use std::process::ExitCode;

use trafficgen::{app, cli::Cli};

fn main() -> ExitCode {
    let cli = match Cli::parse_process() {
        Ok(cli) => cli,
        Err(trafficgen::cli::CliError::Clap(e)) => e.exit(),
        Err(trafficgen::cli::CliError::Env(problems)) => {
            for p in &problems {
                eprintln!("trafficgen: environment variable {p}");
            }
            return ExitCode::from(2);
        }
    };
    // The generator's own diagnostics (stderr) and, with an OTLP endpoint, its own spans.
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    let _tracing = trafficgen::telemetry::init::init_tracing(endpoint.as_deref())
        .inspect_err(|e| eprintln!("trafficgen: tracing not initialised: {e}"))
        .ok();
    // The orchestration runtime (and the embedded todo-api, when there is no target); the load
    // itself runs on the executor's own worker threads.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("trafficgen-main")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trafficgen: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = rt.block_on(async {
        let mut out = std::io::stdout();
        app::run(cli, &mut out, shutdown_signal()).await
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    outcome.into()
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
