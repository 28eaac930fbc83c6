//! The user-mode uWSGI Emperor: one per Production, over `<state_dir>/vassals`.
//!
//! Backstage starts it detached into its own process group (it outlives the `backstage`
//! command), with a pid file under the run dir and a log file under the log dir, and a scan
//! interval of one second so a new vassal starts within about a second. Stopping sends
//! `SIGINT` (the Emperor stops every vassal, then exits) and waits until the Emperor and every
//! vassal of the Production are gone. In system mode the system's Emperor serves
//! `/etc/uwsgi-emperor/vassals` (or the manifest's `vassal_dir`) and Backstage never runs one.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use backstage_core::{Mode, Production};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, io_err};
use crate::stage_manager::SessRuntime;

/// How often a wait polls.
const POLL: Duration = Duration::from_millis(50);

/// Whether [`Emperor::start`] started the Emperor or found it running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A new Emperor was started with this pid.
    Now(i32),
    /// An Emperor with this pid was already running.
    AlreadyRunning(i32),
}

/// A Production's user-mode Emperor.
#[derive(Debug)]
pub struct Emperor {
    uwsgi: PathBuf,
    vassal_dir: PathBuf,
    run_dir: PathBuf,
    log_dir: PathBuf,
    /// The Production, to find every copy of its Sess.
    production: Production,
    /// The child when this process started it, so it can be reaped (a zombie looks alive).
    child: Option<Child>,
}

impl Emperor {
    /// The Emperor of a user-mode Production, run with the uWSGI of its first Stage's
    /// virtualenv (`<virtualenv>/bin/uwsgi`).
    pub fn for_production(production: &Production) -> Result<Emperor, Error> {
        if production.mode == Mode::System {
            return Err(Error::SystemMode {
                production: production.name.to_string(),
            });
        }
        let uwsgi = production.stages.values().next().map_or_else(
            || PathBuf::from("uwsgi"),
            |s| s.virtualenv.as_path().join("bin/uwsgi"),
        );
        let layout = &production.layout;
        Ok(Emperor {
            uwsgi,
            vassal_dir: layout.vassal_dir.as_path().to_owned(),
            run_dir: layout.run_dir.as_path().to_owned(),
            log_dir: layout.log_dir.as_path().to_owned(),
            production: production.clone(),
            child: None,
        })
    }

    /// Uses this uWSGI binary instead of the Stage's.
    #[must_use]
    pub fn with_uwsgi(mut self, uwsgi: PathBuf) -> Emperor {
        self.uwsgi = uwsgi;
        self
    }

    /// The Emperor's pid file: `<run_dir>/emperor.pid` (Sess files all start `backstage.`).
    pub fn pid_file(&self) -> PathBuf {
        self.run_dir.join("emperor.pid")
    }

    /// The Emperor's log file: `<log_dir>/emperor.log`.
    pub fn log_file(&self) -> PathBuf {
        self.log_dir.join("emperor.log")
    }

    /// The pid of the running Emperor, if its pid file names a live process.
    pub fn pid(&mut self) -> Option<i32> {
        self.reap();
        let pid = read_pid(&self.pid_file()).filter(|&p| pid_alive(p))?;
        // After a reboot the pid may be someone else's: it must be an Emperor over our dir.
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let mut args = cmdline.split(|&b| b == 0);
        let ours = args.any(|a| a == b"--emperor")
            && args.next() == Some(self.vassal_dir.as_os_str().as_encoded_bytes());
        ours.then_some(pid)
    }

    /// Whether the Emperor is running.
    pub fn is_running(&mut self) -> bool {
        self.pid().is_some()
    }

