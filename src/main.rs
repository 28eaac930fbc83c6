//! The `backstage` command line.
use clap::Parser;

/// Put Django applications live on uWSGI and nginx, and keep them live.
#[derive(Debug, Parser)]
#[command(name = "backstage", version)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
