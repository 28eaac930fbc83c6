//! The system's uWSGI Emperor (system mode): found among the running processes, with what
//! matters for the vassals Backstage writes for it — the account it runs as (whether a Sess'
//! `uid` can take effect), tyrant mode, and whether it is a plugin build (Debian's
//! `uwsgi-core` needs `plugins = python3` before any Python option) or a monolithic one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running uWSGI Emperor watching a vassal directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SystemEmperor {
    /// The Emperor master's pid.
    pub pid: i32,
    /// Its binary (`/usr/bin/uwsgi-core` for Debian's `uwsgi-emperor`).
    pub exe: PathBuf,
    /// Its effective user id: vassals start as this account.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
    /// The ini file it was started with, when any.
    pub config: Option<PathBuf>,
    /// The directory (or glob) it watches.
    pub watches: PathBuf,
    /// Tyrant mode: each vassal runs as the owner of its file.
    pub tyrant: bool,
}

/// What the Emperor's binary has built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// Python is built in (a pip-installed uWSGI): vassals need no plugin.
    Monolithic,
    /// Python is a plugin (Debian's `uwsgi-core` + `uwsgi-plugin-python3`): vassals load it first.
    Plugins,
}

impl SystemEmperor {
    /// The running Emperor whose watched directory is `vassal_dir`, if any.
    pub fn find(vassal_dir: &Path) -> Option<SystemEmperor> {
        let wanted = fs::canonicalize(vassal_dir).unwrap_or_else(|_| vassal_dir.to_owned());
        let entries = fs::read_dir("/proc").ok()?;
        let mut found: Vec<SystemEmperor> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(inspect)
            .filter(|e| {
                let dir = fs::canonicalize(&e.watches).unwrap_or_else(|_| e.watches.clone());
                dir == wanted || dir.parent() == Some(wanted.as_path())
            })
            .collect();
        // The master is the oldest of them (its workers share its command line).
        found.sort_by_key(|e| e.pid);
        found.into_iter().next()
    }

    /// The name of the account it runs as.
    pub fn user_name(&self) -> String {
        account_name(self.uid)
    }

    /// Whether it can start a vassal as another account (it runs as root, not in tyrant mode,
    /// which Backstage does not use).
    pub fn can_switch_users(&self) -> bool {
        self.uid == 0 && !self.tyrant
    }

    /// Asks the binary what it has built in (`uwsgi --plugins-list`).
    pub fn build(&self) -> Build {
        build_of(&self.exe)
    }
}

/// What `uwsgi` at `exe` has built in. A binary that cannot be asked is taken for a plugin
/// build: loading a plugin a monolithic build already has costs one log line, while a plugin
/// build without `plugins` rejects every Python option.
pub fn build_of(exe: &Path) -> Build {
    match Command::new(exe).arg("--plugins-list").output() {
        // uWSGI logs the list, on stderr (older builds print it on stdout).
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            parse_plugins_list(&text)
        }
        Err(_) => Build::Plugins,
    }
}

/// Reads `uwsgi --plugins-list`: a build whose request plugins include `python` (modifier 0)
/// is monolithic.
pub fn parse_plugins_list(text: &str) -> Build {
    let mut in_request = false;
    for line in text.lines() {
        let line = line.trim();
        if line.contains("request plugins") {
            in_request = true;
            continue;
        }
        if line.starts_with("---") || line.starts_with("***") {
            in_request = false;
            continue;
        }
        if in_request
            && line
                .split_once(':')
                .is_some_and(|(m, name)| m.trim() == "0" && name.trim() == "python")
        {
            return Build::Monolithic;
        }
    }
    Build::Plugins
}

fn account_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

/// A uWSGI process and the directory it is an Emperor of, when it is one.
fn inspect(pid: i32) -> Option<SystemEmperor> {
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    if !exe
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("uwsgi"))
    {
        return None;
    }
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_else(|_| PathBuf::from("/"));
    let (config, mut watches, mut tyrant) = from_args(&args);
    let config = config.map(|c| if c.is_absolute() { c } else { cwd.join(c) });
    let mut opts = Vec::new();
    if let Some(ini) = &config
        && let Ok(text) = fs::read_to_string(ini)
    {
        opts = ini_options(&text);
        if watches.is_none() {
            watches = opts
                .iter()
                .find(|(k, _)| k == "emperor")
                .map(|(_, v)| PathBuf::from(v));
        }
        tyrant |= opts
            .iter()
            .any(|(k, v)| k == "emperor-tyrant" && is_true(v));
    }
    let watches = watches?;
    let (mut uid, mut gid) = effective_ids(pid)?;
    // An Emperor just started still runs as root for a moment before it drops to its `uid`:
    // the account it is configured with is the one its vassals get.
    let option = |name: &str| {
        opts.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(u) = option("uid").and_then(uid_of) {
        uid = u;
    }
    if let Some(g) = option("gid").and_then(gid_of) {
        gid = g;
    }
    Some(SystemEmperor {
        pid,
        exe,
        uid,
        gid,
        config,
        watches: if watches.is_absolute() {
            watches
        } else {
            cwd.join(watches)
        },
        tyrant,
    })
}

