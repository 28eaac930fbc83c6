//! The system's nginx (system mode): what its own main configuration says about it, and how to
//! reload it the way the server expects (`systemctl reload nginx` under systemd, else a SIGHUP
//! to the master named by the `pid` line).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use backstage_core::Production;

use crate::error::{Error, io_err};
use crate::foreign::{Token, tokenize};
use crate::reload::{Reloaded, reload_with};
use crate::validate::NginxBinary;

/// The system's nginx, as its binary and main configuration describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SystemNginx {
    /// The main configuration nginx loads.
    pub conf: PathBuf,
    /// The account its workers run as (`user` line; nginx's default `nobody`). They are the
    /// ones that connect to a Sess' socket.
    pub worker_user: String,
    /// Their group (`user` line's second word; nginx's default: the group named as the user).
    pub worker_group: String,
    /// The master's pid file (`pid` line, else the compiled-in path).
    pub pid_file: PathBuf,
    /// The main error log (`error_log` line, else the compiled-in path).
    pub error_log: Option<PathBuf>,
}

/// The compiled-in paths `nginx -V` reports (`--conf-path=`, `--pid-path=`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct BuildPaths {
    conf: Option<PathBuf>,
    pid: Option<PathBuf>,
    error_log: Option<PathBuf>,
    user: Option<String>,
    group: Option<String>,
}

fn build_paths(nginx: &NginxBinary) -> BuildPaths {
    let Ok(out) = nginx.command().arg("-V").output() else {
        return BuildPaths::default();
    };
    // nginx prints its version and configure arguments on stderr.
    parse_build_paths(&String::from_utf8_lossy(&out.stderr))
}

fn parse_build_paths(text: &str) -> BuildPaths {
    let mut p = BuildPaths::default();
    for arg in text.split_whitespace() {
        let Some((k, v)) = arg.split_once('=') else {
            continue;
        };
        match k {
            "--conf-path" => p.conf = Some(PathBuf::from(v)),
            "--pid-path" => p.pid = Some(PathBuf::from(v)),
            "--error-log-path" => p.error_log = Some(PathBuf::from(v)),
            "--user" => p.user = Some(v.to_owned()),
            "--group" => p.group = Some(v.to_owned()),
            _ => {}
        }
    }
    p
}

/// The top-level directives of an nginx file (outside every block), each as its words.
pub(crate) fn top_level_directives(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut words: Vec<String> = Vec::new();
    for t in tokenize(text) {
        match t {
            Token::Word(w) => words.push(w),
            Token::Punct(';') => {
                if depth == 0 && !words.is_empty() {
                    out.push(std::mem::take(&mut words));
                }
                words.clear();
            }
            Token::Punct('{') => {
                depth += 1;
                words.clear();
            }
            Token::Punct(_) => {
                depth = depth.saturating_sub(1);
                words.clear();
            }
        }
    }
    out
}

impl SystemNginx {
    /// Reads the main configuration of the system's nginx: `production`'s `nginx_conf` when
    /// set, else the path compiled into `nginx`.
    pub fn of(production: &Production, nginx: &NginxBinary) -> Result<Self, Error> {
        let build = build_paths(nginx);
        let conf = production
            .layout
            .nginx_conf
            .as_ref()
            .map(|c| c.as_path().to_owned())
            .or(build.conf.clone())
            .unwrap_or_else(|| PathBuf::from("/etc/nginx/nginx.conf"));
        let text = std::fs::read_to_string(&conf).map_err(io_err("read", &conf))?;
        Ok(Self::from_conf(conf, &text, &build))
    }

