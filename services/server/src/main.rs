use clap::Parser;
use sparkvc_server::{app, config};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let flags = config::Flags::parse();
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