fn uid_of(name: &str) -> Option<u32> {
    name.parse().ok().or_else(|| {
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    })
}

fn gid_of(name: &str) -> Option<u32> {
    name.parse().ok().or_else(|| {
        nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    })
}

fn is_true(v: &str) -> bool {
    matches!(v, "true" | "1" | "yes" | "on")
}

/// The ini file, Emperor directory and tyrant flag on a uWSGI command line.
fn from_args(args: &[String]) -> (Option<PathBuf>, Option<PathBuf>, bool) {
    let mut config = None;
    let mut watches = None;
    let mut tyrant = false;
    let mut it = args.iter().skip(1).peekable();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_owned())),
            _ => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match key {
            "--ini" => config = value().map(PathBuf::from),
            "--emperor" => watches = value().map(PathBuf::from),
            "--emperor-tyrant" => tyrant = true,
            k if !k.starts_with('-')
                && Path::new(k).extension().is_some_and(|e| e == "ini")
                && config.is_none() =>
            {
                config = Some(PathBuf::from(k));
            }
            _ => {}
        }
    }
    (config, watches, tyrant)
}

/// The options of an ini file's `[uwsgi]` section, in order (comments and other sections
/// left out).
fn ini_options(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_uwsgi = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_uwsgi = line == "[uwsgi]";
            continue;
        }
        if !in_uwsgi || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

/// The effective uid and gid in `/proc/<pid>/status`.
fn effective_ids(pid: i32) -> Option<(u32, u32)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u32> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(2)?.parse().ok()
    };
    Some((field("Uid:")?, field("Gid:")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn asks_real_binaries_what_they_have_built_in() {
        // Debian's uwsgi-core (scripts/test-deps installs it) is a plugin build.
        assert_eq!(build_of(Path::new("/usr/bin/uwsgi")), Build::Plugins);
        // pip's uWSGI in the test virtualenv has Python built in.
        let venv = std::env::var_os("BACKSTAGE_TEST_VENV").map_or_else(
            || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/test-venv")),
            PathBuf::from,
        );
        let pip = venv.join("bin/uwsgi");
        assert!(
            pip.exists(),
            "no uWSGI in the test virtualenv: run `scripts/test-deps`"
        );
        assert_eq!(build_of(&pip), Build::Monolithic);
    }

    #[test]
    fn tells_plugin_builds_from_monolithic_ones() {
        let debian = "\n*** uWSGI loaded generic plugins ***\n\n*** uWSGI loaded request plugins ***\n--- end of plugins list ---\n";
        assert_eq!(parse_plugins_list(debian), Build::Plugins);
        let pip = "\n*** uWSGI loaded generic plugins ***\ngevent\nhttp\n\n*** uWSGI loaded request plugins ***\n0: python\n17: spooler\n100: ping\n--- end of plugins list ---\n";
        assert_eq!(parse_plugins_list(pip), Build::Monolithic);
        // A generic plugin named python is not the request plugin.
        assert_eq!(
            parse_plugins_list("*** uWSGI loaded generic plugins ***\n0: python\n"),
            Build::Plugins
        );
    }

    #[test]
    fn reads_the_emperor_from_debians_command_line_and_ini() {
        let args: Vec<String> = ["/usr/bin/uwsgi", "--ini", "/etc/uwsgi-emperor/emperor.ini"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            from_args(&args),
            (
                Some(PathBuf::from("/etc/uwsgi-emperor/emperor.ini")),
                None,
                false
            )
        );
        let args: Vec<String> = ["uwsgi", "--emperor=/v", "--emperor-tyrant"]
            .map(String::from)
            .to_vec();
        assert_eq!(from_args(&args), (None, Some(PathBuf::from("/v")), true));
        let ini = "[uwsgi]\n# uid = root\nuid = www-data\nemperor = /etc/uwsgi-emperor/vassals\n[other]\nemperor = /x\n";
        assert_eq!(
            ini_options(ini),
            [
                ("uid".to_owned(), "www-data".to_owned()),
                (
                    "emperor".to_owned(),
                    "/etc/uwsgi-emperor/vassals".to_owned()
                )
            ]
        );
    }

    proptest! {
        #[test]
        fn plugin_lists_never_panic(text in ".{0,400}") {
            let _ = parse_plugins_list(&text);
            let _ = ini_options(&text);
        }
    }
}
