//! `backstage logs`: the Production's logs, interleaved by time, read once or followed.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use crate::ManifestArg;
use crate::manager::ManagerError;
use crate::manager::logs::{Line, Logs};
use crate::output;
use crate::production::{fail, load};

/// How often `--follow` looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// A colour per source (cycled), the same every time for the same set of sources.
const COLOURS: [anstyle::AnsiColor; 6] = [
    anstyle::AnsiColor::Cyan,
    anstyle::AnsiColor::Green,
    anstyle::AnsiColor::Yellow,
    anstyle::AnsiColor::Magenta,
    anstyle::AnsiColor::Blue,
    anstyle::AnsiColor::Red,
];

/// Arguments of `backstage logs`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogsArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// What to show: a Sess (`club-a`), an Act (all its Sess), a Gig (its Sess and the nginx
    /// lines of its Venue), or `nginx` (its access and error logs); several may be given.
    /// None: everything
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// How many of the last lines to show (of all sources together)
    #[arg(short = 'n', long, value_name = "N", default_value_t = 20)]
    lines: usize,
    /// Then keep showing lines as they are written, until interrupted (Ctrl-C); follows a Sess
    /// through its blue/green replacement and every log through rotation
    #[arg(long)]
    follow: bool,
    /// One JSON object per line: {"source": "club-a", "time": "2025-12-02T06:30:01Z" or null, "line": "..."}
    #[arg(long)]
    json: bool,
}

/// How lines are shown.
struct Printer {
    json: bool,
    colour: bool,
    width: usize,
    sources: Vec<String>,
}

impl Printer {
    fn print(&self, lines: &[Line]) {
        output::out_lines(lines.iter().map(|l| self.format(l)));
    }

    fn format(&self, line: &Line) -> String {
        if self.json {
            return serde_json::json!({
                "source": &*line.source,
                "time": line.time.map(|t| t.to_string()),
                "line": line.text,
            })
            .to_string();
        }
        let label = format!("{:>width$}", &*line.source, width = self.width);
        if !self.colour {
            return format!("{label} | {}", line.text);
        }
        let i = self
            .sources
            .iter()
            .position(|s| **s == *line.source)
            .unwrap_or(0);
        let style = COLOURS[i % COLOURS.len()].on_default();
        format!("{style}{label}{style:#} | {}", line.text)
    }
}

pub(crate) fn run(args: &LogsArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    let mut logs = match Logs::open(&production, &args.names) {
        Ok(logs) => logs,
        Err(e @ ManagerError::UnknownLogName { .. }) => {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
        Err(e) => return fail(&e, false),
    };
    let mut sources = Vec::new();
    for (source, exists) in logs.sources() {
        if !exists {
            errln!(
                "note: `{}` ({}) has no log yet{}",
                source.path.display(),
                source.name,
                if args.follow {
                    "; it is shown once there is one"
                } else {
                    ""
                }
            );
        }
        sources.push(source.name.to_string());
    }
    let printer = Printer {
        json: args.json,
        colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        width: sources.iter().map(|s| s.chars().count()).max().unwrap_or(0),
        sources,
    };
    printer.print(&logs.tail(args.lines));
    if args.follow {
        while !output::stdout_gone() {
            std::thread::sleep(FOLLOW_INTERVAL);
            let lines = logs.poll();
            if !lines.is_empty() {
                printer.print(&lines);
            }
        }
    }
    ExitCode::SUCCESS
}
