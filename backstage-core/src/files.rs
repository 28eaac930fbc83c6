//! Files Backstage owns: the marker line that claims them, and atomic placement.
//!
//! Every generated file starts with [`marker`]; Backstage never modifies or deletes a file
//! whose first line is not the marker of its own Production ([`is_ours`]). Files are written
//! with [`write_atomic`]: a temporary name in the same directory that neither the uWSGI Emperor
//! nor nginx reads, fsync, rename, fsync of the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::values::Slug;
use crate::{Mode, Production};

/// What a write or removal of a managed file can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// An I/O operation on a path failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What was being done (`write`, `rename`, `remove`, …).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file exists but another Production or a person owns it.
    #[error("`{}` exists and is not managed by Backstage production `{production}`; refusing to touch it", path.display())]
    NotOurs {
        /// The path.
        path: PathBuf,
        /// The Production that wanted it.
        production: String,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FileError {
    let path = path.to_owned();
    move |source| FileError::Io {
        action,
        path,
        source,
    }
}

/// The first line of every file generated for `production` (a comment in both ini and nginx).
pub fn marker(production: &Slug) -> String {
    format!(
        "# backstage: managed by Backstage for production `{production}`; edits are overwritten by `backstage apply`"
    )
}

/// Whether `content`'s first line is `production`'s marker.
pub fn is_ours(content: &[u8], production: &Slug) -> bool {
    let first = content.split(|&b| b == b'\n').next().unwrap_or_default();
    first == marker(production).as_bytes()
}

/// The names in `dir`: empty when there is no such directory, `None` when it could not be read
/// (the caller then looks at each path it wants, and reports what is wrong there). One listing
/// instead of a lookup per Act, in a Production of thousands.
pub fn names_in(dir: &Path) -> Option<std::collections::HashSet<std::ffi::OsString>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.ok().map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(std::collections::HashSet::new()),
        Err(_) => None,
    }
}

/// Reads `path` if it exists: `Ok(None)` when it does not.
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, FileError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// The temporary name `write_atomic` uses for `path`: a leading dot and a `.tmp` suffix, which
/// the Emperor (it only reads known config extensions) and nginx (Backstage includes `*.conf`)
/// both ignore.
pub fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// The file a temporary name of [`temp_name`] stands for, and the pid of the process that made
/// it: `.backstage.jazz.a.ini.4242.tmp` → (`backstage.jazz.a.ini`, 4242).
fn parse_temp_name(name: &str) -> Option<(&str, u32)> {
    let (file, pid) = name
        .strip_prefix('.')?
        .strip_suffix(".tmp")?
        .rsplit_once('.')?;
    if file.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((file, pid.parse().ok().filter(|&p| p > 0)?))
}

/// Removes the temporary files that interrupted atomic writes (a kill between write and rename)
/// left in the directories Backstage writes for `production`: its vassal, nginx, enabled-sites
/// and run directories (in user mode also the state dir, and one level below the nginx and run
/// directories, which are the Production's alone). Only [`temp_name`]s of this Production's files
/// are touched — `backstage.<production>.…`, and in the Production's own directories its fixed
/// names (`nginx.conf`, `applied.json`) — and only when the pid in the name is no live process.
/// Call it holding the apply lock. Returns what was removed.
pub fn sweep_temp_files(production: &Production) -> Result<Vec<PathBuf>, FileError> {
    // Liveness is read from /proc: without it, every writer would look dead.
    if !Path::new("/proc/self").exists() {
        return Ok(Vec::new());
    }
    let l = &production.layout;
    let prefix = format!("backstage.{}.", production.name);
    let user = production.mode == Mode::User;
    let mut dirs: Vec<(PathBuf, bool)> = vec![
        (l.vassal_dir.as_path().to_owned(), false),
        (l.nginx_dir.as_path().to_owned(), user),
        (l.run_dir.as_path().to_owned(), user),
    ];
    dirs.extend(
        l.nginx_enabled_dir
            .iter()
            .map(|d| (d.as_path().to_owned(), false)),
    );
    if user {
        dirs.push((l.state_dir.as_path().to_owned(), true));
        for parent in [l.nginx_dir.as_path(), l.run_dir.as_path()] {
            let Ok(entries) = fs::read_dir(parent) else {
                continue;
            };
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| (e.path(), false)),
            );
        }
    }
    dirs.sort();
    dirs.dedup();
    let me = std::process::id();
    let mut removed = Vec::new();
    for (dir, owned) in dirs {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("list", &dir)(e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some((file, pid)) = name.to_str().and_then(parse_temp_name) else {
                continue;
            };
            let ours = file.starts_with(&prefix)
                || (owned && matches!(file, "nginx.conf" | "applied.json"));
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !ours || is_dir || pid == me || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
    }
    Ok(removed)
}

