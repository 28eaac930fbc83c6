//! The Act Manager's release store: immutable copies of an Act's code, one per deploy.
//!
//! Under `<state_dir>/releases/<act>/`, each release is a directory named by its id (the UTC
//! time it was built and its revision: `20261201T232000Z-3f9a2c01`) holding a snapshot of the
//! Act's root — `git archive` of a commit when the root is in a git work tree, else a copy of
//! the directory — and a `release.json` record. `shared` paths (a sqlite database, uploads) live
//! once in `<state_dir>/shared/<act>/` and are linked into every release, so they outlive each
//! one. `current` is a link to the live release, swapped atomically. Pruning keeps the newest
//! `keep` releases and never the live one or the one before it.
//!
//! A release is built in a hidden temporary directory and renamed into place complete, so an
//! interrupted build leaves no half release (its leftover is swept by the next build).

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What building, listing or switching releases can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// A file operation failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `git` failed (an unknown ref, a broken repository).
    #[error("`git {args}` failed in `{}`: {stderr}", dir.display())]
    Git {
        /// The arguments.
        args: String,
        /// Where.
        dir: PathBuf,
        /// What git said.
        stderr: String,
    },
    /// A ref was given for an Act whose root is not in a git work tree.
    #[error("`{}` is not in a git work tree, so `--ref {reference}` means nothing; deploy it without `--ref`", root.display())]
    NotGit {
        /// The Act's root.
        root: PathBuf,
        /// The ref asked for.
        reference: String,
    },
    /// No kept release has this id.
    #[error("no release `{id}` of Act `{act}`; `backstage releases {act}` lists the kept ones")]
    UnknownRelease {
        /// The Act.
        act: String,
        /// The id asked for.
        id: String,
    },
    /// A release's record could not be written.
    #[error(transparent)]
    File(#[from] backstage_core::files::FileError),
    /// A `shared` entry would leave the release.
    #[error("shared path `{path}` must be relative and stay inside the Act")]
    BadShared {
        /// The entry.
        path: String,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ReleaseError {
    let path = path.to_owned();
    move |source| ReleaseError::Io {
        action,
        path,
        source,
    }
}

/// How a release's release phase went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Every release command succeeded.
    Ok,
    /// A release command failed: the release never went live.
    Failed,
    /// The Act has no release commands.
    Skipped,
}

impl Phase {
    /// `"ok"`, `"failed"` or `"skipped"`, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ok => "ok",
            Phase::Failed => "failed",
            Phase::Skipped => "skipped",
        }
    }
}

/// One kept release (an element of `releases --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Its id: `<UTC time>-<short revision>`.
    pub id: String,
    /// The git commit, or the content hash of a plain directory.
    pub revision: String,
    /// When it was built (RFC 3339, UTC).
    pub created: String,
    /// How its release phase went.
    pub release_phase: Phase,
    /// The virtualenv built for its requirements, when they differ from what its Stage has
    /// installed (see `deploy`); none when it imports from its Stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<PathBuf>,
}

/// The releases of one Act.
#[derive(Debug, Clone)]
pub struct ReleaseStore {
    dir: PathBuf,
    shared: PathBuf,
    act: String,
}

const RECORD: &str = "release.json";
const CURRENT: &str = "current";
/// The release that was live before the current one (the fallback for static files).
const PREVIOUS: &str = "previous";

impl ReleaseStore {
    /// The store of `act` under `state_dir`.
    pub fn new(state_dir: &Path, act: &str) -> Self {
        ReleaseStore {
            dir: Self::dir_of_all(state_dir).join(act),
            shared: state_dir.join("shared").join(act),
            act: act.to_owned(),
        }
    }

    /// Where every Act's releases are: one directory per Act.
    pub fn dir_of_all(state_dir: &Path) -> PathBuf {
        state_dir.join("releases")
    }

    /// The directory of release `id`.
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Where `shared` entries live.
    pub fn shared_dir(&self) -> &Path {
        &self.shared
    }

