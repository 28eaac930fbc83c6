//! Validation by nginx itself: `nginx -t` over a copy, before anything goes live.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use backstage_core::values::ConfPath;
use backstage_core::{DesiredFile, FileKind, Mode, Production, files};

use crate::error::{Error, io_err};
use crate::foreign::check_foreign;
use crate::namespace::{Bind, in_private_mounts};
use crate::render::scratch_conf;

/// The environment variable naming the nginx binary (default `/usr/sbin/nginx`).
pub const NGINX_ENV: &str = "BACKSTAGE_NGINX";

/// The nginx binary Backstage runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxBinary {
    path: PathBuf,
}

impl NginxBinary {
    /// The binary at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        NginxBinary { path: path.into() }
    }

    /// `$BACKSTAGE_NGINX` when set, else Debian's `/usr/sbin/nginx`, else `nginx` on `PATH`.
    pub fn from_env() -> Self {
        if let Some(p) = std::env::var_os(NGINX_ENV).filter(|p| !p.is_empty()) {
            return NginxBinary::new(p);
        }
        let debian = Path::new("/usr/sbin/nginx");
        if debian.exists() {
            NginxBinary::new(debian)
        } else {
            NginxBinary::new("nginx")
        }
    }

    /// The binary's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command running this binary.
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }
}

/// Tests `candidates` (from [`crate::render`]) with nginx itself, touching nothing live.
///
/// - User mode: the site files go into a temporary directory with a throwaway `nginx.conf`
///   built from the same template as the user-mode one (all its runtime paths inside it).
/// - System mode: exactly the configuration the system's nginx will load is tested — its own
///   `nginx.conf`, `modules-enabled/`, `conf.d/`, snippets and every enabled foreign site —
///   with the candidates in place of the Production's live sites. A scratch copy of the
///   enabled-sites directory is bind-mounted over the live one in a private mount namespace
///   that only the `nginx -T` child sees (root only). [`check_foreign`] first refuses server
///   names foreign sites already serve, and the dump must show nginx loading every candidate.
///
/// On failure nginx's message is mapped back to the manifest entry (`gigs.jazz-home`,
/// `venues.jazz`) whose block holds the line nginx names, or to the foreign file at fault.
/// Nothing is written outside the temporary directory.
pub fn validate(
    production: &Production,
    candidates: &[DesiredFile],
    nginx: &NginxBinary,
) -> Result<(), Error> {
    sweep_scratch_dirs();
    match production.mode {
        Mode::User => validate_user(production, candidates, nginx),
        Mode::System => {
            check_foreign(production)?;
            validate_system(production, candidates, nginx)
        }
    }
}

/// The prefix of every scratch directory: `backstage-nginx-t.<pid>.`, so a directory left by
/// a validation that was killed can be told from one in use.
const SCRATCH_PREFIX: &str = "backstage-nginx-t.";

fn scratch_dir() -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix(&format!("{SCRATCH_PREFIX}{}.", std::process::id()))
        .tempdir()
        .map_err(io_err(
            "create a temporary directory",
            &std::env::temp_dir(),
        ))
}