    /// Starts the Emperor unless it is already running; returns once its pid file names it.
    pub fn start(&mut self) -> Result<Started, Error> {
        if let Some(pid) = self.pid() {
            return Ok(Started::AlreadyRunning(pid));
        }
        for dir in [&self.vassal_dir, &self.log_dir] {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        // Sockets, stats sockets and FIFOs live here: only this user may reach them.
        crate::stage_manager::ensure_run_dir(&self.production)?;
        let pid_file = self.pid_file();
        if pid_file.exists() {
            // The Emperor died without stopping (SIGKILL, a crash): its pid file is stale, and
            // its orphaned vassals exit on their own once they notice. Starting new ones before
            // that would let an old master's `vacuum` unlink a new master's socket.
            self.wait_for_orphans(Duration::from_secs(10));
            self.remove_leftovers(false)?;
            let _ = fs::remove_file(&pid_file);
        }
        let log = self.log_file();
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io_err("open", &log))?;
        let err = out.try_clone().map_err(io_err("open", &log))?;
        let mut command = Command::new(&self.uwsgi);
        // uWSGI reads `UWSGI_*` variables as options: the caller's environment must not
        // configure the Emperor or, through it, every vassal.
        for (key, _) in std::env::vars_os() {
            if key.as_encoded_bytes().starts_with(b"UWSGI_") {
                command.env_remove(key);
            }
        }
        let child = command
            .arg("--emperor")
            .arg(&self.vassal_dir)
            .args(["--emperor-freq", "1"])
            .arg("--emperor-pidfile")
            .arg(&pid_file)
            .arg("--logto")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group: a Ctrl-C meant for `backstage` does not reach it.
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: self.uwsgi.clone(),
                source,
            })?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if read_pid(&pid_file) == Some(pid) {
                return Ok(Started::Now(pid));
            }
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() > deadline {
                if !exited {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    self.reap();
                }
                return Err(Error::EmperorStart {
                    log_tail: log_tail(&log, 20),
                    log,
                });
            }
            sleep(POLL);
        }
    }

    /// Stops the Emperor and waits until it and every vassal of the Production are gone.
    /// Stopping an Emperor that is not running only waits for stray vassals.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), Error> {
        if let Some(pid) = self.pid() {
            // SIGINT: the Emperor stops its vassals and exits (SIGTERM would only reload).
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let alive = self.alive();
            if alive.is_empty() {
                let _ = fs::remove_file(self.pid_file());
                return self.remove_leftovers(true);
            }
            if Instant::now() > deadline {
                return Err(Error::EmperorStop {
                    seconds: timeout.as_secs(),
                    alive,
                });
            }
            sleep(POLL);
        }
    }

    /// What of this Production still runs: the Emperor and vassal masters, by pid.
    fn alive(&mut self) -> Vec<String> {
        let mut alive = Vec::new();
        if let Some(pid) = self.pid() {
            alive.push(format!("emperor pid {pid}"));
        }
        for (name, pid) in self.vassal_masters() {
            alive.push(format!("sess `{name}` pid {pid}"));
        }
        alive
    }

    /// The live vassal masters of this Production.
    fn vassal_masters(&self) -> Vec<(String, i32)> {
        SessRuntime::copies(&self.production)
            .iter()
            .filter_map(|r| r.live_master().map(|pid| (r.sess.to_string(), pid)))
            .collect()
    }

    /// Removes the runtime files of every copy whose master is gone; with `links`, also the
    /// socket links of Sess none of whose copies runs (`stop`: nothing of the Production is
    /// left; `start` keeps them, the copies about to start answer behind them).
    fn remove_leftovers(&self, links: bool) -> Result<(), Error> {
        let copies = SessRuntime::copies(&self.production);
        for r in &copies {
            if r.live_master().is_none() {
                r.remove_leftovers()?;
            }
        }
        if links {
            for r in &copies {
                if copies
                    .iter()
                    .all(|c| c.sess != r.sess || c.live_master().is_none())
                {
                    r.remove_link(&self.production)?;
                }
            }
        }
        Ok(())
    }

    /// Waits for vassals orphaned by a dead Emperor to exit; after half the time, asks them
    /// to stop (`SIGINT`).
    fn wait_for_orphans(&self, timeout: Duration) {
        let start = Instant::now();
        let mut asked = false;
        loop {
            let masters = self.vassal_masters();
            if masters.is_empty() || start.elapsed() > timeout {
                return;
            }
            if !asked && start.elapsed() > timeout / 2 {
                for (_, pid) in &masters {
                    let _ = kill(Pid::from_raw(*pid), Signal::SIGINT);
                }
                asked = true;
            }
            sleep(POLL);
        }
    }

    fn reap(&mut self) {
        if let Some(c) = &mut self.child
            && c.try_wait().ok().flatten().is_some()
        {
            self.child = None;
        }
    }
}

/// Reads a pid file; `None` when it is missing or does not hold a pid.
pub(crate) fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&p| p > 0)
}

/// Whether a process exists and is not a zombie.
pub(crate) fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The last `n` lines of a log file, request-log lines left out (at most its last MiB is read:
/// a copy serving under load writes a lot of request log between the lines that matter).
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(1024 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !is_request_log(l) && !is_write_noise(l))
        .collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

/// Whether a log line is uWSGI complaining that a client hung up before its answer was
/// written (a health checker that stops reading does that): noise next to a real failure.
fn is_write_noise(line: &str) -> bool {
    line.contains("SIGPIPE: writing to a closed pipe/socket/fd")
        || line.contains("uwsgi_response_write_body_do()")
        || line.contains("uwsgi_response_writev_headers_and_body_do()")
        || line.contains("IOError: write error")
        || line.contains("OSError: write error")
}

/// Whether a log line is uWSGI's request log (`[pid: 12|app: 0|req: 3/9] 127.0.0.1 () {…} GET /
/// => generated …`, with `memory-report` preceded by `{address space usage: …}`): it says
/// nothing about a failure, and a copy still serving would fill a log tail with it.
fn is_request_log(line: &str) -> bool {
    line.contains("[pid: ") && line.contains("|app: ") && line.contains("|req: ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_leaves_out_the_request_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("s.log");
        fs::write(
            &log,
            "Traceback (most recent call last):\n\
             ModuleNotFoundError: No module named 'club.nosuchsettings'\n\
             {address space usage: 85684224 bytes/81MB} {rss usage: 34717696 bytes/33MB} \
             [pid: 6898|app: 0|req: 837/2590] 127.0.0.1 () {28 vars in 334 bytes} \
             [Sat Nov 21 19:36:04 2026] GET /whoami => generated 95 bytes in 0 msecs\n\
             [pid: 6898|app: 0|req: 838/2591] 127.0.0.1 () {28 vars in 334 bytes} GET /\n\n",
        )
        .unwrap();
        assert_eq!(
            log_tail(&log, 5),
            [
                "Traceback (most recent call last):",
                "ModuleNotFoundError: No module named 'club.nosuchsettings'"
            ]
        );
        assert!(log_tail(&dir.path().join("missing.log"), 5).is_empty());
    }
}
