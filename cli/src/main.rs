//! The `sparkvc` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    sparkvc_cli::main()
}
