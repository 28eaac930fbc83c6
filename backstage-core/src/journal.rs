//! Applying file changes safely: one apply at a time ([`ApplyLock`]), and a write-ahead
//! [`Journal`] so that an apply interrupted at any point (SIGKILL, power loss) is rolled back by
//! the next run, leaving every managed file as it was before.
//!
//! Before a live file is touched, its previous state (content, symlink target, or absence) is
//! saved under `<state_dir>/journal/` and recorded in the journal's log, both fsynced. Recovery
//! restores every recorded path; a path whose record never reached the disk was never touched.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::Layout;
use crate::files::{self, FileError};
use crate::values::Slug;

/// What applying changes can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Another apply (or `up`, `down`) holds the lock.
    #[error("another `backstage apply` is running for production `{production}` ({}lock `{}` held for {}s); wait for it, or stop it", holder.map(|pid| format!("pid {pid}, ")).unwrap_or_default(), lock.display(), waited.as_secs())]
    Locked {
        /// The Production.
        production: String,
        /// The lock file.
        lock: PathBuf,
        /// How long this run waited.
        waited: Duration,
        /// The holder's pid, when its lock file names it.
        holder: Option<u32>,
    },
    /// A directory of the Production leads out of the manifest's directory through a symlink.
    #[error("`{key}` `{}` leads out of the manifest's directory through a symlink, to `{}`; nothing was written (`backstage check` explains)", dir.display(), leads_to.display())]
    Escapes {
        /// The `[production]` key of the directory.
        key: &'static str,
        /// The directory.
        dir: PathBuf,
        /// Where it really leads.
        leads_to: PathBuf,
    },
    /// A managed file could not be read, written or removed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The journal's own files could not be read or written.
    #[error("failed to {action} journal `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The journal path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_owned();
    move |source| JournalError::Io {
        action,
        path,
        source,
    }
}

/// Refuses a Layout a symlink leads out of the manifest's directory, as `check` does
/// ([`Layout::escapes`]): an apply calls it before taking the lock, in case a directory became
/// such a symlink after the manifest was checked.
pub fn ensure_inside(layout: &Layout) -> Result<(), JournalError> {
    match layout.escapes().into_iter().next() {
        None => Ok(()),
        Some(e) => Err(JournalError::Escapes {
            key: e.key,
            dir: e.dir,
            leads_to: e.leads_to,
        }),
    }
}

/// An exclusive lock on a Production's state dir, held while applying (and by `up` and
/// `down`). The lock file holds the holder's pid, for whoever waits. Released on drop.
#[derive(Debug)]
pub struct ApplyLock {
    file: File,
}

impl ApplyLock {
    /// Takes the lock, waiting up to `wait` for a concurrent apply to finish.
    pub fn acquire(
        state_dir: &Path,
        production: &Slug,
        wait: Duration,
    ) -> Result<ApplyLock, JournalError> {
        Self::acquire_reporting(state_dir, production, wait, &mut |_| {})
    }

    /// [`ApplyLock::acquire`], calling `on_wait` once, with the holder's pid when the lock file
    /// names it, when it has to wait.
    pub fn acquire_reporting(
        state_dir: &Path,
        production: &Slug,
        wait: Duration,
        on_wait: &mut dyn FnMut(Option<u32>),
    ) -> Result<ApplyLock, JournalError> {
        fs::create_dir_all(state_dir).map_err(io_err("create state dir for", state_dir))?;
        let path = state_dir.join("apply.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err("open lock", &path))?;
        let start = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    // Informative only: the lock is the flock, not the pid.
                    let _ = file.set_len(0).and_then(|()| {
                        file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
                    });
                    return Ok(ApplyLock { file });
                }
                Err(fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                    if !told {
                        // The holder writes its pid just after locking: give it a moment.
                        let holder = holder_pid(&file);
                        if holder.is_some() || start.elapsed() >= Duration::from_millis(200) {
                            on_wait(holder);
                            told = true;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(JournalError::Locked {
                        production: production.to_string(),
                        lock: path,
                        waited: start.elapsed(),
                        holder: holder_pid(&file),
                    });
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
            }
        }
    }
}

/// The pid the lock's holder wrote into it, if any.
fn holder_pid(file: &File) -> Option<u32> {
    let mut buf = [0u8; 16];
    let n = file.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        // A waiter must not name a holder that is gone.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The state of a path before the journal changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "was", rename_all = "snake_case")]
enum Before {
    /// It did not exist.
    Absent,
    /// A regular file, copied to `backup` (mode 0600), with its mode and group to restore.
    File {
        backup: PathBuf,
        #[serde(default)]
        mode: Option<u32>,
        #[serde(default)]
        gid: Option<u32>,
    },
    /// A symlink to `target`.
    Symlink { target: PathBuf },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    path: PathBuf,
    #[serde(flatten)]
    before: Before,
}

/// A write-ahead journal of file changes; see the module docs. Create with [`Journal::begin`]
/// while holding the [`ApplyLock`]; finish with [`Journal::commit`] or [`Journal::rollback`].
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    log: File,
    production: Slug,
    records: Vec<Record>,
}

/// What [`Journal::recover`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The paths restored to their state before the interrupted apply.
    pub restored: Vec<PathBuf>,
}

