//! The Stage Manager: starts, stops and reloads Sess through the Emperor's vassal directory.
//!
//! Start = the vassal file appears (written to a hidden `.tmp` name the Emperor ignores — it
//! only reads names ending in `.ini`, `.xml`, `.yml`, `.yaml`, `.js` or `.json` — fsynced, then
//! renamed into place). Reload = the file's mtime moves at least one whole second past the
//! previous one (the Emperor compares whole seconds, `st_mtime > last_mod`). Stop = the file is
//! removed. A file without this Production's marker is never touched.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backstage_core::values::Slug;
use backstage_core::{Production, SessSocket, files};
use serde::Serialize;

use crate::emperor::{log_tail, pid_alive, read_pid};
use crate::error::{Error, io_err};
use crate::stats::{self, Stats, WorkerStats};
use crate::vassal::{find_sess, render_vassal};

/// Lines of a Sess' log shown with a failure.
const LOG_TAIL_LINES: usize = 20;

/// How long a Sess' stats socket may stay silent before it counts as not answering.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// What placing a vassal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// The file did not exist: the Emperor starts the Sess.
    Created,
    /// The file changed (or was touched): the Emperor reloads the Sess.
    Reloaded,
    /// The file was already as wanted: nothing was touched.
    Unchanged,
}

/// The state of a Sess (`status --json`'s `state`, `workers`, `requests`, `rss_bytes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum SessState {
    /// Its vassal is placed and its master answers on the stats socket with live workers.
    Running {
        /// Live worker processes.
        workers: u32,
        /// Requests served since the workers started.
        requests: u64,
        /// Resident memory of the workers, in bytes.
        rss_bytes: u64,
        /// The workers' pids.
        pids: Vec<u32>,
    },
    /// No vassal file, or no Emperor to run it.
    Stopped,
    /// The vassal is placed but the Sess does not serve.
    Failed {
        /// Why, in one line.
        reason: String,
        /// The last lines of the Sess' log (e.g. the traceback of a failed import).
        log_tail: Vec<String>,
    },
}

impl SessState {
    /// `running`, `stopped` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            SessState::Running { .. } => "running",
            SessState::Stopped => "stopped",
            SessState::Failed { .. } => "failed",
        }
    }

    /// Judges a Sess from what was observed: whether its vassal file is placed, whether an
    /// Emperor runs it, what its stats socket said (if it answered), and its log's last lines.
    pub fn assess(
        vassal_placed: bool,
        emperor_running: bool,
        stats: Option<&Stats>,
        log_tail: Vec<String>,
    ) -> SessState {
        if !vassal_placed || !emperor_running {
            return SessState::Stopped;
        }
        let live: Vec<(u32, &WorkerStats)> = stats
            .map(|s| {
                s.workers
                    .iter()
                    .filter_map(|w| u32::try_from(w.pid).ok().filter(|&p| p > 0).zip(Some(w)))
                    .collect()
            })
            .unwrap_or_default();
        if live.is_empty() {
            let reason = if stats.is_some() {
                "its master answers but has no live worker"
            } else {
                "its stats socket does not answer"
            };
            return SessState::Failed {
                reason: reason.to_owned(),
                log_tail,
            };
        }
        SessState::Running {
            workers: u32::try_from(live.len()).unwrap_or(u32::MAX),
            requests: live.iter().map(|(_, w)| w.requests).sum(),
            rss_bytes: live.iter().map(|(_, w)| w.rss).sum(),
            pids: live.iter().map(|&(pid, _)| pid).collect(),
        }
    }
}

/// Starts, stops, reloads and inspects the Sess of one Production.
#[derive(Debug, Clone)]
pub struct StageManager<'p> {
    production: &'p Production,
}

