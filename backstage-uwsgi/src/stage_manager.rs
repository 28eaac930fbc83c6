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

use std::os::unix::fs::FileTypeExt as _;

use backstage_core::values::Slug;
use backstage_core::{Production, SessInstance, SessSocket, files};
use serde::Serialize;

use crate::emperor::{log_tail, pid_alive, read_pid};
use crate::error::{Error, io_err};
use crate::stats::{self, Stats, WorkerStats};
use crate::vassal::{find_sess, instance, render_vassal};

mod runtime;
pub(crate) use runtime::SessRuntime;
use runtime::parent_of;

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
    /// A copy with other settings is placed and was left running: `apply` replaces it.
    Outdated,
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
            rss_bytes: live.iter().map(|&(pid, w)| worker_rss(pid, w)).sum(),
            pids: live.iter().map(|&(pid, _)| pid).collect(),
        }
    }
}

/// A worker's resident memory in bytes: what uWSGI reported when it runs with `memory-report`
/// (Backstage's vassals do not: it costs a `/proc` read per request), otherwise read from
/// `/proc/PID/statm` at the time of asking; 0 when neither is known (the worker has gone, or
/// `/proc` hides other users' processes).
fn worker_rss(pid: u32, worker: &WorkerStats) -> u64 {
    if worker.rss > 0 {
        return worker.rss;
    }
    i32::try_from(pid)
        .ok()
        .and_then(|pid| procfs::process::Process::new(pid).ok())
        .and_then(|process| process.statm().ok())
        .map_or(0, |statm| {
            statm.resident.saturating_mul(procfs::page_size())
        })
}

/// Starts, stops, reloads and inspects the Sess of one Production.
///
/// A Sess on Backstage's default socket runs as copies (see
/// [`Production::instance`](backstage_core::Production::instance)): each copy has its own
/// vassal and socket, and the Sess' socket path is a symlink to the copy that serves. The
/// Production Manager starts a changed Sess' new copy beside the old one, moves the link once
/// the new copy answers, and retires the old one when it is idle.
#[derive(Debug, Clone)]
pub struct StageManager<'p> {
    production: &'p Production,
}

/// How long after its socket link moved away a copy is given before it counts as drained: a
/// `connect(2)` that resolved the old link just before it moved lands in its queue meanwhile.
const DRAIN_SETTLE: Duration = Duration::from_secs(1);

impl<'p> StageManager<'p> {
    /// The Stage Manager of a Production.
    pub fn new(production: &'p Production) -> StageManager<'p> {
        StageManager { production }
    }

    /// The copy of a Sess the manifest implies.
    pub fn wanted(&self, name: &str) -> Result<SessInstance, Error> {
        let (slug, _) = find_sess(self.production, name)?;
        instance(self.production, slug)
    }

    /// Every copy of the Sess whose vassal (ours) is placed, the wanted one first. Works for a
    /// Sess no longer in the manifest too.
    pub fn placed(&self, name: &Slug) -> Result<Vec<SessInstance>, Error> {
        let wanted = self.wanted(name.as_str()).ok();
        let mut found: Vec<SessInstance> = self
            .placed_copies()?
            .into_iter()
            .filter(|i| i.sess == *name)
            .collect();
        found.sort_by_key(|i| (Some(i) != wanted.as_ref(), i.id.clone()));
        Ok(found)
    }

    /// Every copy of any Sess whose vassal (ours) is in the vassal dir, in no set order.
    fn placed_copies(&self) -> Result<Vec<SessInstance>, Error> {
        let dir = self.production.layout.vassal_dir.as_path();
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", dir)(e)),
        };
        Ok(entries
            .filter_map(Result::ok)
            .filter_map(|e| self.production.instance_of_vassal(&e.path()))
            .filter(|i| {
                files::read_if_exists(i.vassal.as_path())
                    .ok()
                    .flatten()
                    .is_some_and(|c| files::is_ours(&c, &self.production.name))
            })
            .collect())
    }