    fn from_conf(conf: PathBuf, text: &str, build: &BuildPaths) -> Self {
        let base = conf.parent().unwrap_or(Path::new("/")).to_owned();
        let rel = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let mut user = build.user.clone();
        let mut group = build.group.clone();
        let mut pid = build.pid.clone();
        let mut error_log = build.error_log.clone();
        for d in top_level_directives(text) {
            match (d[0].as_str(), d.get(1)) {
                ("user", Some(u)) => {
                    user = Some(u.clone());
                    group = d.get(2).cloned();
                }
                ("pid", Some(p)) => pid = Some(rel(p)),
                ("error_log", Some(p)) if p != "stderr" && !p.starts_with("syslog:") => {
                    error_log = Some(rel(p));
                }
                _ => {}
            }
        }
        let worker_user = user.unwrap_or_else(|| "nobody".to_owned());
        let worker_group = group.unwrap_or_else(|| worker_user.clone());
        SystemNginx {
            conf,
            worker_user,
            worker_group,
            pid_file: pid.unwrap_or_else(|| PathBuf::from("/run/nginx.pid")),
            error_log,
        }
    }

    /// The running master's pid, when its pid file names a live process.
    pub fn running_master(&self) -> Option<i32> {
        let pid = crate::reload::master_pid(&self.pid_file).ok()?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            .is_ok()
            .then_some(pid)
    }

    /// Reloads the system's nginx and waits until new workers serve (see [`crate::reload`]):
    /// through `systemctl reload nginx` when systemd runs nginx, else with SIGHUP to the master.
    pub fn reload(&self, deadline: Duration) -> Result<Reloaded, Error> {
        let error_log = self.error_log.as_deref();
        if systemd_runs_nginx() {
            reload_with(&self.pid_file, error_log, deadline, |_| {
                let out = Command::new("systemctl")
                    .args(["reload", "nginx.service"])
                    .output()
                    .map_err(|source| Error::Spawn {
                        binary: PathBuf::from("systemctl"),
                        source,
                    })?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(Error::Rejected {
                        origin: "the system's nginx".to_owned(),
                        file: None,
                        line: None,
                        message: format!(
                            "`systemctl reload nginx` failed: {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                    })
                }
            })
        } else {
            crate::reload::reload(&self.pid_file, error_log, deadline)
        }
    }
}

/// Whether systemd is the init system and runs `nginx.service`.
pub fn systemd_runs_nginx() -> bool {
    Path::new("/run/systemd/system").is_dir()
        && Command::new("systemctl")
            .args(["is-active", "--quiet", "nginx.service"])
            .status()
            .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debians_nginx_conf() {
        let text = "user www-data;\nworker_processes auto;\npid /run/nginx.pid;\nerror_log /var/log/nginx/error.log;\ninclude /etc/nginx/modules-enabled/*.conf;\nevents { worker_connections 768; }\nhttp { server { pid nope; user nope; } }\n";
        let n = SystemNginx::from_conf(
            PathBuf::from("/etc/nginx/nginx.conf"),
            text,
            &BuildPaths::default(),
        );
        assert_eq!(n.worker_user, "www-data");
        assert_eq!(n.worker_group, "www-data");
        assert_eq!(n.pid_file, PathBuf::from("/run/nginx.pid"));
        assert_eq!(n.error_log, Some(PathBuf::from("/var/log/nginx/error.log")));
    }

    #[test]
    fn falls_back_to_the_build_and_nginx_defaults() {
        let build = parse_build_paths(
            "nginx version: nginx/1.22.1\nconfigure arguments: --with-cc-opt='-g -O2' --conf-path=/etc/nginx/nginx.conf --pid-path=/run/nginx.pid --error-log-path=/var/log/nginx/error.log",
        );
        let n = SystemNginx::from_conf(PathBuf::from("/x/nginx.conf"), "# user nope;\n", &build);
        assert_eq!(n.worker_user, "nobody");
        assert_eq!(n.pid_file, PathBuf::from("/run/nginx.pid"));
        let n = SystemNginx::from_conf(
            PathBuf::from("/x/nginx.conf"),
            "user web staff; pid logs/n.pid;",
            &build,
        );
        assert_eq!(
            (n.worker_user.as_str(), n.worker_group.as_str()),
            ("web", "staff")
        );
        assert_eq!(n.pid_file, PathBuf::from("/x/logs/n.pid"));
    }
}
