//! Terminal output that never aborts a command.
//!
//! `println!` panics when stdout is a closed pipe (`backstage plan --json | head -c 5`), and a
//! panic mid-`apply` leaves its journal for the next run to roll back. Every line the CLI
//! prints goes through [`outln!`] (stdout) or [`errln!`] (stderr) instead: a line that cannot be
//! shown is dropped and the command goes on, and ends with the exit code it would have had.
//! Rust ignores SIGPIPE in its binaries (and Python in its own), so a closed pipe is an `EPIPE`
//! error here rather than a signal. Stdout failing for another reason (a full disk) is reported
//! once on stderr and makes a successful command exit 1, so a script never takes cut output for
//! whole.

use std::fmt;
use std::io::{self, Write as _};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when stdout failed with something other than a closed pipe.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);
/// Set when stdout turned out to be a closed pipe: nobody reads what follows.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout; see the module docs.
pub(crate) fn out_line(args: fmt::Arguments<'_>) {
    let result = {
        let mut out = io::stdout().lock();
        out.write_fmt(args)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
    };
    stdout_result(result);
}

/// Writes many lines to stdout as [`out_line`] would each, in one write (`render` lists
/// thousands of files).
pub(crate) fn out_lines<T: fmt::Display>(lines: impl IntoIterator<Item = T>) {
    use std::fmt::Write as _;
    let mut text = String::new();
    for line in lines {
        let _ = writeln!(text, "{line}");
    }
    let result = {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
    stdout_result(result);
}

/// What to do with the result of a write to stdout: note a closed pipe, else remember the
/// failure and say so once.
pub(crate) fn stdout_result(result: io::Result<()>) {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
        Err(e) if !STDOUT_FAILED.swap(true, Ordering::Relaxed) => {
            err_line(format_args!("error: failed to write to stdout: {e}"));
        }
        _ => {}
    }
}

/// Whether stdout is gone (a closed pipe, or another failure): a command that would only go
/// on printing, as `logs --follow` does, can stop.
pub(crate) fn stdout_gone() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed) || STDOUT_FAILED.load(Ordering::Relaxed)
}

/// Writes one line to stderr, dropping it when stderr cannot take it (nowhere is left to say so).
pub(crate) fn err_line(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// The exit code of a command that ended with `code`: a failure when stdout lost output for a
/// reason other than a closed pipe.
pub(crate) fn exit_code(code: ExitCode) -> ExitCode {
    if code == ExitCode::SUCCESS && STDOUT_FAILED.load(Ordering::Relaxed) {
        ExitCode::FAILURE
    } else {
        code
    }
}

/// `println!` that never panics; see the module docs.
macro_rules! outln {
    () => {
        $crate::output::out_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::out_line(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics; see the module docs.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::err_line(format_args!($($arg)*))
    };
}
