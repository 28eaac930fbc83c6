//! Controlling a running uWSGI master: master FIFO commands and signals.
use std::{fs::OpenOptions, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

pub use nix::{sys::signal::Signal, unistd::Pid};

use crate::error::Error;

/// A one-byte master FIFO command (an open set; see uWSGI's "Master FIFO" docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FifoCommand(u8);

impl FifoCommand {
    /// `r`: gracefully reload the instance.
    pub const GRACEFUL_RELOAD: FifoCommand = FifoCommand(b'r');
    /// `R`: brutally reload the instance.
    pub const BRUTAL_RELOAD: FifoCommand = FifoCommand(b'R');
    /// `w`: gracefully reload the workers only.
    pub const GRACEFUL_RELOAD_WORKERS: FifoCommand = FifoCommand(b'w');
    /// `W`: brutally reload the workers only.
    pub const BRUTAL_RELOAD_WORKERS: FifoCommand = FifoCommand(b'W');
    /// `c`: chain-reload the workers, one after the other.
    pub const CHAIN_RELOAD: FifoCommand = FifoCommand(b'c');
    /// `q`: gracefully shut the instance down.
    pub const GRACEFUL_SHUTDOWN: FifoCommand = FifoCommand(b'q');
    /// `Q`: brutally shut the instance down.
    pub const BRUTAL_SHUTDOWN: FifoCommand = FifoCommand(b'Q');
    /// `s`: print stats in the instance's log.
    pub const LOG_STATS: FifoCommand = FifoCommand(b's');
    /// `l`: reopen the log file.
    pub const REOPEN_LOG: FifoCommand = FifoCommand(b'l');
    /// `p`: pause or resume the instance.
    pub const TOGGLE_PAUSE: FifoCommand = FifoCommand(b'p');

    /// Any command byte.
    pub const fn new(byte: u8) -> Self {
        Self(byte)
    }

    /// The byte written to the FIFO.
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// Writes `commands` to the master FIFO at `path`, in one write.
///
/// The FIFO is opened non-blocking: when no master reads it, this fails at once with
/// [`Error::MasterNotRunning`] instead of waiting for one.
pub fn write_fifo(path: &Path, commands: &[FifoCommand]) -> Result<(), Error> {
    let fifo_error = |source| Error::Fifo {
        path: path.to_owned(),
        source,
    };
    let mut fifo = OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(nix::errno::Errno::ENXIO as i32) {
                Error::MasterNotRunning {
                    path: path.to_owned(),
                }
            } else {
                fifo_error(source)
            }
        })?;
    let bytes: Vec<u8> = commands.iter().map(|c| c.0).collect();
    fifo.write_all(&bytes).map_err(fifo_error)
}

/// Sends `signal` to the master `pid`.
///
/// uWSGI 2.0 reads `SIGHUP` as a graceful reload, `SIGTERM` as a brutal *reload* (not a stop),
/// and `SIGINT`/`SIGQUIT` as a shutdown.
pub fn signal(pid: Pid, signal: Signal) -> Result<(), Error> {
    nix::sys::signal::kill(pid, signal).map_err(|source| Error::Signal {
        pid: pid.as_raw(),
        signal,
        source,
    })
}

/// Gracefully reloads the instance whose master is `pid` (`SIGHUP`).
pub fn reload(pid: Pid) -> Result<(), Error> {
    signal(pid, Signal::SIGHUP)
}

/// Shuts down the instance whose master is `pid` (`SIGINT`).
pub fn shutdown(pid: Pid) -> Result<(), Error> {
    signal(pid, Signal::SIGINT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_without_reader_is_a_dead_master() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = write_fifo(&path, &[FifoCommand::GRACEFUL_RELOAD]).unwrap_err();
        assert!(matches!(err, Error::MasterNotRunning { .. }), "{err:?}");
        assert!(err.to_string().contains("has no reader"));
    }

    #[test]
    fn a_missing_fifo_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_fifo(&dir.path().join("nope"), &[FifoCommand::LOG_STATS]).unwrap_err();
        assert!(matches!(err, Error::Fifo { .. }), "{err:?}");
    }

    #[test]
    fn signalling_a_pid_that_does_not_exist_is_an_error() {
        // pid_max is at most 2^22 on Linux, so this pid never exists.
        let err = shutdown(Pid::from_raw(i32::MAX)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot send `SIGINT` to uWSGI master pid `2147483647`"
        );
    }
}
