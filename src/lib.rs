//! The `backstage` command line: a thin layer over the Backstage crates.
//!
//! Exit codes: 0 success, 1 the operation found problems or failed, 2 bad usage.
//!
//! The binary (`src/main.rs`) and the Python wheel's `backstage` command both call [`run`]:
//!
//! ```no_run
//! let code = backstage::run(["backstage", "check", "-f", "backstage.toml"]);
//! ```
#![deny(missing_docs)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[macro_use]
mod output;

mod check;
mod dns;
mod doctor;
mod env;
mod graph;
mod logs;
mod production;
mod releases;
mod request;
mod sess;
mod tls;

/// The Production and Act Managers (the `backstage-manager` crate), re-exported.
pub use backstage_manager as manager;

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
    /// Make PowerDNS serve every Venue's names: `dns plan`, `dns apply`.
    ///
    /// Needs `[producer]` in the manifest: `api_url` (the PowerDNS webserver, e.g.
    /// `http://127.0.0.1:8081`), `api_key_env` (the variable holding its API key), `address`
    /// (the IPs the names resolve to), optional `ttl`; a Venue may name its `zone`.
    Dns(dns::DnsArgs),
    /// The Venues' certificates: `tls status` (issuer, names, expiry), `tls renew` (ACME).
    ///
    /// A Venue with `tls = { acme = true }` gets its certificate from the `[acme]` CA
    /// (default Let's Encrypt) when `apply` or `up` first brings it live, by an HTTP-01
    /// challenge its own nginx answers; `apply` also installs a job that runs `tls renew` twice
    /// a day.
    Tls(tls::TlsArgs),
    /// Send one HTTP request to a Sess over the uwsgi protocol, without nginx.
    ///
    /// TARGET is a unix socket path or HOST:PORT. The response body goes to stdout byte for
    /// byte; `-i` shows the status line and headers first.
    Request(request::RequestArgs),
    /// Start, stop or reload one Sess through the uWSGI Emperor (`backstage sess start club-a`).
    Sess(sess::SessArgs),
    /// Write every file the Production implies (vassals, nginx) into a directory; touches nothing live.
    Render(production::RenderArgs),
    /// Show what `apply` would create, update or delete, and why; changes nothing.
    Plan(production::JsonArgs),
    /// Make the live files match the manifest: atomic, gated by `nginx -t`, health-checked.
    ///
    /// New and changed Sess must answer a real request before anything routes to them (a
    /// changed Sess starts a new copy beside the running one, which serves until the new one
    /// answers); an interrupted apply is rolled back by the next one; a second apply with no
    /// change writes nothing and reloads nothing.
    Apply(production::ApplyArgs),
    /// User mode: build the Stages, apply, start the Emperor and nginx, and wait until every Gig
    /// answers; prints the URLs.
    Up(production::UpArgs),
    /// User mode: stop nginx, the Emperor and every Sess that `up` started.
    Down(production::LifeArgs),
    /// Every Sess (state, workers, requests, memory) and every Gig (HTTP status through nginx).
    ///
    /// Exit 0 when every Sess runs and every Gig answers (a 4xx is an answer); 1 when a Sess is
    /// stopped or failed, or a Gig is down: nothing answers it, or it answers 5xx. The report
    /// (and `--json`) is printed either way, so `status` serves as a monitoring check.
    Status(production::JsonArgs),
    /// Ship new code: build a release of each Act (every Act when none is named), run its
    /// release phase, and switch every Sess of the Act to it blue/green.
    ///
    /// A release is a snapshot of the committed `HEAD` (or `--ref`) when the Act's root is in a
    /// git work tree (uncommitted edits never ship), else of the directory. In the new release:
    /// `collectstatic`, `manage.py check`, then the Act's `release` commands (migrations); any
    /// failure deploys nothing. Then each Sess starts a copy on the new release, which must
    /// answer its health check before nginx routes to it; the old copies drain and stop.
    Deploy(releases::DeployArgs),
    /// List the kept releases of every Act (or of ACT), the live one marked with `*`.
    Releases(releases::ReleasesArgs),
    /// Switch an Act back to a kept release (default: the one before the live one), blue/green,
    /// with no rebuild and no release phase. Migrations are not reversed.
    Rollback(releases::RollbackArgs),
    /// Run a one-off command in an Act's live release, with its environment (and in system
    /// mode as its Sess' account): `backstage run club -- python manage.py createsuperuser`.
    ///
    /// The command's exit code is passed through.
    Run(releases::RunArgs),
    /// An Act's secrets: `env ACT set KEY=VALUE`, `env ACT unset KEY`, `env ACT list`.
    ///
    /// Secrets live in a 0600 store under the state dir (and in the Act's `env_file`, a dotenv
    /// file, when it names one); each Sess reads them at start from a private envdir. Their
    /// values never appear in a vassal, an nginx file, `plan`, `status`, `render`, JSON or a log.
    Env(env::EnvArgs),
    /// System mode: look at this server (the uWSGI Emperor, nginx, directories, accounts) and
    /// print what is wrong with the exact command or line that fixes it; changes nothing.
    ///
    /// Exit 0 when everything is in order, 1 when something is wrong.
    Doctor(doctor::DoctorArgs),
    /// Show the logs of Sess, Acts, Gigs and nginx, interleaved by time (`--follow` to keep
    /// watching).
    ///
    /// Each line is prefixed with its source: a Sess' name (its uWSGI log, every copy of it),
    /// `nginx:access` or `nginx:error`. `backstage logs` alone shows everything;
    /// `backstage logs jazz-home` the Gig's Sess and its Venue's nginx lines;
    /// `backstage logs club-a --follow` one Sess as it goes. An unknown NAME exits 2.
    Logs(logs::LogsArgs),
    /// Draw the Production: Venues -> Gigs -> Sess -> Stages, and the Act each Sess plays.
    ///
    /// Prints SVG (drawn by Graphviz's `dot`) or, with `--format dot`, the DOT text itself.
    /// Closed Venues (no Gig books them) are dashed; a Gig's edges carry its Sess' weights.
    /// Example: `backstage graph > production.svg`.
    Graph(graph::GraphArgs),
}

/// Runs the command line on `args` (the first is the program name, as in `std::env::args_os`).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
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
    let code = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Dns(args) => dns::run(&args),
        Command::Tls(args) => tls::run(&args),
        Command::Request(args) => request::run(args),
        Command::Sess(args) => sess::run(&args),
        Command::Render(args) => production::render(&args),
        Command::Plan(args) => production::plan(&args),
        Command::Apply(args) => production::apply(&args),
        Command::Up(args) => production::up(&args),
        Command::Down(args) => production::down(&args),
        Command::Status(args) => production::status(&args),
        Command::Doctor(args) => doctor::run(&args),
        Command::Env(args) => env::run(&args),
        Command::Deploy(args) => releases::deploy(&args),
        Command::Releases(args) => releases::releases(&args),
        Command::Rollback(args) => releases::rollback(&args),
        Command::Run(args) => releases::run(&args),
        Command::Logs(args) => logs::run(&args),
        Command::Graph(args) => graph::run(&args),
    };
    output::exit_code(code)
}