/// Writes `content` to `path` atomically: temp file in the same directory, fsync, rename over
/// `path`, fsync the directory. Refuses to replace an existing file that is not `production`'s.
/// Creates the parent directory when missing.
pub fn write_atomic(path: &Path, content: &[u8], production: &Slug) -> Result<(), FileError> {
    write_atomic_at(path, content, production, None)
}

/// [`write_atomic`], with the file's mtime set to `mtime` before it is renamed into place, so a
/// watcher (the uWSGI Emperor reloads a vassal whose mtime moved) never sees an intermediate
/// mtime.
pub fn write_atomic_at(
    path: &Path,
    content: &[u8],
    production: &Slug,
    mtime: Option<SystemTime>,
) -> Result<(), FileError> {
    write_atomic_with(path, content, production, mtime, None)
}

/// Who may read a file: its mode, and the group that owns it (`None`: the writer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Permission bits (`0o600`).
    pub mode: u32,
    /// Group id to give the file.
    pub group: Option<u32>,
}

impl Access {
    /// Only the owner reads and writes it.
    pub const PRIVATE: Access = Access {
        mode: 0o600,
        group: None,
    };
}

/// [`write_atomic_at`] with the file's mode and group set on the temporary file, before its
/// content is written and it is renamed into place (`None`: the umask's default mode).
pub fn write_atomic_with(
    path: &Path,
    content: &[u8],
    production: &Slug,
    mtime: Option<SystemTime>,
    access: Option<Access>,
) -> Result<(), FileError> {
    if let Some(existing) = read_if_exists(path)?
        && !is_ours(&existing, production)
    {
        return Err(FileError::NotOurs {
            path: path.to_owned(),
            production: production.to_string(),
        });
    }
    place(path, content, mtime, access)
}