    /// The copy that speaks for the Sess: the wanted one when placed, else one that is.
    pub fn current(&self, name: &str) -> Result<SessInstance, Error> {
        let (slug, _) = find_sess(self.production, name)?;
        Ok(match self.placed(slug)?.into_iter().next() {
            Some(i) => i,
            None => self.wanted(name)?,
        })
    }

    /// Places the Sess' wanted copy when no copy is placed (and points its socket link at
    /// it). A placed copy is left alone: when its settings are outdated, `apply` replaces it
    /// blue/green.
    pub fn start(&self, name: &str) -> Result<Placement, Error> {
        let (slug, _) = find_sess(self.production, name)?;
        let desired = render_vassal(self.production, slug)?;
        let wanted = self.wanted(name)?;
        let placed = self.placed(slug)?;
        let production = &self.production.name;
        // A vassal holds the Act's `env`: private in user mode (system mode: `apply` decides).
        let access =
            (self.production.mode == backstage_core::Mode::User).then_some(files::Access::PRIVATE);
        let placement = match placed.first() {
            None => {
                files::write_atomic_with(
                    &desired.path,
                    desired.content.as_bytes(),
                    production,
                    None,
                    access,
                )?;
                Placement::Created
            }
            Some(first) if *first != wanted => Placement::Outdated,
            Some(_) => match files::read_if_exists(&desired.path)? {
                // The wanted copy is placed but was edited: restore it (the Emperor reloads it).
                Some(old) if old != desired.content.as_bytes() => {
                    let when = next_mtime(Some(mtime(&desired.path)?));
                    files::write_atomic_with(
                        &desired.path,
                        desired.content.as_bytes(),
                        production,
                        Some(when),
                        access,
                    )?;
                    Placement::Reloaded
                }
                _ => Placement::Unchanged,
            },
        };
        if placement != Placement::Outdated {
            self.link(&wanted)?;
        }
        Ok(placement)
    }

    /// Reloads the Sess in place: every placed copy's vassal gets a newer mtime and the Emperor
    /// reloads it gracefully (new code, same settings). A Sess with no copy placed is started.
    pub fn reload(&self, name: &str) -> Result<Placement, Error> {
        let (slug, _) = find_sess(self.production, name)?;
        let placed = self.placed(slug)?;
        if placed.is_empty() {
            return self.start(name);
        }
        for copy in &placed {
            let path = copy.vassal.as_path();
            bump_mtime(path, Some(mtime(path)?))?;
        }
        Ok(Placement::Reloaded)
    }

    /// Stops the Sess: removes every copy's vassal, and the Emperor stops them. `Ok(false)` when
    /// no copy was placed.
    pub fn stop(&self, name: &str) -> Result<bool, Error> {
        let (slug, _) = find_sess(self.production, name)?;
        let placed = self.placed(slug)?;
        for copy in &placed {
            self.retire(copy)?;
        }
        Ok(!placed.is_empty())
    }

    /// Removes every placed vassal of this Production (ours only, whether its Sess is still in
    /// the manifest or not) and returns the copies removed. For when no Emperor runs: an
    /// Emperor started over a hundred placed vassals starts them all at once, so `up` clears
    /// them first and lets `apply` write them back (rendered from the manifest, so the same
    /// files) a batch at a time, each batch health-checked.
    pub fn unplace_all(&self) -> Result<Vec<SessInstance>, Error> {
        let mut removed = self.placed_copies()?;
        for copy in &removed {
            self.retire(copy)?;
        }
        removed.sort_by(|a, b| (&a.sess, &a.id).cmp(&(&b.sess, &b.id)));
        Ok(removed)
    }

    /// Removes a copy's vassal: the Emperor stops it at its next scan of the directory (every
    /// 3 s). (Asking the master for a graceful shutdown on its FIFO as well was tried: when the
    /// Emperor's stop arrives during that shutdown, uWSGI 2.0's master sometimes never exits.)
    pub fn retire(&self, copy: &SessInstance) -> Result<(), Error> {
        files::remove_ours(copy.vassal.as_path(), &self.production.name)?;
        Ok(())
    }

