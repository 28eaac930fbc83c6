//! The crate's error type.

use std::path::PathBuf;

/// What rendering, validating or reloading nginx configuration can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `nginx.conf`'s template failed to render (a bug in Backstage, or a value the quoting
    /// filter refused).
    #[error("failed to render the nginx {what} of `{origin}`")]
    Render {
        /// `site` or `nginx.conf`.
        what: &'static str,
        /// The manifest entry being rendered (`venues.jazz`).
        origin: String,
        /// Tera's error.
        #[source]
        source: tera::Error,
    },
    /// A value the site of a Venue would hold could not be written into nginx configuration
    /// safely (validated values never are: a bug in Backstage).
    #[error("failed to render the nginx site of `{origin}`: {message}")]
    Unwritable {
        /// The manifest entry being rendered (`venues.jazz`).
        origin: String,
        /// What was refused, and why.
        message: String,
    },
    /// Two entries of the Production would need the same nginx `location` at one Venue.
    #[error(
        "`{origin}` needs `location {location}` on Venue `{venue}`, which `{other}` already uses"
    )]
    LocationClash {
        /// The Venue.
        venue: String,
        /// The location both want.
        location: String,
        /// The entry rendered second (`gigs.static`).
        origin: String,
        /// The entry rendered first (`acts.club`).
        other: String,
    },
    /// A server name the Production books is already served by a site Backstage does not own.
    #[error("server name `{name}` of `venues.{venue}` is already served by `{}`", file.display())]
    NameTaken {
        /// The server name.
        name: String,
        /// The Venue booking it.
        venue: String,
        /// The foreign site file serving it.
        file: PathBuf,
    },
    /// The nginx binary could not be run.
    #[error("failed to run nginx `{}`", binary.display())]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `nginx -t` rejected the candidate configuration; nothing live was changed.
    #[error("nginx rejects the configuration of `{origin}`{}: {message}", at_line(file.as_ref(), *line))]
    Rejected {
        /// The manifest entry the failing line comes from (`gigs.jazz-home`), or the foreign
        /// file nginx loaded beside the candidates.
        origin: String,
        /// The file nginx complained about, as it would be placed live.
        file: Option<PathBuf>,
        /// The line in that file.
        line: Option<u32>,
        /// nginx's message, without its `nginx: [emerg]` prefix and file position.
        message: String,
    },
    /// System mode tests the candidates at the live paths in a private mount namespace,
    /// which only root may create.
    #[error("system mode needs root: {what} (run Backstage as root, e.g. with sudo)")]
    NeedsRoot {
        /// What could not be done.
        what: &'static str,
    },
    /// The system's nginx does not load the enabled-sites directory, so Backstage's sites
    /// would never be served.
    #[error("the system's nginx configuration `{}` does not include `{}`: Backstage's sites would not be loaded", conf.display(), dir.display())]
    NotIncluded {
        /// The main configuration.
        conf: PathBuf,
        /// The enabled-sites directory.
        dir: PathBuf,
    },
    /// A file or directory operation failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A pid file does not hold a process id.
    #[error("pid file `{}` does not hold a process id: `{content}`", path.display())]
    BadPidFile {
        /// The pid file.
        path: PathBuf,
        /// What it holds (trimmed, shortened).
        content: String,
    },
    /// Signalling the nginx master failed (it is not running, or not ours to signal).
    #[error("failed to signal the nginx master `{pid}`")]
    Signal {
        /// The master's pid.
        pid: i32,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// The master got the reload signal but started no new workers in time: nginx most likely
    /// rejected the configuration and kept the old one; its error log says why.
    #[error("nginx master `{pid}` started no new workers within {waited_ms} ms; the old configuration is still serving; see nginx's error log{}", log_hint(error_log.as_ref()))]
    ReloadNotTaken {
        /// The master's pid.
        pid: i32,
        /// How long we waited.
        waited_ms: u128,
        /// The error log to read, when known.
        error_log: Option<PathBuf>,
    },
}

fn at_line(file: Option<&PathBuf>, line: Option<u32>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!(" (`{}` line {l})", f.display()),
        (Some(f), None) => format!(" (`{}`)", f.display()),
        _ => String::new(),
    }
}

fn log_hint(log: Option<&PathBuf>) -> String {
    log.map(|l| format!(" `{}`", l.display()))
        .unwrap_or_default()
}

pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
