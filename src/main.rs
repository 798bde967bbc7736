//! The `mcwan` binary: parse the command line and hand over to [`mcwan::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = mcwan::cli::Cli::parse();
    match mcwan::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcwan: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
