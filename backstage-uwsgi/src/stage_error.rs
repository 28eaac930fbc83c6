//! What the Stage Manager, the Emperor control and the Stage Set can fail with.

use std::path::PathBuf;

use backstage_core::files::FileError;

/// Errors of vassal rendering and placement, Emperor control and the Stage Set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// The named Sess is not in the Production.
    #[error("no Sess `{name}` in production `{production}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownSess {
        /// The name asked for.
        name: String,
        /// The Production.
        production: String,
        /// The closest existing Sess name, if any is close.
        suggestion: Option<String>,
    },
    /// The named Stage is not in the Production.
    #[error("no Stage `{name}` in production `{production}`")]
    UnknownStage {
        /// The name asked for.
        name: String,
        /// The Production.
        production: String,
    },
    /// A value cannot be written so that uWSGI reads it back literally.
    #[error("`{key}` of Sess `{sess}` cannot be written to a uWSGI ini file: {why}")]
    Unrepresentable {
        /// The Sess.
        sess: String,
        /// The ini key.
        key: String,
        /// Why.
        why: &'static str,
    },
    /// Placing, touching or removing a managed file failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// An I/O operation on a path failed.
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
    /// A program could not be started.
    #[error("failed to run `{}`", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Emperor did not start.
    #[error("the uWSGI Emperor did not start (log `{}`){}", log.display(), tail_suffix(log_tail))]
    EmperorStart {
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        log_tail: Vec<String>,
    },
    /// The Emperor, or some of its vassals, did not stop before the deadline.
    #[error("the uWSGI Emperor did not stop within {seconds} s; still alive: {}", alive.join(", "))]
    EmperorStop {
        /// The deadline in seconds.
        seconds: u64,
        /// What is still running (`emperor pid 123`, `club-a pid 456`).
        alive: Vec<String>,
    },
    /// A Sess' master did not exit before the deadline.
    #[error("sess `{sess}` (master pid {pid}) did not stop within {seconds} s")]
    SessStop {
        /// The Sess.
        sess: String,
        /// Its master's pid.
        pid: i32,
        /// The deadline in seconds.
        seconds: u64,
    },
    /// System mode: Backstage does not run the Emperor.
    #[error("production `{production}` is in system mode: the system's uWSGI Emperor serves it")]
    SystemMode {
        /// The Production.
        production: String,
    },
    /// A command of the Stage Set failed.
    #[error("`{command}` failed with {status}{}", tail_suffix(stderr_tail))]
    Command {
        /// The command line, for the user.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The last lines of its standard error.
        stderr_tail: Vec<String>,
    },
    /// An Act declares `static` but no `settings`, so `collectstatic` cannot run.
    #[error(
        "act `{act}` declares `static` but no `settings`; collectstatic needs DJANGO_SETTINGS_MODULE"
    )]
    NoSettings {
        /// The Act.
        act: String,
    },
}

fn tail_suffix(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n{}", tail.join("\n"))
    }
}

pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> StageError {
    let path = path.to_owned();
    move |source| StageError::Io {
        action,
        path,
        source,
    }
}
