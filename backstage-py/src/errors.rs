//! Every Backstage error becomes a Python exception here, and only here.
//!
//! The classes live in `backstage._errors` (plain Python, so they read and subclass like any
//! exception): `BackstageError`, `ValidationError` (also a `ValueError`, carrying `.problems`),
//! `ProtocolError`, `ApplyError`. I/O failures keep Python's own `OSError` subclasses
//! (`FileNotFoundError`, `PermissionError`, …) with `errno` and `filename` set.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use backstage::manager::ManagerError;
use backstage_core::files::FileError;

use backstage_core::{Error, error_chain};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::Problem;

/// The Python module defining the exception classes.
const ERRORS_MODULE: &str = "backstage._errors";

static BACKSTAGE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static VALIDATION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static PROTOCOL_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static APPLY_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The Python exception for a core error.
pub(crate) fn to_py(py: Python<'_>, error: Error) -> PyErr {
    match error {
        Error::Read { path, source } => match source.raw_os_error() {
            Some(errno) => os_error(py, errno, &path),
            None => backstage_error(py, &error_chain(&Error::Read { path, source })),
        },
        // A directory given as the manifest is what `open()` of one raises.
        Error::NotAFile {
            ref path,
            kind: "a directory",
        } => os_error_with(EISDIR, &error.to_string(), path),
        Error::ManifestNotFound { ref start } => {
            // Not found is not found: the same class `open()` raises, naming the start dir.
            os_error_with(ENOENT, &error.to_string(), start)
        }
        Error::Invalid {
            ref path,
            ref problems,
        } => validation_error(py, path, problems),
        other => backstage_error(py, &error_chain(&other)),
    }
}

/// The Python exception for a Production Manager error. I/O that is plainly not found or not
/// permitted keeps its `OSError` subclass; a Sess that did not become healthy is an
/// `ApplyError` carrying `sess` and `log_tail`; anything else is an `ApplyError` when it
/// happened while putting the Production in place (`applying`), else a `BackstageError`.
pub(crate) fn manager_error(py: Python<'_>, error: ManagerError, applying: bool) -> PyErr {
    if let Some((errno, path)) = plain_io(&error) {
        return os_error_with(errno, &error_chain(&error), &path);
    }
    let message = error_chain(&error);
    match error {
        ManagerError::Unhealthy { sess, log_tail, .. } => {
            apply_error(py, message, Some(sess), log_tail)
        }
        // nginx refusing the candidate configuration is a failed apply whatever asked for it;
        // the message names the Venue or Gig.
        ManagerError::Nginx(backstage_nginx::Error::Rejected { .. }) => {
            apply_error(py, message, None, Vec::new())
        }
        _ if applying => apply_error(py, message, None, Vec::new()),
        _ => backstage_error(py, &message),
    }
}

/// The errno and path of an I/O error that is not found or not permitted.
fn plain_io(error: &ManagerError) -> Option<(i32, PathBuf)> {
    let (ManagerError::Io { path, source, .. }
    | ManagerError::File(FileError::Io { path, source, .. })
    | ManagerError::Uwsgi(backstage_uwsgi::Error::PathIo { path, source, .. })) = error
    else {
        return None;
    };
    matches!(
        source.kind(),
        ErrorKind::NotFound | ErrorKind::PermissionDenied
    )
    .then_some(())
    .and(source.raw_os_error())
    .map(|errno| (errno, path.clone()))
}

fn apply_error(
    py: Python<'_>,
    message: String,
    sess: Option<String>,
    log_tail: Vec<String>,
) -> PyErr {
    match APPLY_ERROR.import(py, ERRORS_MODULE, "ApplyError") {
        Ok(class) => PyErr::from_type(class.clone(), (message, sess, log_tail)),
        Err(e) => e,
    }
}

/// `ProtocolError` for a uwsgi client failure (connection, timeout, malformed response).
pub(crate) fn protocol_error(py: Python<'_>, error: &backstage_uwsgi::Error) -> PyErr {
    match PROTOCOL_ERROR.import(py, ERRORS_MODULE, "ProtocolError") {
        Ok(class) => PyErr::from_type(class.clone(), error_chain(error)),
        Err(e) => e,
    }
}

/// `ValidationError` for a manifest at `path` with `problems`.
pub(crate) fn validation_error(
    py: Python<'_>,
    path: &Path,
    problems: &[backstage_core::Problem],
) -> PyErr {
    let message = Error::Invalid {
        path: path.to_owned(),
        problems: problems.to_vec(),
    }
    .to_string();
    let problems: Vec<Problem> = problems.iter().map(Problem::from).collect();
    match VALIDATION_ERROR.import(py, ERRORS_MODULE, "ValidationError") {
        Ok(class) => PyErr::from_type(class.clone(), (message, problems)),
        Err(e) => e,
    }
}

/// A plain `BackstageError` with `message`.
fn backstage_error(py: Python<'_>, message: &str) -> PyErr {
    match BACKSTAGE_ERROR.import(py, ERRORS_MODULE, "BackstageError") {
        Ok(class) => PyErr::from_type(class.clone(), message.to_owned()),
        Err(e) => e,
    }
}

/// `OSError(errno, strerror, filename)`: Python picks the subclass from `errno`.
fn os_error(py: Python<'_>, errno: i32, path: &Path) -> PyErr {
    let strerror = py
        .import("os")
        .and_then(|os| os.call_method1("strerror", (errno,)))
        .and_then(|s| s.extract::<String>())
        .unwrap_or_else(|_| std::io::Error::from_raw_os_error(errno).to_string());
    os_error_with(errno, &strerror, path)
}

fn os_error_with(errno: i32, strerror: &str, path: &Path) -> PyErr {
    PyOSError::new_err((errno, strerror.to_owned(), path.as_os_str().to_owned()))
}

/// `ENOENT`: 2 on every platform Backstage runs on (Linux and the BSDs).
const ENOENT: i32 = 2;
/// `EISDIR`: 21 on Linux, where system and user mode run.
const EISDIR: i32 = 21;
