//! `tollgate`: one binary, two hosts. Inside Lambda (`AWS_LAMBDA_RUNTIME_API` set) it serves
//! function-URL requests with response streaming; anywhere else it is a plain HTTP server.
//! Both hand every request to the same `tollgate_core::Gateway`.

use std::process::ExitCode;
use std::sync::Arc;

use tollgate_core::gateway::Ports;
use tollgate_core::Gateway;
use tollgate_lambda::{
    after_response, cli, clock, config_source, entropy, http_client, lambda_host, local_server,
    shutdown, store,
};

fn main() -> ExitCode {
    init_logging();
    let args = match cli::Args::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Run(args)) => args,
        Ok(cli::Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("tollgate: {message}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let config = match config_source::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("tollgate: {message}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let http = match http_client::ReqwestClient::new() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("tollgate: cannot build the HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let clock: Arc<dyn tollgate_core::ports::Clock> = Arc::new(clock::SystemClock);
    let choice =
        match tollgate_core::store::settings::choose(&config, &|name| std::env::var(name).ok()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tollgate: {e}");
                return ExitCode::FAILURE;
            }
        };
    let store = match runtime.block_on(store::open(&choice, Arc::clone(&clock), in_lambda)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "tollgate: cannot open the store {}: {e}",
                store::describe(&choice, in_lambda)
            );
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(store = %store::describe(&choice, in_lambda), "store ready");
    let shutdown_bounds = match shutdown::Bounds::from_env(|name| std::env::var(name).ok()) {
        Ok(b) => b,
        Err(message) => {
            eprintln!("tollgate: {message}");
            return ExitCode::FAILURE;
        }
    };
    // One tracker for every request's after-response work: the local server drains it on
    // shutdown (after_response.rs says why Lambda does not need to).
    let after = Arc::new(after_response::TrackedAfterResponse::new(
        runtime.handle().clone(),
    ));
    let ports = Ports {
        http,
        clock,
        store,
        after_response: Arc::clone(&after) as Arc<dyn tollgate_core::ports::AfterResponse>,
        entropy: Arc::new(entropy::OsEntropy),
    };
    let gateway = Arc::new(Gateway::new(config, ports));
    // Keys, users and teams the config declares exist before the first request (idempotent:
    // what is already as the config says is not rewritten). A Store that refuses is logged,
    // not fatal: the master key still works.
    match runtime.block_on(tollgate_core::admin::seed::seed(&gateway)) {
        Ok(report) if !report.is_empty() => tracing::info!(%report, "config seed applied"),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "config seed not applied: the store failed"),
    }
    let result = runtime.block_on(async move {
        if in_lambda {
            lambda_host::run(gateway).await
        } else {
            local_server::run(gateway, &args.host, args.port, &after, shutdown_bounds).await
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `LITELLM_LOG` (LiteLLM's variable) or `RUST_LOG` picks the level; INFO by default.
/// Request bodies and headers are never logged, so keys and prompts stay out of the logs.
fn init_logging() {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LITELLM_LOG").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // CloudWatch shows escape codes literally.
        .with_ansi(std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none())
        .without_time()
        .init();
}