/// Removes scratch directories of validations whose process is gone (killed mid-way) and
/// that are older than a minute: a pid means nothing across pid namespaces sharing `/tmp`
/// (containers), so a young directory may be another namespace's validation in progress.
fn sweep_scratch_dirs() {
    const MIN_AGE: std::time::Duration = std::time::Duration::from_secs(60);
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
            .and_then(|rest| rest.split('.').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > MIN_AGE));
        if !alive && old && e.file_type().is_ok_and(|t| t.is_dir() && !t.is_symlink()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn validate_user(
    production: &Production,
    candidates: &[DesiredFile],
    nginx: &NginxBinary,
) -> Result<(), Error> {
    let tmp = scratch_dir()?;
    let dir: ConfPath = tmp
        .path()
        .to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Io {
            action: "use temporary directory",
            path: tmp.path().to_owned(),
            source: std::io::Error::other("its path cannot be written into nginx configuration"),
        })?;
    let sites_dir = tmp.path().join("sites");
    let temp_dir = tmp.path().join("temp");
    for d in [&sites_dir, &temp_dir] {
        std::fs::create_dir_all(d).map_err(io_err("create directory", d))?;
    }

    // Scratch copy → the candidate, for mapping nginx's complaints back.
    let mut copies: BTreeMap<PathBuf, &DesiredFile> = BTreeMap::new();
    let mut includes: Vec<PathBuf> = Vec::new();
    for c in candidates.iter().filter(|c| c.kind == FileKind::Site) {
        let Some(name) = c.path.file_name() else {
            continue;
        };
        let copy = sites_dir.join(name);
        std::fs::write(&copy, &c.content).map_err(io_err("write", &copy))?;
        copies.insert(copy.clone(), c);
        includes.push(copy);
    }

    let include_refs: Vec<&Path> = includes.iter().map(PathBuf::as_path).collect();
    let (conf, content) = scratch_conf(production, &dir, &include_refs)?;
    // A fresh file in a fresh directory: never a link to anything live.
    write_new(&conf, content.as_bytes())?;

    let output = nginx
        .command()
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(format!("{}/", tmp.path().display()))
        .arg("-c")
        .arg(&conf)
        .output()
        .map_err(|source| Error::Spawn {
            binary: nginx.path().to_owned(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(map_failure(&stderr, &copies))
}

/// Creates `path`, refusing to follow or replace anything already there.
fn write_new(path: &Path, content: &[u8]) -> Result<(), Error> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err("create", path))?;
    f.write_all(content).map_err(io_err("write", path))
}

fn validate_system(
    production: &Production,
    candidates: &[DesiredFile],
    nginx: &NginxBinary,
) -> Result<(), Error> {
    let Some(enabled) = production.layout.nginx_enabled_dir.as_ref() else {
        return Ok(());
    };
    let enabled = enabled.as_path();
    if !enabled.is_dir() {
        return Err(Error::Io {
            action: "find the enabled-sites directory",
            path: enabled.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "it does not exist, so nginx loads no site from it",
            ),
        });
    }
    let tmp = scratch_dir()?;
    let view = tmp.path().join("enabled");
    std::fs::create_dir(&view).map_err(io_err("create directory", &view))?;
    mirror_foreign(production, enabled, &view)?;

    // Live path (as nginx names it) → the candidate, for mapping nginx's complaints back.
    let mut copies: BTreeMap<PathBuf, &DesiredFile> = BTreeMap::new();
    for c in candidates.iter().filter(|c| c.kind == FileKind::Site) {
        let Some(name) = c.path.file_name() else {
            continue;
        };
        write_new(&view.join(name), c.content.as_bytes())?;
        copies.insert(enabled.join(name), c);
    }

    let mut command = nginx.command();
    command.arg("-T").arg("-q");
    if let Some(conf) = &production.layout.nginx_conf {
        command.arg("-c").arg(conf.as_path());
    }
    in_private_mounts(
        &mut command,
        &[Bind {
            from: view,
            over: enabled.to_owned(),
        }],
    )?;
    let output = command.output().map_err(|source| {
        if source.raw_os_error() == Some(nix::libc::EPERM) {
            Error::NeedsRoot {
                what: "nginx -t sees the candidate configuration in a private mount namespace",
            }
        } else {
            Error::Spawn {
                binary: nginx.path().to_owned(),
                source,
            }
        }
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(map_failure(&stderr, &copies));
    }
    // `nginx -T` dumps every file it loaded: each candidate must be among them.
    let dump = String::from_utf8_lossy(&output.stdout);
    let loaded: Vec<&str> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("# configuration file ")?.strip_suffix(':'))
        .collect();
    if let Some(missing) = copies
        .keys()
        .find(|live| !loaded.iter().any(|l| Path::new(l) == live.as_path()))
    {
        let conf = loaded
            .first()
            .map_or_else(|| PathBuf::from("nginx.conf"), PathBuf::from);
        return Err(Error::NotIncluded {
            conf,
            dir: missing
                .parent()
                .map_or_else(|| enabled.to_owned(), Path::to_owned),
        });
    }
    Ok(())
}

/// Copies the live enabled-sites directory into `view`, leaving out this Production's own
/// entries (the candidates replace them): links are copied as links (so they resolve to the
/// same files), plain files by content. Reads only.
fn mirror_foreign(production: &Production, enabled: &Path, view: &Path) -> Result<(), Error> {
    let entries = std::fs::read_dir(enabled).map_err(io_err("read directory", enabled))?;
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let target = view.join(e.file_name());
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ours = match std::fs::metadata(&path) {
            // Only regular files are read (a FIFO would block); anything else is foreign.
            Ok(m) if !m.is_file() => false,
            Ok(_) => std::fs::read(&path).is_ok_and(|b| files::is_ours(&b, &production.name)),
            // A dangling link into the Production's sites directory was one of its sites.
            Err(_) => std::fs::read_link(&path)
                .is_ok_and(|t| t.parent() == Some(production.layout.nginx_dir.as_path())),
        };
        if ours {
            continue;
        }
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&path).map_err(io_err("read link", &path))?;
            std::os::unix::fs::symlink(&link, &target).map_err(io_err("create link", &target))?;
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
            write_new(&target, &bytes)?;
        } else if let Ok(real) = std::fs::canonicalize(&path) {
            // A directory (nginx refuses it): the same refusal, through a link to it.
            std::os::unix::fs::symlink(real, &target).map_err(io_err("create link", &target))?;
        }
    }
    Ok(())
}