    /// Points the Sess' socket path at this copy's socket (a symlink, replaced atomically), so
    /// every new connection reaches it. Nothing to do for a Sess on a fixed address.
    pub fn link(&self, copy: &SessInstance) -> Result<(), Error> {
        let Some((link, target)) = socket_link(self.production, copy) else {
            return Ok(());
        };
        if fs::read_link(&link).is_ok_and(|t| t == target) {
            return Ok(());
        }
        if let Ok(m) = fs::symlink_metadata(&link)
            && !m.file_type().is_symlink()
            && !m.file_type().is_socket()
        {
            return Err(files::FileError::NotOurs {
                path: link,
                production: self.production.name.to_string(),
            }
            .into());
        }
        ensure_run_dir(self.production)?;
        let tmp = files::temp_name(&link);
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp).map_err(io_err("create link", &tmp))?;
        fs::rename(&tmp, &link).map_err(io_err("rename link", &link))?;
        Ok(())
    }

    /// Waits until a copy that no longer has the socket link serves nothing: a settling
    /// second, then every worker idle and nothing queued, twice in a row. A copy that stopped
    /// answering is drained too.
    pub fn drain(&self, copy: &SessInstance, timeout: Duration) -> Result<(), Error> {
        std::thread::sleep(DRAIN_SETTLE);
        let deadline = Instant::now() + timeout;
        let mut quiet = 0;
        while quiet < 2 && Instant::now() < deadline {
            match stats::read_unix_blocking(copy.stats.as_path(), STATS_TIMEOUT) {
                Ok(s) if s.listen_queue > 0 || s.workers.iter().any(|w| w.status.is_busy()) => {
                    quiet = 0;
                }
                _ => quiet += 1,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Waits until every copy of the Sess has exited (after [`Self::stop`]), then removes what
    /// they left, the Sess' socket link included. Works for a Sess no longer in the manifest.
    pub fn wait_stopped(&self, name: &str, timeout: Duration) -> Result<(), Error> {
        let name: Slug = match find_sess(self.production, name) {
            Ok((slug, _)) => slug.clone(),
            Err(e) => name.parse().map_err(|_| e)?,
        };
        for copy in SessRuntime::copies(self.production)
            .into_iter()
            .filter(|r| r.sess == name)
        {
            self.wait_copy_stopped(&copy.instance, timeout)?;
        }
        remove_link(self.production, &name)
    }

    /// Removes the runtime files of every copy whose vassal is gone and whose master is not
    /// running (a master stopped without `vacuum`, or one that kept an inherited socket): what
    /// an apply leaves must be its own live copies only. Never touches a file a live process
    /// listens on. Returns the copies cleaned.
    pub fn remove_dead_leftovers(&self) -> Result<Vec<SessInstance>, Error> {
        let mut cleaned = Vec::new();
        for r in SessRuntime::copies(self.production) {
            if r.instance.vassal.as_path().exists() || r.live_master().is_some() {
                continue;
            }
            let had_files = r
                .files
                .iter()
                .chain([&r.pid_file])
                .any(|f| fs::symlink_metadata(f).is_ok_and(|m| !m.file_type().is_symlink()));
            if had_files {
                r.remove_leftovers()?;
                cleaned.push(r.instance);
            }
        }
        Ok(cleaned)
    }

    /// The copies of any Sess (in the manifest or not) whose vassal is no longer placed but
    /// whose master still runs: retired, and not stopped by the Emperor yet.
    pub fn unplaced_running(&self) -> Vec<SessInstance> {
        SessRuntime::copies(self.production)
            .into_iter()
            .filter(|r| !r.instance.vassal.as_path().exists() && r.live_master().is_some())
            .map(|r| r.instance)
            .collect()
    }

    /// Waits until one copy's master has exited, then removes the runtime files it left:
    /// uWSGI's `vacuum` skips a unix socket the master inherited across a reload ("changed
    /// inode. Skip removal"), so a reloaded copy leaves its socket behind.
    ///
    /// A master whose vassal is gone is the Emperor's to stop; one that is still there after a
    /// third of `timeout` (seen under load with a master stopped while it was still starting)
    /// gets `SIGINT` from Backstage, and `SIGKILL` after another third: no one wants that copy.
    pub fn wait_copy_stopped(&self, copy: &SessInstance, timeout: Duration) -> Result<(), Error> {
        use nix::sys::signal::{Signal, kill};
        let runtime = SessRuntime::of(self.production, copy);
        let start = Instant::now();
        let mut sent: Option<Signal> = None;
        while let Some(pid) = runtime.live_master() {
            let waited = start.elapsed();
            if waited > timeout {
                return Err(Error::SessStop {
                    sess: copy.sess.to_string(),
                    pid,
                    seconds: timeout.as_secs(),
                });
            }
            let escalate = match sent {
                None if waited > timeout / 3 => Some(Signal::SIGINT),
                Some(Signal::SIGINT) if waited > timeout * 2 / 3 => Some(Signal::SIGKILL),
                _ => None,
            };
            if let Some(signal) = escalate
                && !copy.vassal.as_path().exists()
            {
                let _ = kill(nix::unistd::Pid::from_raw(pid), signal);
                sent = Some(signal);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        runtime.remove_leftovers()
    }

    /// The pid of a copy's live master, if one runs: the process its pid file names, or, before
    /// the master has written it, the uWSGI process started with the copy's vassal file.
    pub fn master_pid(&self, copy: &SessInstance) -> Option<i32> {
        SessRuntime::of(self.production, copy).live_master()
    }

    /// The Sess' state now. While it is being replaced (two copies placed), that of the copy
    /// its socket link points at when that one runs: it is the one serving. Otherwise that of
    /// [`Self::current`]. `emperor_running` says whether an Emperor serves the vassal dir
    /// (user mode: [`Emperor::is_running`](crate::emperor::Emperor::is_running); system mode:
    /// the system service's state).
    pub fn state(&self, name: &str, emperor_running: bool) -> Result<SessState, Error> {
        let (slug, _) = find_sess(self.production, name)?;
        let placed = self.placed(slug)?;
        if placed.len() > 1
            && let Some(serving) = self.linked(&placed)
        {
            let state = self.copy_state(serving, emperor_running);
            if matches!(state, SessState::Running { .. }) {
                return Ok(state);
            }
        }
        Ok(self.copy_state(&self.current(name)?, emperor_running))
    }

    /// The copy among `copies` (of one Sess) that the Sess' socket link points at.
    fn linked<'c>(&self, copies: &'c [SessInstance]) -> Option<&'c SessInstance> {
        copies.iter().find(|copy| {
            socket_link(self.production, copy)
                .is_some_and(|(link, target)| fs::read_link(link).is_ok_and(|t| t == target))
        })
    }

    /// One copy's state now. What its stats socket says is believed only so far: workers
    /// count when they are live children of the copy's master, and at most as many as its
    /// vassal's `processes`.
    pub fn copy_state(&self, copy: &SessInstance, emperor_running: bool) -> SessState {
        let placed = copy.vassal.as_path().exists();
        let stats = if placed && emperor_running {
            // Any failure counts as "its stats socket does not answer".
            stats::read_unix_blocking(copy.stats.as_path(), STATS_TIMEOUT)
                .ok()
                .map(|s| self.credible(copy, s))
        } else {
            None
        };
        match SessState::assess(placed, emperor_running, stats.as_ref(), Vec::new()) {
            SessState::Failed { reason, .. } => SessState::Failed {
                reason,
                log_tail: log_tail(
                    self.production.log_file(&copy.sess).as_path(),
                    LOG_TAIL_LINES,
                ),
            },
            other => other,
        }
    }

    /// The workers of a stats document that are live children of the copy's master, at most
    /// as many as the copy runs (its vassal's `processes`, else the manifest's, else
    /// [`stats::MAX_WORKERS`]).
    fn credible(&self, copy: &SessInstance, mut stats: Stats) -> Stats {
        let master = SessRuntime::of(self.production, copy).live_master();
        stats.workers.retain(|w| {
            master.is_some()
                && i32::try_from(w.pid)
                    .ok()
                    .filter(|&pid| pid > 0)
                    .and_then(parent_of)
                    == master
        });
        stats.workers.truncate(self.processes_of(copy));
        stats
    }

    /// How many workers a copy runs: its vassal's `processes`, else the manifest's.
    fn processes_of(&self, copy: &SessInstance) -> usize {
        let from_vassal = fs::read_to_string(copy.vassal.as_path())
            .ok()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    let (key, value) = l.split_once('=')?;
                    (key.trim() == "processes").then(|| value.trim().parse::<usize>().ok())?
                })
            });
        from_vassal
            .or_else(|| {
                self.production
                    .sess
                    .get(&copy.sess)
                    .map(|s| usize::from(s.processes))
            })
            .unwrap_or(stats::MAX_WORKERS)
            .min(stats::MAX_WORKERS)
    }

    /// Polls a copy's state until it runs, its app visibly fails to load (uWSGI logs
    /// `no app loaded. GAME OVER` after this call began: an older failure in the log does not
    /// count), or `timeout` passed; returns the last state seen.
    pub fn wait_copy_running(
        &self,
        copy: &SessInstance,
        emperor_running: bool,
        timeout: Duration,
    ) -> SessState {
        let log = self.production.log_file(&copy.sess);
        let mark = fs::metadata(log.as_path()).map_or(0, |m| m.len());
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.copy_state(copy, emperor_running);
            let gave_up = match &state {
                SessState::Running { .. } | SessState::Stopped => true,
                SessState::Failed { .. } => {
                    logged_since(log.as_path(), mark, "no app loaded. GAME OVER")
                }
            };
            if gave_up || Instant::now() > deadline {
                return state;
            }
            // Often: a switch waits on this, and a look at the stats socket is cheap.
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    /// [`Self::wait_copy_running`] for the Sess' current copy.
    pub fn wait_running(
        &self,
        name: &str,
        emperor_running: bool,
        timeout: Duration,
    ) -> Result<SessState, Error> {
        Ok(self.wait_copy_running(&self.current(name)?, emperor_running, timeout))
    }

    /// The log file of a Sess (its failures' tracebacks land there).
    pub fn log_file(&self, name: &Slug) -> std::path::PathBuf {
        self.production.log_file(name).as_path().to_owned()
    }
}

