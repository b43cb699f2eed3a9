use clap::Parser;
use sparkvc_server::{app, config};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let flags = config::Flags::parse();
    if let Some(command) = &flags.command {
        return run_command(command);
    }
    let config = match config::Config::load(&flags) {
        Ok(c) => c,
        Err(err) => {
            eprintln!("sparkvc-server: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    app::init_tracing(config.log_format);
    match app::run(config, app::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("sparkvc-server: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// An offline maintenance command; prints what it did, or why it failed.
fn run_command(command: &config::Command) -> std::process::ExitCode {
    match command {
        config::Command::Restore { from, data_dir } => {
            let store_dir = data_dir.join("store");
            let input: Box<dyn std::io::Read> = if from.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                match std::fs::File::open(from) {
                    Ok(file) => Box::new(file),
                    Err(err) => {
                        eprintln!(
                            "sparkvc-server restore: cannot open {}: {err}",
                            from.display()
                        );
                        return std::process::ExitCode::FAILURE;
                    }
                }
            };
            match sparkvc_server::store::backup::restore(input, &store_dir) {
                Ok(summary) => {
                    println!(
                        "restored {} records and {} writes made during the backup ({} bytes) into {}",
                        summary.copied,
                        summary.replayed,
                        summary.bytes,
                        store_dir.display()
                    );
                    std::process::ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("sparkvc-server restore: {err}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
