//! `adjust-sink`: parses the command line and hands over to the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use adjust_sink::callback_url;
use adjust_sink::cli::{Cli, Command};
use adjust_sink::clickhouse::Profile;
use adjust_sink::clickhouse::schema;
use adjust_sink::clickhouse::store::ClickHouseStore;
use adjust_sink::config::ServeConfig;
use adjust_sink::serve;
use adjust_sink::sink::classify::is_privilege_code;

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
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("adjust-sink: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let config = ServeConfig::try_from(&*args)?;
            let listener = std::net::TcpListener::bind(config.listen)
                .with_context(|| format!("binding the callback listener on {}", config.listen))?;
            let admin = std::net::TcpListener::bind(config.admin_listen).with_context(|| {
                format!("binding the admin listener on {}", config.admin_listen)
            })?;
            actix_web::rt::System::new().block_on(serve::run(
                config,
                listener,
                admin,
                serve::termination(),
            ))
        }
        Command::Migrate(args) => {
            let config = args.config(true, std::time::Duration::from_secs(60))?;
            let store = ClickHouseStore::new(config.clone())?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // Bounded: a server that accepts the connection and never answers is an error
            // within seconds, not a hang.
            rt.block_on(store.probe(std::time::Duration::from_secs(10)))?;
            let report = rt.block_on(store.migrate()).map_err(|e| {
                let hint = match e.code {
                    Some(c) if is_privilege_code(c) => {
                        " (migrate needs a user that may create databases and create and alter \
                         tables and views)"
                    }
                    _ => "",
                };
                anyhow::anyhow!("migrating ClickHouse at {}: {e}{hint}", config.url)
            })?;
            let profile = report.profile.map_or("?", Profile::as_str);
            let on = config
                .target
                .cluster
                .as_ref()
                .map_or(String::new(), |c| format!(", on cluster {c}"));
            println!(
                "ClickHouse {} ({profile} profile) at {}{on}",
                report.version, config.url
            );
            for what in &report.statements {
                println!("  ensured {what}");
            }
            if let Some(u) = &report.upgraded {
                println!(
                    "  moved {} rows in {} partitions to the two-tier layout in {:.1}s ({} partitions were already copied); the old table is kept as {} (drop it once satisfied)",
                    u.rows, u.partitions, u.seconds, u.resumed, u.kept_as
                );
            }
            for c in &report.added_columns {
                println!("  added column {c}");
            }
            for c in &report.promoted_columns {
                println!("  made column {c} physical (DEFAULT, filled from the stored text)");
            }
            println!("schema is up to date");
            Ok(())
        }
        Command::Replay(args) => {
            let clickhouse = args
                .clickhouse
                .config(!args.no_migrate, std::time::Duration::from_secs(60))?;
            let limits = adjust_sink::pipeline::Limits {
                max_rows: args.batch_max_rows.max(1),
                max_bytes: adjust_sink::config::parse_bytes(&args.batch_max_bytes)? as usize,
                max_age: std::time::Duration::from_millis(200),
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let summary = rt.block_on(adjust_sink::replay::replay(
                &args.data_dir,
                clickhouse,
                limits,
                serve::termination(),
            ))?;
            println!(
                "replayed {} rows in {} batches ({} rejected) in {:.1}s",
                summary.rows_written,
                summary.batches,
                summary.rows_rejected,
                summary.elapsed.as_secs_f64()
            );
            match summary.finished {
                adjust_sink::pipeline::batcher::Finished::Drained => Ok(()),
                adjust_sink::pipeline::batcher::Finished::Deadline { rows } => {
                    anyhow::bail!("stopped with {rows} rows not delivered (they stay in the log)")
                }
            }
        }
        Command::Check(args) => {
            let clickhouse = args
                .clickhouse
                .config(false, std::time::Duration::from_secs(10))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(adjust_sink::replay::check(&args.data_dir, clickhouse))?;
            print!("{}", report.render(&args.data_dir));
            if report.is_healthy() {
                Ok(())
            } else {
                anyhow::bail!("check found problems (see above)")
            }
        }
        Command::Schema(args) => {
            let target = args.clickhouse.target()?;
            let profile = match args.profile {
                Some(p) => p,
                None => {
                    let config = args
                        .clickhouse
                        .config(false, std::time::Duration::from_secs(10))?;
                    let store = ClickHouseStore::new(config.clone())?;
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let version = rt.block_on(store.version()).with_context(|| {
                        format!("asking {} for its version (pass --profile legacy|modern to print without a server)", config.url)
                    })?;
                    Profile::for_version(&version)
                }
            };
            print!("{}", schema::render(profile, &target));
            Ok(())
        }
        Command::Import(args) => {
            let config = args
                .clickhouse
                .config(!args.no_migrate, std::time::Duration::from_secs(60))?;
            let mut options = adjust_sink::row::Options::new();
            for c in &config.target.columns {
                options.decode = options.decode.clone().with_column(*c);
            }
            let store = ClickHouseStore::new(config)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let summary = rt.block_on(adjust_sink::import::import(
                &store,
                &args.files,
                &options,
                args.batch_rows,
                |s| {
                    let secs = s.elapsed.as_secs_f64().max(0.001);
                    eprintln!(
                        "adjust-sink: import: {} rows read ({:.0} rows/s), {} new, {} already present, {} bad lines",
                        s.rows_read,
                        s.rows_read as f64 / secs,
                        s.new,
                        s.already_present,
                        s.bad_lines.len()
                    );
                },
            ))?;
            print!("{}", summary.render());
            Ok(())
        }
        Command::Reconcile(args) => {
            let config = args
                .clickhouse
                .config(false, std::time::Duration::from_secs(60))?;
            let store = ClickHouseStore::new(config)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let rows = rt.block_on(adjust_sink::import::reconcile(
                &store,
                args.since.as_deref(),
            ))?;
            match args.format {
                adjust_sink::cli::ReportFormat::Table => {
                    print!("{}", adjust_sink::import::render_table(&rows))
                }
                adjust_sink::cli::ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&rows)?)
                }
            }
            Ok(())
        }
        Command::CallbackUrl(args) => {
            let output = callback_url::generate(&args.options())?;
            for warning in &output.warnings {
                eprintln!("adjust-sink: warning: {warning}");
            }
            print!("{}", output.render());
            Ok(())
        }
    }
}
