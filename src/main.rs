//! `adjust-sink`: parses the command line, sets up logging and hands the command over to
//! [`adjust_sink::commands`].

use std::process::ExitCode;

use clap::Parser;

use adjust_sink::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    match adjust_sink::commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("adjust-sink: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
