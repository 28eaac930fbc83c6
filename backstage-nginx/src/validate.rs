//! Validation by nginx itself: `nginx -t` over a copy, before anything goes live.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use backstage_core::values::ConfPath;
use backstage_core::{DesiredFile, FileKind, Mode, Production, files};

use crate::error::{Error, io_err};
use crate::foreign::check_foreign;
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

/// Tests `candidates` (from [`crate::render`]) with `nginx -t` against a copy, touching nothing
/// live: the site files go into a temporary directory with a throwaway `nginx.conf` built from
/// the same template as the user-mode one (all its runtime paths inside that directory). In
/// system mode the other sites in `sites-enabled` are loaded beside them, so clashes with them
/// show, and [`check_foreign`] refuses server names they already serve.
///
/// On failure nginx's message is mapped back to the manifest entry (`gigs.jazz-home`,
/// `venues.jazz`) whose block holds the line nginx names.
pub fn validate(
    production: &Production,
    candidates: &[DesiredFile],
    nginx: &NginxBinary,
) -> Result<(), Error> {
    if production.mode == Mode::System {
        check_foreign(production)?;
    }
    let tmp = tempfile::Builder::new()
        .prefix("backstage-nginx-t.")
        .tempdir()
        .map_err(io_err(
            "create a temporary directory",
            &std::env::temp_dir(),
        ))?;
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

    // Scratch copy → (the live path, the candidate) for mapping nginx's complaints back.
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
    if let (Mode::System, Some(enabled)) = (production.mode, &production.layout.nginx_enabled_dir) {
        includes.extend(live_neighbours(production, enabled.as_path(), candidates)?);
        link_conf_dir(enabled.as_path(), tmp.path());
    }

    let include_refs: Vec<&Path> = includes.iter().map(PathBuf::as_path).collect();
    let (conf, content) = scratch_conf(production, &dir, &include_refs)?;
    std::fs::write(&conf, content).map_err(io_err("write", &conf))?;

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

/// The live enabled sites nginx would load beside the candidates: everything in `enabled`
/// except hidden files and the candidates' own links.
fn live_neighbours(
    production: &Production,
    enabled: &Path,
    candidates: &[DesiredFile],
) -> Result<Vec<PathBuf>, Error> {
    let entries = match std::fs::read_dir(enabled) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", enabled)(e)),
    };
    let ours: Vec<&std::ffi::OsStr> = candidates
        .iter()
        .filter_map(|c| c.path.file_name())
        .collect();
    let mut out: Vec<PathBuf> = Vec::new();
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') || ours.contains(&name.as_os_str()) {
            continue;
        }
        let path = e.path();
        // A site of this Production that the candidates drop would be unlinked by apply.
        if let Ok(bytes) = std::fs::read(&path)
            && files::is_ours(&bytes, &production.name)
        {
            continue;
        }
        if path
            .to_str()
            .is_some_and(|s| crate::render::quote(s).is_ok())
        {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Foreign sites include files relative to nginx's conf dir (`snippets/…`, `mime.types`): link
/// the live conf dir's entries into the scratch prefix so those resolve the same way there.
fn link_conf_dir(enabled: &Path, scratch: &Path) {
    let Some(conf_dir) = enabled.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(conf_dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let target = scratch.join(e.file_name());
        if !target.exists() {
            // Best effort: a missing link only matters if a foreign site includes through it.
            let _ = std::os::unix::fs::symlink(e.path(), target);
        }
    }
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
