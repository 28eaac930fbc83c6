//! The `backstage` command line.
mod request;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Put Django applications live on uWSGI and nginx, and keep them live.
#[derive(Debug, Parser)]
#[command(name = "backstage", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Speak the uwsgi protocol straight to a Sess (a unix socket path or host:port).
    Request(request::RequestArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Request(args) => request::run(args),
    }
}