/// Creates the run dir if missing: user mode only for this user (as the Emperor makes it),
/// system mode searchable by nginx's group too (the sockets themselves are `660`).
pub fn ensure_run_dir(production: &Production) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = production.layout.run_dir.as_path();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(match production.mode {
            backstage_core::Mode::User => 0o700,
            backstage_core::Mode::System => 0o755,
        })
        .create(dir)
        .map_err(io_err("create directory", dir))
}

/// The Sess' socket link and the copy socket it should point at, for a copy with an id.
pub fn socket_link(production: &Production, copy: &SessInstance) -> Option<(PathBuf, PathBuf)> {
    let (Some(_), SessSocket::Unix(target)) = (&copy.id, &copy.socket) else {
        return None;
    };
    let link = Production::default_socket(&production.layout, &production.name, &copy.sess);
    Some((link.as_path().to_owned(), target.as_path().to_owned()))
}

/// Removes a Sess' socket link (never anything else at that path but a stale socket).
fn remove_link(production: &Production, sess: &Slug) -> Result<(), Error> {
    let link = Production::default_socket(&production.layout, &production.name, sess);
    let path = link.as_path();
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() || m.file_type().is_socket() => {
            fs::remove_file(path).map_err(io_err("remove", path))
        }
        _ => Ok(()),
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
        // A worker uWSGI reports no memory for (no `memory-report`): read from /proc.
        let me = std::process::id();
        let unreported = Stats {
            workers: vec![w(i64::from(me), 1, 0)],
            ..Stats::default()
        };
        match SessState::assess(true, true, Some(&unreported), vec![]) {
            SessState::Running { rss_bytes, .. } => assert!(rss_bytes > 0, "read from /proc"),
            other => panic!("not running: {other:?}"),
        }
        let failed = SessState::assess(true, true, None, vec!["boom".into()]);
        assert_eq!(failed.name(), "failed");
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["state"], "failed");
        assert_eq!(json["log_tail"][0], "boom");
    }

    fn club(dir: &Path) -> Production {
        let text = "[production]\nname = \"jazzclub\"\n\n[acts.club]\nroot = \"club\"\n\
                    wsgi = \"club.wsgi:application\"\n\n[stages.local]\nvirtualenv = \"venv\"\n\n\
                    [sess.club-a]\nact = \"club\"\nstage = \"local\"\n";
        let path = dir.join("backstage.toml");
        fs::write(&path, text).unwrap();
        backstage_core::Manifest::read(&path)
            .unwrap()
            .load()
            .unwrap()
    }

    /// A stand-in for a master the Emperor has just started: `uwsgi --ini <vassal>` on its
    /// command line (before `procname-prefix` applies), no pid file yet.
    fn starting_master(vassal_name: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt as _;
        // A builtin waiting on a pipe: no child that would carry this command line for a moment.
        std::process::Command::new("/bin/sh")
            .arg0("uwsgi")
            .args(["-c", "read _", "--ini", vassal_name])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    #[test]
    fn a_just_started_master_is_live_and_its_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = club(dir.path());
        let manager = StageManager::new(&p);
        let copy = manager.wanted("club-a").unwrap();
        let runtime = SessRuntime::of(&p, &copy);
        assert_eq!(runtime.live_master(), None, "nothing runs yet");

        fs::create_dir_all(copy.pid_file.as_path().parent().unwrap()).unwrap();
        let name = runtime.vassal_name.clone();
        let mut master = starting_master(&name);
        let pid = i32::try_from(master.id()).unwrap();
        // Its stats socket is bound and listened on; its pid file is not written yet.
        let stats = std::os::unix::net::UnixListener::bind(copy.stats.as_path()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while runtime.live_master().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(runtime.live_master(), Some(pid), "found by its vassal file");
        assert_eq!(manager.master_pid(&copy), Some(pid));
        runtime.remove_leftovers().unwrap();
        assert!(copy.stats.as_path().exists(), "a live master's socket kept");

        // Its pid file, once written, names it (the process name is the Sess', not the copy's).
        fs::write(copy.pid_file.as_path(), format!("{pid}\n")).unwrap();
        assert_eq!(runtime.live_master(), Some(pid));
        runtime.remove_leftovers().unwrap();
        assert!(
            copy.pid_file.as_path().exists(),
            "a live master's pid file kept"
        );

        master.kill().unwrap();
        master.wait().unwrap();
        assert_eq!(runtime.live_master(), None, "gone");
        // Something still listens on the stats socket: it stays; the pid file goes.
        runtime.remove_leftovers().unwrap();
        assert!(
            !copy.pid_file.as_path().exists(),
            "a dead master's pid file removed"
        );
        assert!(copy.stats.as_path().exists(), "a socket in use kept");
        drop(stats);
        // A process another test forks in parallel holds a copy of the listener until it
        // execs (close-on-exec): the socket is in use that long, rightly kept; then it goes.
        let deadline = Instant::now() + Duration::from_secs(2);
        runtime.remove_leftovers().unwrap();
        while copy.stats.as_path().exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            runtime.remove_leftovers().unwrap();
        }
        assert!(!copy.stats.as_path().exists(), "a stale socket removed");
    }

    #[test]
    fn another_copys_master_is_not_this_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = club(dir.path());
        let copy = StageManager::new(&p).wanted("club-a").unwrap();
        let runtime = SessRuntime::of(&p, &copy);
        let other = p.instance(&copy.sess, None);
        let mut master = starting_master(
            &other
                .vassal
                .as_path()
                .file_name()
                .unwrap()
                .to_string_lossy(),
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(runtime.live_master(), None);
        master.kill().unwrap();
        master.wait().unwrap();
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
