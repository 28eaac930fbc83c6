//! What the Production Manager can fail with.

// The pieces of the Production Manager share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

/// What the Production Manager can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// A uWSGI operation (vassals, Emperor, Stage Set, the uwsgi protocol) failed.
    #[error(transparent)]
    Uwsgi(#[from] backstage_uwsgi::Error),
    /// nginx rendering, validation or reload failed.
    #[error(transparent)]
    Nginx(#[from] backstage_nginx::Error),
    /// A managed file could not be read, written or removed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The apply lock or journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A new or changed Sess did not answer; every change was rolled back.
    #[error(
        "Sess `{sess}` did not become healthy: {reason}; nothing was switched, the previous configuration is back"
    )]
    Unhealthy {
        /// The Sess.
        sess: String,
        /// Why, in one line.
        reason: String,
        /// The last lines of its log.
        log_tail: Vec<String>,
        /// What to do next, in one line.
        hint: &'static str,
    },
    /// A worker or cron job did not start (or its previous one did not stop); a new one was
    /// rolled back.
    #[error("worker `{worker}` of Act `{act}` failed: {reason}")]
    WorkerFailed {
        /// The worker or cron job.
        worker: String,
        /// Its Act.
        act: String,
        /// Why, in one line.
        reason: String,
        /// The last lines of its log.
        log_tail: Vec<String>,
    },
    /// A Venue's ACME order failed; it (and every other Venue) serves what it served before.
    #[error("ACME: Venue `{venue}`: {reason}{}", if *others > 0 { format!(" (and {others} more Venue(s) failed; `backstage tls status` shows each)") } else { String::new() })]
    Acme {
        /// The Venue.
        venue: String,
        /// The CA's reason, or what went wrong here.
        reason: String,
        /// How many other Venues failed too.
        others: usize,
    },
    /// `tls renew VENUE` of a Venue whose certificate is not ACME's.
    #[error(
        "Venue `{venue}` does not have `tls = {{ acme = true }}`: its certificate is renewed by whoever issues it"
    )]
    NotAcme {
        /// The Venue.
        venue: String,
    },
    /// A Venue named on the command line is not in the manifest.
    #[error("no Venue named `{venue}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    NoSuchVenue {
        /// The name given.
        venue: String,
        /// The closest Venue name.
        suggestion: Option<String>,
    },
    /// A directory or process operation failed.
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
    /// nginx did not start.
    #[error("nginx did not start: {reason} (see `{}`)", error_log.display())]
    NginxStart {
        /// Why.
        reason: String,
        /// nginx's error log.
        error_log: PathBuf,
    },
    /// A Gig did not answer through nginx in time.
    #[error("Gig `{gig}` does not answer at {url} ({reason})")]
    GigDown {
        /// The Gig.
        gig: String,
        /// Where it was asked.
        url: String,
        /// What happened.
        reason: String,
    },
    /// `backstage logs` was given a name that is no Sess, Act, Gig or `nginx`.
    #[error(
        "no Sess, Act or Gig is named `{name}`, and it is not `nginx`{}",
        suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
    )]
    UnknownLogName {
        /// The name asked for.
        name: String,
        /// The closest name there is.
        suggestion: Option<String>,
    },
    /// Graphviz's `dot` is not installed.
    #[error(
        "Graphviz's `dot` is not installed (on Debian: `apt-get install graphviz`); `--format dot` prints the graph without it"
    )]
    NoGraphviz,
    /// Graphviz's `dot` could not be run or talked to.
    #[error("failed to {action} Graphviz's `dot`")]
    Graphviz {
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Graphviz's `dot` refused the graph.
    #[error("Graphviz's `dot -Tsvg` failed ({status}): {stderr}")]
    GraphvizFailed {
        /// How it exited.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
    /// System mode needs root.
    #[error("system mode needs root: {what}; run Backstage as root (e.g. with sudo)")]
    NeedsRoot {
        /// What needs it.
        what: &'static str,
    },
    /// No uWSGI Emperor watches the Production's vassal dir.
    #[error("no uWSGI Emperor watches `{}`; start the system's Emperor (`systemctl start uwsgi-emperor`) or set `vassal_dir` to the directory yours watches", vassal_dir.display())]
    NoEmperor {
        /// The vassal dir.
        vassal_dir: PathBuf,
    },
    /// The system's Emperor runs in a way Backstage cannot drive.
    #[error("the uWSGI Emperor (pid {pid}) cannot run Backstage's vassals: {why}")]
    EmperorUnsupported {
        /// The Emperor's pid.
        pid: i32,
        /// Why, and the fix.
        why: String,
    },
    /// A Sess names an account the system's Emperor cannot switch to.
    #[error(
        "Sess `{sess}` runs as `{uid}`, but the uWSGI Emperor (pid {emperor_pid}) runs as `{emperor_user}` and cannot switch users: uWSGI would ignore `uid` and run the app as `{emperor_user}`; either set `uid = \"{emperor_user}\"` on the Sess, or let the Emperor run as root by removing its `uid`/`gid` lines{} and restarting it (`systemctl restart uwsgi-emperor`)",
        config.as_ref().map(|c| format!(" from `{}`", c.display())).unwrap_or_default()
    )]
    UidIgnored {
        /// The Sess.
        sess: String,
        /// The account it names.
        uid: String,
        /// The Emperor's pid.
        emperor_pid: i32,
        /// The account the Emperor runs as.
        emperor_user: String,
        /// The Emperor's ini file.
        config: Option<PathBuf>,
    },
    /// The operation needs system mode.
    #[error(
        "`{what}` looks at the server's own Emperor and nginx, which is system mode; this Production is in user mode"
    )]
    NotSystemMode {
        /// The command.
        what: &'static str,
    },
    /// Building, listing or switching releases failed.
    #[error(transparent)]
    Release(#[from] releases::ReleaseError),
    /// A step of a new release (collectstatic, `manage.py check`, a release command) failed:
    /// nothing was switched.
    #[error(
        "release {release} of Act `{act}` cannot go live: `{command}` failed in it; nothing was switched, what was live keeps serving"
    )]
    ReleasePhase {
        /// The Act.
        act: String,
        /// The release.
        release: String,
        /// The command that failed.
        command: String,
        /// Its last lines of output, and how it ended.
        output: Vec<String>,
    },
    /// The manifest has no Act of this name.
    #[error("no Act `{name}` in the manifest{}", suggest(name, known))]
    UnknownAct {
        /// The name given.
        name: String,
        /// The Acts there are.
        known: Vec<String>,
    },
    /// An Act's secrets (its `env_file` or the store) could not be read or written. Never
    /// carries a value.
    #[error("secrets of Act `{act}`: {source}")]
    Secrets {
        /// The Act.
        act: String,
        /// What went wrong.
        #[source]
        source: backstage_core::secrets::SecretsError,
    },
    /// `backstage env set` was given a value that cannot reach the app intact.
    #[error("the value of `{key}` cannot be used: {why}")]
    BadSecret {
        /// The key.
        key: String,
        /// Why.
        why: &'static str,
    },
    /// `backstage env` was given an invalid variable name.
    #[error("invalid variable name `{key}`: {why}")]
    BadSecretKey {
        /// The key, shortened.
        key: String,
        /// Why.
        why: String,
    },
    /// The Act has no live release yet.
    #[error(
        "Act `{act}` has no live release yet; `backstage apply` (or `up`, or `deploy`) builds its first one"
    )]
    NoRelease {
        /// The Act.
        act: String,
    },
    /// No command was given to run.
    #[error(
        "no command given; write it after `--`, e.g. `backstage run club -- python manage.py createsuperuser`"
    )]
    NoCommand,
    /// A rollback without `--to` when no release precedes the live one.
    #[error(
        "Act `{act}` has no kept release before the live one to roll back to; `backstage releases {act}` lists them"
    )]
    NoRollbackTarget {
        /// The Act.
        act: String,
    },
    /// A rollback to a release whose release phase failed.
    #[error(
        "release {release} of Act `{act}` failed its release phase and never went live; roll back to another (`backstage releases {act}`)"
    )]
    FailedRelease {
        /// The Act.
        act: String,
        /// The release.
        release: String,
    },
    /// The operation needs user mode.
    #[error(
        "`{what}` runs Backstage's own Emperor and nginx, which is user mode; this Production is in system mode, where the system's services run them"
    )]
    NotUserMode {
        /// The command.
        what: &'static str,
    },
}

/// `; did you mean `x`?` for the closest known name, or the list of them.
fn suggest(name: &str, known: &[String]) -> String {
    let best = backstage_core::suggest(name, known.iter().map(String::as_str));
    match (best, known.is_empty()) {
        (Some(k), _) => format!("; did you mean `{k}`?"),
        (None, true) => String::new(),
        (None, false) => format!(
            " (it has {})",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
