//! `clawlet-webhookd`: the daemon operators run.
//!
//! A thin binary that reads the configuration, turns it into each crate's own constructor
//! arguments, and wires them together: the HTTP server, the durable bus and the dispatcher that
//! feeds agents. It also owns the CLI, telemetry, signals and hot reload. It must hold no request
//! logic of its own: verification, parsing, storage and delivery live in the library crates.
//!
//! ```text
//! clawlet-webhookd --config config/example.yaml          # serve (the default command)
//! clawlet-webhookd config check --config my.yaml         # validate, print with secrets redacted
//! clawlet-webhookd events list --since 1h --json         # what the journal holds
//! clawlet-webhookd send github --url http://127.0.0.1:8080/webhook/github --secret "$S"
//! ```
#![allow(
    clippy::print_stderr,
    reason = "the CLI's messages are its interface; standard output goes through `output::Output`, \
              which survives a reader that goes away"
)]

mod cli;
mod events;
mod events_nats;
mod output;
mod providers;
mod send;
mod serve;
mod telemetry;
mod wiring;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, ConfigCommand};
use crate::output::Output;

/// mimalloc rather than glibc's malloc, whose bookkeeping for body-sized buffers was about a tenth
/// of the CPU per request (BENCHMARKS.md). Set here, in the binary: the library crates leave the
/// choice to whoever links them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What `--version` prints after the name: the package version and the commit it was built from
/// (`build.rs`), so that a report from an installed binary says exactly which code it runs.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CLAWLET_COMMIT"), ")");

/// Exit code for a usage or configuration error, which the operator fixes by editing something.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure at run time.
const EXIT_RUNTIME: u8 = 1;

/// What went wrong, sorted by the exit code it earns.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The configuration or the command line is wrong (exit 2).
    Config(String),
    /// Something failed while running (exit 1).
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Self::Runtime(err)
    }
}

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version itself and exits 0 for them; usage errors exit 2.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_CONFIG } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("clawlet-webhookd: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(message)) => {
            // `config check` has already printed its errors; the others carry theirs here.
            if !message.is_empty() {
                eprintln!("{message}");
            }
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Runtime(err)) => {
            eprintln!("clawlet-webhookd: {err:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `Cli::try_parse` with the commit in the version; the CLI definition itself stays free of build
/// details, so that `cargo xtask release` can render it into completions and the man page.
fn parse_args() -> Result<Cli, clap::Error> {
    let mut command = Cli::command().version(VERSION);
    let matches = command.try_get_matches_from_mut(std::env::args_os())?;
    Cli::from_arg_matches(&matches).map_err(|err| err.format(&mut command))
}

async fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        None => serve::run(cli.serve).await,
        Some(Command::Serve(args)) => serve::run(args).await,
        Some(Command::Agent(args)) => serve::run(args.serve).await,
        Some(Command::Config(ConfigCommand::Check(args))) => {
            // The same validation as start-up and reload: the configuration's own rules, then
            // everything the daemon builds from it.
            let (text, code) = match clawlet_config::load(&wiring::load_options(&args, None, None))
            {
                Err(errors) => (format!("{errors}\n"), 2),
                Ok(loaded) => match wiring::plan(&loaded) {
                    Err(errors) => (format!("{errors}\n"), 2),
                    Ok(_) => clawlet_config::show(&loaded),
                },
            };
            let mut out = Output::stdout();
            out.text(&text).context("writing to standard output")?;
            out.finish().context("writing to standard output")?;
            if code == 0 {
                Ok(())
            } else {
                Err(Failure::Config(String::new()))
            }
        }
        Some(Command::Events(command)) => events::run(command),
        Some(Command::Send(args)) => Ok(send::run(&args).await?),
    }
}
