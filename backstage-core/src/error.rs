//! The core's error type.

use std::path::PathBuf;

use crate::problem::Problem;

/// What can go wrong loading a Production.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `backstage.toml` in the start directory or any parent.
    #[error("no `backstage.toml` in `{}` or any parent directory", start.display())]
    ManifestNotFound {
        /// Where the search started.
        start: PathBuf,
    },
    /// The manifest could not be read.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest has problems; every one is listed.
    #[error("`{}` has {} problem{}", path.display(), problems.len(), if problems.len() == 1 { "" } else { "s" })]
    Invalid {
        /// The manifest's path.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}
