//! Reloading a running nginx, and confirming that the reload took.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, io_err};

/// What a reload that took looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// The master's pid.
    pub master: i32,
    /// Its children before the signal (they finish their requests and exit).
    pub old_workers: Vec<i32>,
    /// Children started by the reload: they run the new configuration.
    pub new_workers: Vec<i32>,
    /// Whether every old worker had exited by the deadline (one may still be finishing a
    /// long request; it accepts no new ones).
    pub old_exited: bool,
}

/// Reads the nginx master's pid from `pid_file`.
pub fn master_pid(pid_file: &Path) -> Result<i32, Error> {
    let text = std::fs::read_to_string(pid_file).map_err(io_err("read", pid_file))?;
    let trimmed = text.trim();
    match trimmed.parse::<i32>() {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => Err(Error::BadPidFile {
            path: pid_file.to_owned(),
            content: trimmed.chars().take(40).collect(),
        }),
    }
}

/// Reloads the nginx whose master pid is in `pid_file` (SIGHUP), then waits up to `deadline`
/// for new workers to appear and the old ones to leave: only then is the new configuration
/// serving. nginx keeps the old
/// configuration when it rejects the new one; that is [`Error::ReloadNotTaken`], naming
/// `error_log` when given.
pub fn reload(
    pid_file: &Path,
    error_log: Option<&Path>,
    deadline: Duration,
) -> Result<Reloaded, Error> {
    reload_with(pid_file, error_log, deadline, |master| {
        kill(Pid::from_raw(master), Signal::SIGHUP).map_err(|source| Error::Signal {
            pid: master,
            source,
        })
    })
}

/// [`reload`] with another way of telling the master (`systemctl reload nginx`): `trigger`
/// gets the master's pid once its current workers are known.
pub(crate) fn reload_with(
    pid_file: &Path,
    error_log: Option<&Path>,
    deadline: Duration,
    trigger: impl FnOnce(i32) -> Result<(), Error>,
) -> Result<Reloaded, Error> {
    let master = master_pid(pid_file)?;
    let old: BTreeSet<i32> = children(master).into_iter().collect();
    trigger(master)?;
    let start = Instant::now();
    loop {
        let now: Vec<i32> = children(master);
        let new: Vec<i32> = now.iter().copied().filter(|p| !old.contains(p)).collect();
        if !new.is_empty() {
            // Old workers close their listeners when told to quit, just after the new ones
            // start; wait for that so the next request surely meets the new configuration.
            // One still finishing a long request past the deadline is not a failure.
            while start.elapsed() < deadline && children(master).iter().any(|p| old.contains(p)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let old_exited = !children(master).iter().any(|p| old.contains(p));
            return Ok(Reloaded {
                master,
                old_workers: old.into_iter().collect(),
                new_workers: new,
                old_exited,
            });
        }
        if start.elapsed() >= deadline {
            return Err(Error::ReloadNotTaken {
                pid: master,
                waited_ms: start.elapsed().as_millis(),
                error_log: error_log.map(PathBuf::from),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids whose parent is `parent`, from `/proc/*/stat` (works without
/// `CONFIG_PROC_CHILDREN`). Processes that vanish while being read are skipped.
pub fn children(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect();
    out.sort_unstable();
    out
}

/// The parent pid in `/proc/<pid>/stat`: the field after the `)` closing the command name
/// (which may itself hold spaces and parentheses) and the state.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_its_own_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = i32::try_from(std::process::id()).unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let kids = children(me);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(kids.contains(&pid), "{kids:?} lacks {pid}");
    }

    #[test]
    fn bad_pid_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nginx.pid");
        std::fs::write(&p, "not a pid\n").unwrap();
        assert!(matches!(master_pid(&p), Err(Error::BadPidFile { .. })));
        std::fs::write(&p, "4242\n").unwrap();
        assert_eq!(master_pid(&p).unwrap(), 4242);
        assert!(matches!(
            master_pid(&dir.path().join("missing")),
            Err(Error::Io { .. })
        ));
    }
}
