//! `sparkvc`: a command-line client for the sparkvc server that looks and
//! behaves like `aws emr-containers` (same subcommands, flags, JSON output,
//! error lines and exit codes). See `cli/README.md`.

pub mod args;
pub mod client;
pub mod commands;
pub mod debug;
pub mod error;
pub mod input;
pub mod output;
pub mod paginate;
pub mod requests;
pub mod shorthand;
pub mod skeleton;
pub mod tls;
pub mod wait;

use clap::Parser;
use std::process::ExitCode;

/// Runs the command line of this process and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version are not errors.
            let code = if err.use_stderr() {
                error::EXIT_USAGE
            } else {
                error::EXIT_OK
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    if cli.debug {
        debug::init();
        tracing::debug!(
            version = env!("CARGO_PKG_VERSION"),
            operation = cli.command.operation(),
            endpoint = %cli.endpoint_url,
            "sparkvc CLI"
        );
    }
    if let Err(err) = output::configure(cli.output, cli.query.as_deref()) {
        eprintln!("{err}");
        return ExitCode::from(err.exit_code());
    }
    if cli.no_verify_ssl && cli.endpoint_url.starts_with("https://") {
        eprintln!(
            "warning: --no-verify-ssl: the server's certificate is not checked; anyone on the path can read and change this call"
        );
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("could not start the async runtime: {err}");
            return ExitCode::from(error::EXIT_OTHER);
        }
    };
    match runtime.block_on(commands::run(&cli)) {
        Ok(()) => ExitCode::from(error::EXIT_OK),
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(err.exit_code())
        }
    }
}