impl Journal {
    fn dir_of(state_dir: &Path) -> PathBuf {
        state_dir.join("journal")
    }

    /// Rolls back an apply that was interrupted, if its journal is still there. Call with the
    /// lock held, before planning.
    pub fn recover(state_dir: &Path, production: &Slug) -> Result<Option<Recovered>, JournalError> {
        let dir = Self::dir_of(state_dir);
        let log_path = dir.join("log.jsonl");
        let log = match File::open(&log_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A journal dir without a log never recorded a change.
                if dir.exists() {
                    fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
                }
                return Ok(None);
            }
            Err(e) => return Err(io_err("open", &log_path)(e)),
        };
        let mut records = Vec::new();
        for line in io::BufReader::new(log).lines() {
            let line = line.map_err(io_err("read", &log_path))?;
            // A torn last line was never fsynced, so its file was never touched.
            match serde_json::from_str::<Record>(&line) {
                Ok(r) => records.push(r),
                Err(_) => break,
            }
        }
        let journal = Journal {
            log: OpenOptions::new()
                .append(true)
                .open(&log_path)
                .map_err(io_err("open", &log_path))?,
            dir,
            production: production.clone(),
            records,
        };
        let restored = journal.records.iter().map(|r| r.path.clone()).collect();
        journal.rollback()?;
        Ok(Some(Recovered { restored }))
    }

    /// Starts a journal under `<state_dir>/journal`. Fails if an earlier one was not recovered.
    pub fn begin(state_dir: &Path, production: &Slug) -> Result<Journal, JournalError> {
        let dir = Self::dir_of(state_dir);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let log_path = dir.join("log.jsonl");
        let log = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(io_err("create", &log_path))?;
        files::sync_dir(&dir)?;
        Ok(Journal {
            dir,
            log,
            production: production.clone(),
            records: Vec::new(),
        })
    }

    /// Records `path`'s current state durably, once per path.
    fn remember(&mut self, path: &Path) -> Result<(), JournalError> {
        if self.records.iter().any(|r| r.path == path) {
            return Ok(());
        }
        let before = match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Before::Absent,
            Err(e) => return Err(io_err("inspect", path)(e)),
            Ok(m) if m.file_type().is_symlink() => Before::Symlink {
                target: fs::read_link(path).map_err(io_err("read link", path))?,
            },
            Ok(_) => {
                use std::os::unix::fs::MetadataExt as _;
                let backup = self.dir.join(format!("{}.old", self.records.len()));
                let content = fs::read(path).map_err(io_err("back up", path))?;
                // A vassal may hold environment values: its copy is private.
                let mut f = private_file(&backup)?;
                f.write_all(&content).map_err(io_err("write", &backup))?;
                f.sync_all().map_err(io_err("fsync", &backup))?;
                let meta = fs::metadata(path).map_err(io_err("inspect", path))?;
                Before::File {
                    backup,
                    mode: Some(meta.mode() & 0o7777),
                    gid: Some(meta.gid()),
                }
            }
        };
        let record = Record {
            path: path.to_owned(),
            before,
        };
        let mut line = serde_json::to_string(&record).expect("records serialize");
        line.push('\n');
        let log_path = self.dir.join("log.jsonl");
        self.log
            .write_all(line.as_bytes())
            .map_err(io_err("append to", &log_path))?;
        self.log.sync_all().map_err(io_err("fsync", &log_path))?;
        self.records.push(record);
        Ok(())
    }

    /// Writes a managed file (atomically, refusing foreign files), after journaling it.
    pub fn write(&mut self, path: &Path, content: &[u8]) -> Result<(), JournalError> {
        self.write_at(path, content, None)
    }

    /// [`Journal::write`] with the file's mtime set before it appears (a uWSGI vassal must
    /// arrive with an mtime a whole second past the previous one for the Emperor to reload it).
    pub fn write_at(
        &mut self,
        path: &Path,
        content: &[u8],
        mtime: Option<std::time::SystemTime>,
    ) -> Result<(), JournalError> {
        self.write_with(path, content, mtime, None)
    }

    /// [`Journal::write_at`] with the file's mode and group (see [`files::write_atomic_with`]).
    pub fn write_with(
        &mut self,
        path: &Path,
        content: &[u8],
        mtime: Option<std::time::SystemTime>,
        access: Option<files::Access>,
    ) -> Result<(), JournalError> {
        self.remember(path)?;
        files::write_atomic_with(path, content, &self.production, mtime, access)?;
        Ok(())
    }

    /// Removes a managed file (refusing foreign files), after journaling it.
    pub fn remove(&mut self, path: &Path) -> Result<(), JournalError> {
        self.remember(path)?;
        files::remove_ours(path, &self.production)?;
        Ok(())
    }

    /// Points a symlink at `target` (replacing a previous link, never a regular file).
    pub fn symlink(&mut self, path: &Path, target: &Path) -> Result<(), JournalError> {
        if let Ok(m) = fs::symlink_metadata(path)
            && !m.file_type().is_symlink()
        {
            return Err(FileError::NotOurs {
                path: path.to_owned(),
                production: self.production.to_string(),
            }
            .into());
        }
        self.remember(path)?;
        let tmp = files::temp_name(path);
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).map_err(io_err("create link", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename link", path))?;
        if let Some(dir) = path.parent() {
            files::sync_dir(dir)?;
        }
        Ok(())
    }

    /// Removes a symlink (never a regular file), after journaling it.
    pub fn remove_symlink(&mut self, path: &Path) -> Result<(), JournalError> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("inspect", path)(e)),
            Ok(m) if !m.file_type().is_symlink() => {
                return Err(FileError::NotOurs {
                    path: path.to_owned(),
                    production: self.production.to_string(),
                }
                .into());
            }
            Ok(_) => {}
        }
        self.remember(path)?;
        fs::remove_file(path).map_err(io_err("remove link", path))?;
        Ok(())
    }

    /// The paths changed so far.
    pub fn changed(&self) -> impl Iterator<Item = &Path> {
        self.records.iter().map(|r| r.path.as_path())
    }

    /// Keeps every change: the journal is removed.
    pub fn commit(self) -> Result<(), JournalError> {
        fs::remove_dir_all(&self.dir).map_err(io_err("remove", &self.dir))?;
        if let Some(parent) = self.dir.parent() {
            files::sync_dir(parent)?;
        }
        Ok(())
    }

    /// Restores every changed path to its state before the journal, newest first, then removes
    /// the journal.
    pub fn rollback(self) -> Result<(), JournalError> {
        for r in self.records.iter().rev() {
            restore(r)?;
        }
        self.commit()
    }
}