    /// Builds a release of the Act at `root`: a snapshot of `reference` (default `HEAD`) when
    /// `root` is in a git work tree, else of the directory as it is; `shared` entries linked
    /// to the store's shared dir (seeded from the work tree the first time). Not live yet.
    pub fn build(
        &self,
        root: &Path,
        reference: Option<&str>,
        shared: &[String],
        now: SystemTime,
    ) -> Result<Release, ReleaseError> {
        for s in shared {
            check_shared(s)?;
        }
        fs::create_dir_all(&self.dir).map_err(io_err("create directory", &self.dir))?;
        self.sweep_partial();
        let tmp = self.dir.join(format!(".build.{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).map_err(io_err("create directory", &tmp))?;
        let snapshot = self.snapshot(root, reference, &tmp).and_then(|revision| {
            for s in shared {
                self.link_shared(root, &tmp, s)?;
            }
            Ok(revision)
        });
        let revision = match snapshot {
            Ok(r) => r,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let stamp = humantime::format_rfc3339_seconds(now).to_string();
        let compact: String = stamp.chars().filter(char::is_ascii_alphanumeric).collect();
        let id = format!("{compact}-{}", &revision[..revision.len().min(8)]);
        let release = Release {
            id: id.clone(),
            revision,
            created: stamp,
            release_phase: Phase::Skipped,
            environment: None,
        };
        write_record(&tmp, &release)?;
        let dest = self.path_of(&id);
        if dest.exists() {
            // The same revision built twice within a second: one release.
            let _ = fs::remove_dir_all(&tmp);
            return self.get(&id);
        }
        fs::rename(&tmp, &dest).map_err(io_err("rename", &dest))?;
        Ok(release)
    }

    /// Copies the Act's code into `dest`: commit `reference` (default `HEAD`) of the git work
    /// tree holding `root`, else the directory as it is. Returns the revision.
    fn snapshot(
        &self,
        root: &Path,
        reference: Option<&str>,
        dest: &Path,
    ) -> Result<String, ReleaseError> {
        let Some(top) = git_top(root) else {
            if let Some(reference) = reference {
                return Err(ReleaseError::NotGit {
                    root: root.to_owned(),
                    reference: reference.to_owned(),
                });
            }
            return copy_tree(root, dest, &self.excluded(root));
        };
        let reference = reference.unwrap_or("HEAD");
        let sha = git(
            &top,
            &["rev-parse", "--verify", &format!("{reference}^{{commit}}")],
        )?;
        let sub = root
            .strip_prefix(&top)
            .map(Path::to_owned)
            .unwrap_or_default();
        archive(&top, &sha, &sub, dest)?;
        Ok(sha)
    }

    /// Records the environment release `id` imports from (none: its Stage's).
    pub fn set_environment(
        &self,
        id: &str,
        environment: Option<&Path>,
    ) -> Result<(), ReleaseError> {
        let mut r = self.get(id)?;
        r.environment = environment.map(Path::to_owned);
        write_record(&self.path_of(id), &r)
    }

    /// Records how the release phase of `id` went.
    pub fn set_phase(&self, id: &str, phase: Phase) -> Result<(), ReleaseError> {
        let mut r = self.get(id)?;
        r.release_phase = phase;
        write_record(&self.path_of(id), &r)
    }

    /// The release `id`.
    pub fn get(&self, id: &str) -> Result<Release, ReleaseError> {
        let path = self.path_of(id).join(RECORD);
        let bytes = fs::read(&path).map_err(|_| ReleaseError::UnknownRelease {
            act: self.act.clone(),
            id: id.to_owned(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ReleaseError::Io {
            action: "read the record",
            path,
            source: io::Error::other(e),
        })
    }

    /// Every kept release, oldest first.
    pub fn list(&self) -> Result<Vec<Release>, ReleaseError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read directory", &self.dir)(e)),
        };
        let mut out: Vec<Release> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| !n.starts_with('.'))
            .filter_map(|n| self.get(&n).ok())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The `current` link (its mtime: when the live release went live).
    pub fn current_link(&self) -> PathBuf {
        self.dir.join(CURRENT)
    }

    /// The `previous` link: the release live before the live one.
    pub fn previous_link(&self) -> PathBuf {
        self.dir.join(PREVIOUS)
    }

    /// The live release's id, when one is live (and still kept).
    pub fn live(&self) -> Option<String> {
        self.link_target(CURRENT)
    }

    /// The release that was live before the live one, when it is still kept (after a deploy
    /// the one it replaced; after a rollback the one rolled back from).
    pub fn previously_live(&self) -> Option<String> {
        self.link_target(PREVIOUS)
    }

    fn link_target(&self, link: &str) -> Option<String> {
        let target = fs::read_link(self.dir.join(link)).ok()?;
        let id = target.file_name()?.to_str()?.to_owned();
        self.path_of(&id).join(RECORD).is_file().then_some(id)
    }

    /// The links that make `id` live: `current` to it and `previous` to the release live now
    /// (if any), each as (link, target) for the caller to write, journaled, with the switch.
    pub fn live_links(&self, id: &str) -> Vec<(PathBuf, PathBuf)> {
        let mut out = vec![(self.dir.join(CURRENT), PathBuf::from(id))];
        if let Some(live) = self.live().filter(|l| l != id) {
            out.push((self.dir.join(PREVIOUS), PathBuf::from(live)));
        }
        out
    }

    /// Makes `id` the live release (atomic swaps of the `current` and `previous` links).
    pub fn set_live(&self, id: &str) -> Result<(), ReleaseError> {
        self.get(id)?;
        for (link, target) in self.live_links(id).into_iter().rev() {
            let name = link.file_name().unwrap_or_default().to_string_lossy();
            let tmp = self.dir.join(format!(".{name}.{}", std::process::id()));
            let _ = fs::remove_file(&tmp);
            symlink(&target, &tmp).map_err(io_err("create link", &tmp))?;
            fs::rename(&tmp, &link).map_err(io_err("rename", &link))?;
        }
        Ok(())
    }

    /// The release before the live one (the default target of a rollback).
    pub fn previous(&self) -> Result<Option<Release>, ReleaseError> {
        let live = self.live();
        let list = self.list()?;
        let Some(at) = live.and_then(|l| list.iter().position(|r| r.id == l)) else {
            return Ok(None);
        };
        Ok(list[..at]
            .iter()
            .rev()
            .find(|r| r.release_phase != Phase::Failed)
            .cloned())
    }

    /// Removes release `id` (never the live one).
    pub fn remove(&self, id: &str) -> Result<(), ReleaseError> {
        if self.live().as_deref() == Some(id) {
            return Ok(());
        }
        let dir = self.path_of(id);
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
    }

    /// Removes all but the newest `keep` releases, never the live one, the one before it, or
    /// the one live before it (its static files are the fallback). Returns the removed ids.
    pub fn prune(&self, keep: usize) -> Result<Vec<String>, ReleaseError> {
        let list = self.list()?;
        let kept = [
            self.live(),
            self.previous()?.map(|r| r.id),
            self.previously_live(),
        ];
        let mut removed = Vec::new();
        let excess = list.len().saturating_sub(keep);
        for r in list.iter().take(excess) {
            if kept.iter().flatten().any(|k| k == &r.id) {
                continue;
            }
            let dir = self.path_of(&r.id);
            fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
            removed.push(r.id.clone());
        }
        Ok(removed)
    }

    /// What a plain-directory snapshot leaves out: version control, caches, and the store
    /// itself when it lies inside the root.
    fn excluded(&self, root: &Path) -> Vec<PathBuf> {
        let mut out = vec![root.join(".git"), root.join(".backstage")];
        if let Some(releases) = self.dir.parent().and_then(Path::parent)
            && releases.starts_with(root)
        {
            out.push(releases.to_owned());
        }
        out
    }

    fn link_shared(&self, root: &Path, release: &Path, entry: &str) -> Result<(), ReleaseError> {
        let target = self.shared.join(entry);
        if !target.exists() {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            }
            let seed = root.join(entry);
            if seed.is_dir() {
                copy_tree(&seed, &target, &[])?;
            } else if seed.is_file() {
                fs::copy(&seed, &target).map_err(io_err("copy", &seed))?;
            } else if Path::new(entry).extension().is_none() {
                // Nothing to seed it from: a name without an extension is taken for a directory
                // (`media`); a file (`db.sqlite3`) is created by the app through the link.
                fs::create_dir_all(&target).map_err(io_err("create directory", &target))?;
            }
        }
        let at = release.join(entry);
        if let Ok(meta) = fs::symlink_metadata(&at) {
            if meta.is_dir() {
                fs::remove_dir_all(&at).map_err(io_err("remove", &at))?;
            } else {
                fs::remove_file(&at).map_err(io_err("remove", &at))?;
            }
        }
        if let Some(parent) = at.parent() {
            fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        }
        symlink(&target, &at).map_err(io_err("create link", &at))
    }

    /// Removes builds a killed deploy left (`.build.<pid>` of a dead process).
    fn sweep_partial(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(".build."))
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

fn check_shared(entry: &str) -> Result<(), ReleaseError> {
    let p = Path::new(entry);
    let ok = !entry.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(ReleaseError::BadShared {
            path: entry.to_owned(),
        })
    }
}

fn write_record(dir: &Path, release: &Release) -> Result<(), ReleaseError> {
    let json = serde_json::to_vec_pretty(release).expect("a release serializes");
    backstage_core::files::place(&dir.join(RECORD), &json, None, None)?;
    Ok(())
}

/// The top of the git work tree holding `dir`, if any.
fn git_top(dir: &Path) -> Option<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn git(dir: &Path, args: &[&str]) -> Result<String, ReleaseError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(io_err("run git in", dir))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(ReleaseError::Git {
            args: args.join(" "),
            dir: dir.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Extracts `sub` of commit `sha` into `dest` (its contents, not the `sub` prefix).
fn archive(top: &Path, sha: &str, sub: &Path, dest: &Path) -> Result<(), ReleaseError> {
    let mut tree = sha.to_owned();
    if !sub.as_os_str().is_empty() {
        tree = format!("{sha}:{}", sub.display());
    }
    let mut git = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["archive", "--format=tar", &tree])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err("run git in", top))?;
    let stdout = git.stdout.take().expect("piped");
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .stdin(stdout)
        .output()
        .map_err(io_err("run tar into", dest))?;
    let git_out = git.wait_with_output().map_err(io_err("run git in", top))?;
    if !git_out.status.success() {
        return Err(ReleaseError::Git {
            args: format!("archive {tree}"),
            dir: top.to_owned(),
            stderr: String::from_utf8_lossy(&git_out.stderr).trim().to_owned(),
        });
    }
    if !tar.status.success() {
        return Err(ReleaseError::Io {
            action: "extract the archive into",
            path: dest.to_owned(),
            source: io::Error::other(String::from_utf8_lossy(&tar.stderr).trim().to_owned()),
        });
    }
    Ok(())
}

/// Copies `from` into `to` (created), leaving out `excluded` paths and `__pycache__`; links are
/// copied as links. Returns the content hash of what was copied (its revision).
fn copy_tree(from: &Path, to: &Path, excluded: &[PathBuf]) -> Result<String, ReleaseError> {
    let mut hash = Sha256::new();
    fs::create_dir_all(to).map_err(io_err("create directory", to))?;
    let walk = walkdir::WalkDir::new(from)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            !excluded.iter().any(|x| e.path() == x) && e.file_name() != "__pycache__"
        });
    for entry in walk {
        let entry = entry.map_err(|e| ReleaseError::Io {
            action: "walk",
            path: from.to_owned(),
            source: e.into(),
        })?;
        let rel = entry
            .path()
            .strip_prefix(from)
            .expect("inside the walk's root");
        if rel.as_os_str().is_empty() {
            continue;
        }
        let dest = to.join(rel);
        let ft = entry.file_type();
        hash.update(rel.as_os_str().as_encoded_bytes());
        hash.update([0]);
        if ft.is_dir() {
            fs::create_dir_all(&dest).map_err(io_err("create directory", &dest))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(entry.path()).map_err(io_err("read link", entry.path()))?;
            hash.update(target.as_os_str().as_encoded_bytes());
            symlink(&target, &dest).map_err(io_err("create link", &dest))?;
        } else if ft.is_file() {
            let bytes = fs::read(entry.path()).map_err(io_err("read", entry.path()))?;
            hash.update(&bytes);
            fs::copy(entry.path(), &dest).map_err(io_err("copy", entry.path()))?;
        }
        hash.update([0]);
    }
    let digest = hash.finalize();
    Ok(digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn act(dir: &Path) -> PathBuf {
        let root = dir.join("club");
        fs::create_dir_all(root.join("app/__pycache__")).unwrap();
        fs::write(root.join("manage.py"), "print('v1')\n").unwrap();
        fs::write(root.join("app/__pycache__/x.pyc"), "junk").unwrap();
        fs::write(root.join("db.sqlite3"), "the data").unwrap();
        root
    }

    #[test]
    fn a_plain_directory_release_is_a_snapshot_with_shared_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = act(dir.path());
        let store = ReleaseStore::new(&dir.path().join("state"), "club");
        let shared = ["db.sqlite3".to_owned(), "media".to_owned()];
        let r1 = store.build(&root, None, &shared, at(0)).unwrap();
        assert_eq!(r1.created, "2027-01-15T08:00:00Z");
        assert!(r1.id.starts_with("20270115T080000Z-"), "{}", r1.id);
        let rel = store.path_of(&r1.id);
        assert_eq!(
            fs::read_to_string(rel.join("manage.py")).unwrap(),
            "print('v1')\n"
        );
        assert!(!rel.join("app/__pycache__").exists());
        // Shared entries: seeded once from the work tree, linked into the release.
        assert!(
            fs::symlink_metadata(rel.join("db.sqlite3"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::read_to_string(rel.join("db.sqlite3")).unwrap(),
            "the data"
        );
        assert!(rel.join("media").is_dir());
        fs::write(rel.join("media/upload.txt"), "kept").unwrap();

        // Editing the work tree changes nothing in the release; the next build sees the edit.
        fs::write(root.join("manage.py"), "print('v2')\n").unwrap();
        fs::write(root.join("db.sqlite3"), "the work tree's copy").unwrap();
        assert_eq!(
            fs::read_to_string(rel.join("manage.py")).unwrap(),
            "print('v1')\n"
        );
        let r2 = store.build(&root, None, &shared, at(60)).unwrap();
        assert_ne!(r1.revision, r2.revision);
        let rel2 = store.path_of(&r2.id);
        assert_eq!(
            fs::read_to_string(rel2.join("manage.py")).unwrap(),
            "print('v2')\n"
        );
        // The shared data is the store's, not re-seeded: uploads and the database outlive releases.
        assert_eq!(
            fs::read_to_string(rel2.join("db.sqlite3")).unwrap(),
            "the data"
        );
        assert_eq!(
            fs::read_to_string(rel2.join("media/upload.txt")).unwrap(),
            "kept"
        );
        assert_eq!(
            store
                .list()
                .unwrap()
                .iter()
                .map(|r| r.id.clone())
                .collect::<Vec<_>>(),
            [r1.id.clone(), r2.id.clone()]
        );
    }

    #[test]
    fn live_previous_and_prune_keep_what_a_rollback_needs() {
        let dir = tempfile::tempdir().unwrap();
        let root = act(dir.path());
        let store = ReleaseStore::new(&dir.path().join("state"), "club");
        let mut ids = Vec::new();
        for i in 0..6 {
            fs::write(root.join("manage.py"), format!("v{i}")).unwrap();
            ids.push(store.build(&root, None, &[], at(i * 10)).unwrap().id);
        }
        assert_eq!(store.live(), None);
        assert_eq!(store.previous().unwrap(), None);
        store.set_live(&ids[1]).unwrap();
        assert_eq!(store.live().as_deref(), Some(ids[1].as_str()));
        assert_eq!(store.previous().unwrap().unwrap().id, ids[0]);
        // A failed release is never a rollback target.
        store.set_live(&ids[3]).unwrap();
        store.set_phase(&ids[2], Phase::Failed).unwrap();
        assert_eq!(store.previous().unwrap().unwrap().id, ids[1]);
        // Keep 2: the newest two stay, and so do the live one and the one before it.
        let removed = store.prune(2).unwrap();
        assert_eq!(removed, [ids[0].clone(), ids[2].clone()]);
        let kept: Vec<String> = store.list().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(
            kept,
            [
                ids[1].clone(),
                ids[3].clone(),
                ids[4].clone(),
                ids[5].clone()
            ]
        );
        assert!(matches!(
            store.set_live("nope"),
            Err(ReleaseError::UnknownRelease { .. })
        ));
    }

    #[test]
    fn a_git_release_is_the_commit_not_the_work_tree() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let root = repo.join("club");
        fs::create_dir_all(&root).unwrap();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        git(&["init", "-q"]);
        fs::write(root.join("manage.py"), "committed\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "one"]);
        let first = git(&["rev-parse", "HEAD"]);
        fs::write(root.join("manage.py"), "second\n").unwrap();
        git(&["commit", "-q", "-am", "two"]);
        // An uncommitted edit never reaches a release.
        fs::write(root.join("manage.py"), "uncommitted\n").unwrap();
        let store = ReleaseStore::new(&dir.path().join("state"), "club");
        let head = store.build(&root, None, &[], at(0)).unwrap();
        assert_eq!(head.revision, git(&["rev-parse", "HEAD"]));
        assert_eq!(
            fs::read_to_string(store.path_of(&head.id).join("manage.py")).unwrap(),
            "second\n"
        );
        let old = store.build(&root, Some(&first[..10]), &[], at(5)).unwrap();
        assert_eq!(old.revision, first);
        assert_eq!(
            fs::read_to_string(store.path_of(&old.id).join("manage.py")).unwrap(),
            "committed\n"
        );
        let err = store
            .build(&root, Some("no-such-ref"), &[], at(9))
            .unwrap_err();
        assert!(matches!(err, ReleaseError::Git { .. }), "{err}");
        // A plain directory has no refs.
        let plain = act(dir.path());
        let err = store.build(&plain, Some("main"), &[], at(9)).unwrap_err();
        assert!(matches!(err, ReleaseError::NotGit { .. }), "{err}");
        assert!(matches!(
            store.build(&plain, None, &["../etc".to_owned()], at(9)),
            Err(ReleaseError::BadShared { .. })
        ));
    }
}