impl<'p> StageManager<'p> {
    /// The Stage Manager of a Production.
    pub fn new(production: &'p Production) -> StageManager<'p> {
        StageManager { production }
    }

    /// Places the Sess' vassal: creates it, or rewrites and reloads it when its content
    /// changed; an unchanged vassal is not touched.
    pub fn start(&self, name: &str) -> Result<Placement, Error> {
        self.place(name, false)
    }

    /// Reloads the Sess: rewrites its vassal if it changed, and moves its mtime either way.
    /// A Sess that was not placed is started.
    pub fn reload(&self, name: &str) -> Result<Placement, Error> {
        self.place(name, true)
    }

    /// Removes the Sess' vassal; the Emperor stops it. `Ok(false)` when it was not placed.
    pub fn stop(&self, name: &str) -> Result<bool, Error> {
        let (name, _) = find_sess(self.production, name)?;
        let path = self.production.vassal_file(name);
        Ok(files::remove_ours(path.as_path(), &self.production.name)?)
    }

    /// Waits until the Sess' master has exited (after [`Self::stop`]), then removes the
    /// runtime files it left: uWSGI's `vacuum` skips a unix socket the master inherited across
    /// a reload ("changed inode. Skip removal"), so a reloaded Sess leaves its socket behind.
    ///
    /// Works for a retired Sess too (one no longer in the manifest), by its name.
    pub fn wait_stopped(&self, name: &str, timeout: Duration) -> Result<(), Error> {
        let name: Slug = match find_sess(self.production, name) {
            Ok((slug, _)) => slug.clone(),
            Err(e) => name.parse().map_err(|_| e)?,
        };
        let name = &name;
        let runtime = SessRuntime::of(self.production, name);
        let deadline = Instant::now() + timeout;
        while let Some(pid) = runtime.live_master() {
            if Instant::now() > deadline {
                return Err(Error::SessStop {
                    sess: name.to_string(),
                    pid,
                    seconds: timeout.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        runtime.remove_leftovers()
    }

    fn place(&self, name: &str, touch: bool) -> Result<Placement, Error> {
        let (name, _) = find_sess(self.production, name)?;
        let desired = render_vassal(self.production, name)?;
        let path = desired.path.as_path();
        let production = &self.production.name;
        let existing = files::read_if_exists(path)?;
        let previous_mtime = match &existing {
            Some(_) => Some(mtime(path)?),
            None => None,
        };
        match existing {
            None => {
                files::write_atomic(path, desired.content.as_bytes(), production)?;
                Ok(Placement::Created)
            }
            Some(old) if old == desired.content.as_bytes() => {
                if !touch {
                    return Ok(Placement::Unchanged);
                }
                if !files::is_ours(&old, production) {
                    return Err(files::FileError::NotOurs {
                        path: path.to_owned(),
                        production: production.to_string(),
                    }
                    .into());
                }
                bump_mtime(path, previous_mtime)?;
                Ok(Placement::Reloaded)
            }
            Some(_) => {
                // The new content arrives with its final mtime: the Emperor reloads once.
                let when = next_mtime(previous_mtime);
                files::write_atomic_at(path, desired.content.as_bytes(), production, Some(when))?;
                Ok(Placement::Reloaded)
            }
        }
    }

    /// The Sess' state now. `emperor_running` says whether an Emperor serves the vassal dir
    /// (user mode: [`Emperor::is_running`](crate::emperor::Emperor::is_running); system mode:
    /// the system service's state).
    pub fn state(&self, name: &str, emperor_running: bool) -> Result<SessState, Error> {
        let (name, _) = find_sess(self.production, name)?;
        let placed = self.production.vassal_file(name).as_path().exists();
        let stats = if placed && emperor_running {
            // Any failure counts as "its stats socket does not answer".
            stats::read_unix_blocking(self.production.stats_socket(name).as_path(), STATS_TIMEOUT)
                .ok()
        } else {
            None
        };
        let tail = log_tail(self.production.log_file(name).as_path(), LOG_TAIL_LINES);
        Ok(SessState::assess(
            placed,
            emperor_running,
            stats.as_ref(),
            tail,
        ))
    }

    /// Polls the Sess' state until it runs, its app visibly fails to load (uWSGI logs
    /// `no app loaded. GAME OVER` after this call began: an older failure in the log does not
    /// count), or `timeout` passed; returns the last state seen.
    pub fn wait_running(
        &self,
        name: &str,
        emperor_running: bool,
        timeout: Duration,
    ) -> Result<SessState, Error> {
        let (slug, _) = find_sess(self.production, name)?;
        let log = self.production.log_file(slug);
        let mark = fs::metadata(log.as_path()).map_or(0, |m| m.len());
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.state(name, emperor_running)?;
            let gave_up = match &state {
                SessState::Running { .. } | SessState::Stopped => true,
                SessState::Failed { .. } => {
                    logged_since(log.as_path(), mark, "no app loaded. GAME OVER")
                }
            };
            if gave_up || Instant::now() > deadline {
                return Ok(state);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The log file of a Sess (its failures' tracebacks land there).
    pub fn log_file(&self, name: &Slug) -> std::path::PathBuf {
        self.production.log_file(name).as_path().to_owned()
    }
}

/// The runtime artefacts of one Sess: its master's pid file and process name, and the files
/// it creates under the run dir.
#[derive(Debug, Clone)]
pub(crate) struct SessRuntime {
    pub(crate) name: String,
    /// `backstage.<production>.<sess> `: the prefix of its processes' names.
    procname: String,
    pid_file: PathBuf,
    /// Socket (when unix), stats socket, master FIFO.
    files: Vec<PathBuf>,
}

impl SessRuntime {
    pub(crate) fn of(production: &Production, name: &Slug) -> SessRuntime {
        let mut files = vec![
            production.stats_socket(name).as_path().to_owned(),
            production.master_fifo(name).as_path().to_owned(),
        ];
        match production.sess.get(name).map(|s| &s.socket) {
            Some(SessSocket::Unix(path)) => files.push(path.as_path().to_owned()),
            Some(SessSocket::Tcp(_)) => {}
            // A retired Sess: its socket, if it had the default one.
            None => files.push(
                Production::default_socket(&production.layout, &production.name, name)
                    .as_path()
                    .to_owned(),
            ),
        }
        SessRuntime {
            name: name.to_string(),
            procname: format!("{} ", production.generated_name(name, "").as_str()),
            pid_file: production.pid_file(name).as_path().to_owned(),
            files,
        }
    }

    /// The pid of its live master: its pid file names a live process whose command line
    /// carries the Sess' process name (a reused pid is someone else's).
    pub(crate) fn live_master(&self) -> Option<i32> {
        let pid = read_pid(&self.pid_file).filter(|&p| pid_alive(p))?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(self.procname.as_str())
            .then_some(pid)
    }

    /// Removes what a master that is gone left behind. Only call when no master runs.
    pub(crate) fn remove_leftovers(&self) -> Result<(), Error> {
        for path in self.files.iter().chain([&self.pid_file]) {
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err("remove", path)(e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether `needle` appears in the file past byte `mark` (a log truncated since counts whole).
fn logged_since(path: &Path, mark: u64, needle: &str) -> bool {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let start = if len < mark { 0 } else { mark };
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
        return false;
    }
    String::from_utf8_lossy(&buf).contains(needle)
}

fn mtime(path: &Path) -> Result<SystemTime, Error> {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(io_err("stat", path))
}

/// Now, but at least one whole second past `previous`: the Emperor compares whole seconds, so
/// a change within the same second as the last one must still move the mtime.
pub fn next_mtime(previous: Option<SystemTime>) -> SystemTime {
    let now = SystemTime::now();
    match previous.and_then(|p| p.duration_since(UNIX_EPOCH).ok()) {
        Some(p) => now.max(UNIX_EPOCH + Duration::from_secs(p.as_secs() + 1)),
        None => now,
    }
}

/// Sets `path`'s mtime to [`next_mtime`].
fn bump_mtime(path: &Path, previous: Option<SystemTime>) -> Result<(), Error> {
    let target = next_mtime(previous);
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_modified(target)?;
            f.sync_all()
        })
        .map_err(io_err("set the mtime of", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assess_states() {
        let w = |pid, requests, rss| WorkerStats {
            pid,
            requests,
            rss,
            ..WorkerStats::default()
        };
        let stats = Stats {
            workers: vec![w(10, 3, 100), w(11, 4, 200), w(0, 0, 0)],
            ..Stats::default()
        };
        assert_eq!(
            SessState::assess(true, true, Some(&stats), vec![]),
            SessState::Running {
                workers: 2,
                requests: 7,
                rss_bytes: 300,
                pids: vec![10, 11]
            }
        );
        assert_eq!(
            SessState::assess(false, true, Some(&stats), vec![]),
            SessState::Stopped
        );
        assert_eq!(
            SessState::assess(true, false, None, vec![]),
            SessState::Stopped
        );
        let failed = SessState::assess(true, true, None, vec!["boom".into()]);
        assert_eq!(failed.name(), "failed");
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["state"], "failed");
        assert_eq!(json["log_tail"][0], "boom");
    }

    #[test]
    fn mtime_moves_a_whole_second_past_the_previous() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.ini");
        fs::write(&p, "x").unwrap();
        let before = mtime(&p).unwrap();
        bump_mtime(&p, Some(before)).unwrap();
        let after = mtime(&p).unwrap();
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(secs(after) > secs(before));
        // Twice in a row still moves it: each bump is relative to the last one.
        bump_mtime(&p, Some(after)).unwrap();
        assert!(secs(mtime(&p).unwrap()) > secs(after));
    }

    #[test]
    fn stats_document_parses_leniently() {
        let doc = br#"{"version":"2.0.31","workers":[{"id":1,"pid":42,"requests":5,"rss":1024,"status":"idle","apps":[]}]}"#;
        let s = Stats::parse(doc).unwrap();
        assert_eq!(s.workers[0].pid, 42);
        assert_eq!(s.workers[0].rss, 1024);
    }
}