/// Puts `content` at `path` atomically, whoever's file was there: a temporary file in the same
/// directory (created anew, with `access` set before a byte is written), fsynced, renamed over
/// `path`, the directory fsynced. The primitive under [`write_atomic_with`], for files that
/// carry no marker (records, stores).
pub fn place(
    path: &Path,
    content: &[u8],
    mtime: Option<SystemTime>,
    access: Option<Access>,
) -> Result<(), FileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let tmp = temp_name(path);
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        if let Some(a) = access {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, a.mode);
        }
        let mut f = options.open(&tmp).map_err(io_err("create", &tmp))?;
        if let Some(a) = access {
            if let Some(gid) = a.group {
                std::os::unix::fs::fchown(&f, None, Some(gid))
                    .map_err(io_err("change the group of", &tmp))?;
            }
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(a.mode))
                .map_err(io_err("set the mode of", &tmp))?;
        }
        f.write_all(content).map_err(io_err("write", &tmp))?;
        if let Some(t) = mtime {
            f.set_modified(t)
                .map_err(io_err("set the mtime of", &tmp))?;
        }
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes `path` if it exists and is `production`'s. `Ok(false)` when there was nothing.
pub fn remove_ours(path: &Path, production: &Slug) -> Result<bool, FileError> {
    let Some(existing) = read_if_exists(path)? else {
        return Ok(false);
    };
    if !is_ours(&existing, production) {
        return Err(FileError::NotOurs {
            path: path.to_owned(),
            production: production.to_string(),
        });
    }
    fs::remove_file(path).map_err(io_err("remove", path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(true)
}

/// Where `dir` really leads, when it lies inside `base` as written but a symlink on its way leads
/// out of `base`: `Some(the resolved path)`. `None` when it stays inside, or when it is not under
/// `base` as written (an absolute path elsewhere is deliberate). Reads the filesystem, writes
/// nothing; the part of `dir` that does not exist yet is taken as written.
pub fn escapes_through_symlink(base: &Path, dir: &Path) -> Option<PathBuf> {
    if !dir.starts_with(base) {
        return None;
    }
    let real_base = fs::canonicalize(base).unwrap_or_else(|_| base.to_owned());
    let resolved = resolve_existing(dir, 0);
    (!resolved.starts_with(&real_base)).then_some(resolved)
}

/// `path` with its longest existing prefix canonicalized and the rest appended; a dangling
/// symlink on the way is followed as written (`depth` bounds a loop of them).
fn resolve_existing(path: &Path, depth: usize) -> PathBuf {
    let mut missing = Vec::new();
    let mut cur = path;
    loop {
        if let Ok(real) = fs::canonicalize(cur) {
            return missing.iter().rev().fold(real, |p, name| p.join(name));
        }
        if depth < 40
            && let Ok(target) = fs::read_link(cur)
        {
            let followed = cur.parent().unwrap_or(Path::new("/")).join(target);
            let real = resolve_existing(&followed, depth + 1);
            return missing.iter().rev().fold(real, |p, name| p.join(name));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                cur = parent;
            }
            _ => return path.to_owned(),
        }
    }
}

/// fsyncs a directory so a rename or removal in it survives a power loss.
pub fn sync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(s: &str) -> Slug {
        s.parse().unwrap()
    }

    #[test]
    fn write_replace_remove_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/backstage.jazz.a.ini");
        let jazz = slug("jazz");
        let body = format!("{}\n[uwsgi]\n", marker(&jazz));
        write_atomic(&p, body.as_bytes(), &jazz).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), body);
        let body2 = format!("{}\n[uwsgi]\nprocesses = 3\n", marker(&jazz));
        write_atomic(&p, body2.as_bytes(), &jazz).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), body2);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        assert!(remove_ours(&p, &jazz).unwrap());
        assert!(!p.exists());
        assert!(!remove_ours(&p, &jazz).unwrap());
    }

    #[test]
    fn sets_the_mtime_before_placing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("backstage.jazz.a.ini");
        let jazz = slug("jazz");
        let when = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000_000);
        let body = format!("{}\n", marker(&jazz));
        write_atomic_at(&p, body.as_bytes(), &jazz, Some(when)).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), when);
        assert_eq!(fs::read_to_string(&p).unwrap(), body);
    }

    #[test]
    fn never_touches_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("site.conf");
        fs::write(&p, "server { }\n").unwrap();
        let jazz = slug("jazz");
        assert!(matches!(
            write_atomic(&p, b"x", &jazz),
            Err(FileError::NotOurs { .. })
        ));
        assert!(matches!(
            remove_ours(&p, &jazz),
            Err(FileError::NotOurs { .. })
        ));
        // Another Production's file is foreign too.
        let blues = slug("blues");
        fs::write(&p, format!("{}\n", marker(&blues))).unwrap();
        assert!(matches!(
            remove_ours(&p, &jazz),
            Err(FileError::NotOurs { .. })
        ));
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            format!("{}\n", marker(&blues))
        );
    }

    #[test]
    fn temp_names_parse_back_to_their_file_and_pid() {
        let t = temp_name(Path::new("/v/backstage.jazz.a.ini"));
        let name = t.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            parse_temp_name(name),
            Some(("backstage.jazz.a.ini", std::process::id()))
        );
        for bad in [
            ".tmp",
            "..1.tmp",
            ".a.tmp",
            ".a..tmp",
            ".a.-1.tmp",
            ".a.+1.tmp",
            ".a.0.tmp",
            ".a.99999999999.tmp",
            "a.1.tmp",
            ".a.1.tmpx",
        ] {
            assert_eq!(parse_temp_name(bad), None, "{bad}");
        }
    }

    /// The pid of a process that has exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn the_sweep_removes_only_dead_writers_temp_files_of_this_production() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[production]\nname = \"jazz\"\n";
        let production =
            crate::Manifest::from_source("backstage.toml".into(), dir.path().into(), text.into())
                .load()
                .unwrap();
        let state = dir.path().join(".backstage");
        for d in ["vassals", "nginx/sites", "run", "log"] {
            fs::create_dir_all(state.join(d)).unwrap();
        }
        let dead = dead_pid();
        let live = std::os::unix::process::parent_id();
        let me = std::process::id();
        let removed_paths = [
            format!("vassals/.backstage.jazz.club-a.ini.{dead}.tmp"),
            format!("vassals/.backstage.jazz.club-a.3f9a2c01.ini.{dead}.tmp"),
            format!("nginx/.nginx.conf.{dead}.tmp"),
            format!("nginx/sites/.backstage.jazz.jazz.conf.{dead}.tmp"),
            format!(".applied.json.{dead}.tmp"),
        ];
        let kept_paths = [
            // A live writer's, even this process' own.
            format!("vassals/.backstage.jazz.club-a.ini.{live}.tmp"),
            format!("vassals/.backstage.jazz.club-b.ini.{me}.tmp"),
            // Another Production's, a person's, not a temp name, a fixed name out of its dir.
            format!("vassals/.backstage.blues.club-a.ini.{dead}.tmp"),
            format!("vassals/.notes.{dead}.tmp"),
            "vassals/backstage.jazz.club-a.ini".to_owned(),
            format!("vassals/backstage.jazz.club-a.ini.{dead}.tmp"),
            format!("vassals/.nginx.conf.{dead}.tmp"),
            // Logs are appended to, never written atomically: their dir is not swept.
            format!("log/.backstage.jazz.club-a.log.{dead}.tmp"),
        ];
        for p in removed_paths.iter().chain(&kept_paths) {
            fs::write(state.join(p), "x").unwrap();
        }
        // A socket link's temp name is a symlink (dangling, as the copy is gone); a directory
        // with a temp-like name is never removed.
        let link = state.join(format!("run/.backstage.jazz.club-a.sock.{dead}.tmp"));
        std::os::unix::fs::symlink(state.join("run/gone.sock"), &link).unwrap();
        let odd_dir = state.join(format!("vassals/.backstage.jazz.x.{dead}.tmp"));
        fs::create_dir(&odd_dir).unwrap();

        let mut removed = sweep_temp_files(&production).unwrap();
        removed.sort();
        let mut expected: Vec<PathBuf> = removed_paths.iter().map(|p| state.join(p)).collect();
        expected.push(link.clone());
        expected.sort();
        assert_eq!(removed, expected);
        for p in &expected {
            assert!(fs::symlink_metadata(p).is_err(), "{} is left", p.display());
        }
        for p in &kept_paths {
            assert!(state.join(p).exists(), "{p} was removed");
        }
        assert!(odd_dir.is_dir());
        // Nothing is left to sweep, and missing directories are no error.
        assert_eq!(
            sweep_temp_files(&production).unwrap(),
            Vec::<PathBuf>::new()
        );
        fs::remove_dir_all(&state).unwrap();
        assert_eq!(
            sweep_temp_files(&production).unwrap(),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn temp_names_are_hidden_and_not_ini() {
        let t = temp_name(Path::new("/v/backstage.jazz.a.ini"));
        let name = t.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".backstage.jazz.a.ini."));
        assert_eq!(t.extension().unwrap(), "tmp");
    }
}