/// Creates `path` (new, or truncated) with mode 0600 from the start.
fn private_file(path: &Path) -> Result<File, JournalError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("create", path))
}

fn restore(r: &Record) -> Result<(), JournalError> {
    let path = &r.path;
    match &r.before {
        Before::Absent => match fs::symlink_metadata(path) {
            Ok(_) => fs::remove_file(path).map_err(io_err("remove", path))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("inspect", path)(e)),
        },
        Before::File { backup, mode, gid } => {
            let tmp = files::temp_name(path);
            let _ = fs::remove_file(&tmp);
            let content = fs::read(backup).map_err(io_err("restore", path))?;
            let mut f = private_file(&tmp)?;
            if let Some(gid) = gid {
                let _ = std::os::unix::fs::fchown(&f, None, Some(*gid));
            }
            if let Some(mode) = mode {
                f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(*mode))
                    .map_err(io_err("set the mode of", &tmp))?;
            }
            f.write_all(&content).map_err(io_err("restore", path))?;
            drop(f);
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io_err("fsync", &tmp))?;
            fs::rename(&tmp, path).map_err(io_err("restore", path))?;
        }
        Before::Symlink { target } => {
            let tmp = files::temp_name(path);
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(target, &tmp).map_err(io_err("restore link", path))?;
            fs::rename(&tmp, path).map_err(io_err("restore link", path))?;
        }
    }
    if let Some(dir) = path.parent() {
        files::sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::marker;

    fn slug() -> Slug {
        "jazz".parse().unwrap()
    }

    fn ours(body: &str) -> String {
        format!("{}\n{body}\n", marker(&slug()))
    }

    #[test]
    fn commit_keeps_rollback_restores() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let live = dir.path().join("live");
        fs::create_dir_all(&live).unwrap();
        let a = live.join("a.ini");
        let b = live.join("b.ini");
        let link = live.join("link");
        fs::write(&a, ours("old a")).unwrap();
        fs::write(&b, ours("old b")).unwrap();

        let _lock = ApplyLock::acquire(&state, &slug(), Duration::ZERO).unwrap();
        let mut j = Journal::begin(&state, &slug()).unwrap();
        j.write(&a, ours("new a").as_bytes()).unwrap();
        j.remove(&b).unwrap();
        j.write(&live.join("c.ini"), ours("new c").as_bytes())
            .unwrap();
        j.symlink(&link, &a).unwrap();
        j.rollback().unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), ours("old a"));
        assert_eq!(fs::read_to_string(&b).unwrap(), ours("old b"));
        assert!(!live.join("c.ini").exists());
        assert!(fs::symlink_metadata(&link).is_err());
        assert!(!state.join("journal").exists());

        let mut j = Journal::begin(&state, &slug()).unwrap();
        j.write(&a, ours("new a").as_bytes()).unwrap();
        j.remove(&b).unwrap();
        j.commit().unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), ours("new a"));
        assert!(!b.exists());
    }

    #[test]
    fn an_interrupted_apply_is_rolled_back_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = dir.path().join("a.ini");
        fs::write(&a, ours("old")).unwrap();
        let mut j = Journal::begin(&state, &slug()).unwrap();
        j.write(&a, ours("new").as_bytes()).unwrap();
        j.write(&dir.path().join("b.ini"), ours("new b").as_bytes())
            .unwrap();
        // The process dies here: the journal is neither committed nor rolled back.
        std::mem::forget(j);
        // A torn line at the end (power loss mid-append) is ignored.
        let mut log = OpenOptions::new()
            .append(true)
            .open(state.join("journal/log.jsonl"))
            .unwrap();
        log.write_all(b"{\"path\":\"/x\",\"wa").unwrap();
        drop(log);
        let r = Journal::recover(&state, &slug()).unwrap().unwrap();
        assert_eq!(r.restored.len(), 2);
        assert_eq!(fs::read_to_string(&a).unwrap(), ours("old"));
        assert!(!dir.path().join("b.ini").exists());
        assert_eq!(Journal::recover(&state, &slug()).unwrap(), None);
        // And a new journal can start.
        Journal::begin(&state, &slug()).unwrap().commit().unwrap();
    }

    #[test]
    fn foreign_files_stop_the_journal_before_touching_them() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let foreign = dir.path().join("default.conf");
        fs::write(&foreign, "server {}\n").unwrap();
        let mut j = Journal::begin(&state, &slug()).unwrap();
        assert!(matches!(
            j.write(&foreign, b"x"),
            Err(JournalError::File(FileError::NotOurs { .. }))
        ));
        assert!(matches!(
            j.remove_symlink(&foreign),
            Err(JournalError::File(FileError::NotOurs { .. }))
        ));
        j.rollback().unwrap();
        assert_eq!(fs::read_to_string(&foreign).unwrap(), "server {}\n");
    }

    #[test]
    fn a_second_lock_waits_then_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let held = ApplyLock::acquire(dir.path(), &slug(), Duration::ZERO).unwrap();
        let err = ApplyLock::acquire(dir.path(), &slug(), Duration::from_millis(120)).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "another `backstage apply` is running for production `jazz` (pid {}, lock",
                std::process::id()
            )),
            "{err}"
        );
        drop(held);
        ApplyLock::acquire(dir.path(), &slug(), Duration::ZERO).unwrap();
    }

    #[test]
    fn a_waiter_is_told_the_holders_pid_once_then_gets_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let held = ApplyLock::acquire(dir.path(), &slug(), Duration::ZERO).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("apply.lock")).unwrap(),
            format!("{}\n", std::process::id())
        );
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            drop(held);
        });
        let mut told = Vec::new();
        let start = Instant::now();
        let lock = ApplyLock::acquire_reporting(
            dir.path(),
            &slug(),
            Duration::from_secs(10),
            &mut |holder| told.push(holder),
        )
        .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(350));
        assert_eq!(told, [Some(std::process::id())]);
        release.join().unwrap();
        drop(lock);
        // Released: the lock file names no holder any more.
        assert_eq!(
            fs::read_to_string(dir.path().join("apply.lock")).unwrap(),
            ""
        );
        let mut told = Vec::new();
        let _again =
            ApplyLock::acquire_reporting(dir.path(), &slug(), Duration::ZERO, &mut |holder| {
                told.push(holder);
            })
            .unwrap();
        assert!(told.is_empty(), "a free lock is taken without waiting");
    }
}