/// Turns `nginx -t`'s stderr into an error naming the manifest entry at fault.
fn map_failure(stderr: &str, copies: &BTreeMap<PathBuf, &DesiredFile>) -> Error {
    let line = stderr
        .lines()
        .find(|l| l.contains("[emerg]") || l.contains("[alert]") || l.contains("[crit]"))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("nginx -t failed without a message");
    let message = line.split_once("] ").map_or(line, |(_, m)| m).trim();
    // `[emerg] 1234#1234: ...`: the pid and thread say nothing about the configuration.
    let message = match message.split_once(": ") {
        Some((pid, rest)) if pid.bytes().all(|b| b.is_ascii_digit() || b == b'#') => rest,
        _ => message,
    };
    let (message, position) = split_position(message);
    let Some((file, line_no)) = position.or_else(|| quoted_position(&message, copies)) else {
        return Error::Rejected {
            origin: "production".to_owned(),
            file: None,
            line: None,
            message,
        };
    };
    if let Some(candidate) = copies.get(&file) {
        let origin = line_no
            .and_then(|n| origin_at(&candidate.content, n))
            .unwrap_or_else(|| candidate.origin.clone());
        return Error::Rejected {
            origin,
            file: Some(candidate.path.clone()),
            line: line_no,
            message,
        };
    }
    Error::Rejected {
        origin: format!("`{}` (not managed by Backstage)", file.display()),
        file: Some(file),
        line: line_no,
        message,
    }
}

/// Some failures (a certificate nginx cannot load) carry no position; the value nginx quotes
/// then names the line: the first candidate line holding it.
fn quoted_position(
    message: &str,
    copies: &BTreeMap<PathBuf, &DesiredFile>,
) -> Option<(PathBuf, Option<u32>)> {
    let quoted = message.split('"').nth(1).filter(|q| !q.is_empty())?;
    copies.iter().find_map(|(copy, c)| {
        let n = c.content.lines().position(|l| l.contains(quoted))?;
        Some((copy.clone(), u32::try_from(n + 1).ok()))
    })
}

/// Splits `message in /path/file.conf:12` into the message and the position.
fn split_position(message: &str) -> (String, Option<(PathBuf, Option<u32>)>) {
    let Some((text, pos)) = message.rsplit_once(" in /") else {
        return (message.to_owned(), None);
    };
    let pos = format!("/{pos}");
    match pos.rsplit_once(':') {
        Some((file, n)) if n.bytes().all(|b| b.is_ascii_digit()) => {
            (text.to_owned(), Some((PathBuf::from(file), n.parse().ok())))
        }
        _ => (text.to_owned(), Some((PathBuf::from(pos), None))),
    }
}

/// The manifest entry whose block holds line `line` (1-based): the nearest `# from X` comment
/// at or above it.
fn origin_at(content: &str, line: u32) -> Option<String> {
    let line = usize::try_from(line).ok()?;
    content
        .lines()
        .take(line)
        .filter_map(|l| l.trim_start().strip_prefix("# from "))
        .last()
        .map(|rest| rest.split(':').next().unwrap_or(rest).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_scratch_dirs_of_dead_processes_are_swept() {
        let tmp = std::env::temp_dir();
        let dead: u32 = (400_000..500_000_u32)
            .find(|p| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(*p).unwrap()), None)
                    .is_err()
            })
            .unwrap();
        let me = std::process::id();
        let make = |pid: u32, tag: &str, age_secs: u64| {
            let d = tmp.join(format!("{SCRATCH_PREFIX}{pid}.test-{tag}-{me}"));
            std::fs::create_dir_all(&d).unwrap();
            let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
            std::fs::File::open(&d).unwrap().set_modified(when).unwrap();
            d
        };
        let young_dead = make(dead, "young", 0);
        let old_dead = make(dead, "old", 600);
        let old_alive = make(me, "alive", 600);
        sweep_scratch_dirs();
        assert!(
            young_dead.exists(),
            "a young dir may be another pid namespace's"
        );
        assert!(!old_dead.exists());
        assert!(old_alive.exists());
        for d in [young_dead, old_alive] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn positions_are_split_off() {
        let (m, p) =
            split_position("unknown directive \"foo\" in /tmp/x/sites/backstage.j.jazz.conf:12");
        assert_eq!(m, "unknown directive \"foo\"");
        assert_eq!(
            p,
            Some((
                PathBuf::from("/tmp/x/sites/backstage.j.jazz.conf"),
                Some(12)
            ))
        );
        let (m, p) = split_position("no position here");
        assert_eq!((m.as_str(), p), ("no position here", None));
    }

    #[test]
    fn lines_map_to_the_nearest_origin_comment() {
        let content = "# marker\n\n# from gigs.a\nupstream x {\n}\n# from venues.v\nserver {\n    # from acts.club: static\n    location /s/ {\n}\n";
        assert_eq!(origin_at(content, 4).as_deref(), Some("gigs.a"));
        assert_eq!(origin_at(content, 7).as_deref(), Some("venues.v"));
        assert_eq!(origin_at(content, 9).as_deref(), Some("acts.club"));
        assert_eq!(origin_at(content, 1), None);
    }
}
