//! The `backstage` command line: a thin layer over the Backstage crates.
//!
//! Exit codes: 0 success, 1 the operation found problems or failed, 2 bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod sess;

/// Put Django applications live on uWSGI and nginx, and keep them live.
///
/// Backstage reads one file, `backstage.toml`, that describes a Production: its Acts (Django
/// projects), Stages (virtualenvs with uWSGI), Sess (an Act running on a Stage), Venues (the
/// names nginx serves) and Gigs (an Act booked at a Venue). Start with `backstage check`.
#[derive(Debug, Parser)]
#[command(name = "backstage", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the manifest is: `-f FILE`, else `backstage.toml` here or in the nearest parent.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ManifestArg {
    /// The manifest to use [default: `backstage.toml` in this directory or the nearest parent]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the manifest and report every problem at once; writes nothing.
    ///
    /// Exit 0 when the Production is valid, 1 when problems were found.
    Check(check::CheckArgs),
    /// Start, stop or reload one Sess through the uWSGI Emperor (`backstage sess start club-a`).
    Sess(sess::SessArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Sess(args) => sess::run(&args),
    }
}
