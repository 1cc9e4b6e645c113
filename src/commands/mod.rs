//! One module per command: each takes the settings sections it needs, validates them, runs, and
//! prints what it did. [`run`] dispatches.

pub mod callback_url;
pub mod check;
pub mod follow;
pub mod import;
pub mod migrate;
pub mod reconcile;
pub mod replay;
pub mod schema;
pub mod serve;

use crate::cli::Command;

/// Runs one command to its end.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::command(&args),
        Command::Migrate(args) => migrate::command(&args),
        Command::Schema(args) => schema::command(&args),
        Command::CallbackUrl(args) => callback_url::command(&args),
        Command::Replay(args) => replay::command(&args),
        Command::Check(args) => check::command(&args),
        Command::Import(args) => import::command(&args),
        Command::Reconcile(args) => reconcile::command(&args),
    }
}

/// A single-threaded runtime for the commands that talk to ClickHouse and exit.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
