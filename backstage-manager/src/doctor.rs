//! `backstage doctor`: looks at the real server a system-mode Production runs on and says
//! what is wrong, each with the exact command or line that fixes it. Reads only.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use backstage_core::values::Account;
use backstage_core::{Mode, Production};
use backstage_nginx::{NginxBinary, SystemNginx};
use backstage_uwsgi::system::{Build, SystemEmperor};
use nix::unistd::Uid;
use serde::Serialize;

use super::ManagerError;

/// One thing `doctor` looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What was checked (`emperor`, `nginx`, `run_dir`, ...).
    pub check: &'static str,
    /// Whether it is as Backstage needs it.
    pub ok: bool,
    /// What was found, in one line.
    pub detail: String,
    /// The command or line that fixes it, when it is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What `doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// Whether every finding is fine.
    pub ok: bool,
    /// Every finding, in the order checked.
    pub findings: Vec<Finding>,
}

fn good(check: &'static str, detail: String) -> Finding {
    Finding {
        check,
        ok: true,
        detail,
        fix: None,
    }
}

fn bad(check: &'static str, detail: String, fix: String) -> Finding {
    Finding {
        check,
        ok: false,
        detail,
        fix: Some(fix),
    }
}

/// Looks at the server `production` (system mode) runs on.
pub fn doctor(production: &Production, nginx: &NginxBinary) -> Result<Diagnosis, ManagerError> {
    if production.mode != Mode::System {
        return Err(ManagerError::NotSystemMode {
            what: "backstage doctor",
        });
    }
    let mut f = Vec::new();
    if Uid::effective().is_root() {
        f.push(good("root", "running as root".to_owned()));
    } else {
        f.push(bad(
            "root",
            "not running as root: system mode writes into /etc and /run, and tests nginx in a private mount namespace".to_owned(),
            "sudo backstage doctor".to_owned(),
        ));
    }
    emperor_findings(production, &mut f);
    nginx_findings(production, nginx, &mut f);
    dir_findings(production, &mut f);
    for (name, stage) in &production.stages {
        let python = stage.virtualenv.as_path().join("bin/python");
        if python.exists() {
            f.push(good(
                "stage",
                format!("Stage `{name}`: `{}` exists", stage.virtualenv),
            ));
        } else {
            f.push(bad(
                "stage",
                format!("Stage `{name}`: no virtualenv at `{}`", stage.virtualenv),
                format!(
                    "backstage apply   # builds it; or: /usr/bin/python3 -m venv {}",
                    stage.virtualenv
                ),
            ));
        }
    }
    Ok(Diagnosis {
        ok: f.iter().all(|x| x.ok),
        findings: f,
    })
}

fn emperor_findings(production: &Production, f: &mut Vec<Finding>) {
    let dir = production.layout.vassal_dir.as_path();
    let Some(emperor) = SystemEmperor::find(dir) else {
        f.push(bad(
            "emperor",
            format!("no uWSGI Emperor watches `{}`", dir.display()),
            "apt-get install uwsgi-emperor uwsgi-plugin-python3 && systemctl enable --now uwsgi-emperor".to_owned(),
        ));
        return;
    };
    let user = emperor.user_name();
    f.push(good(
        "emperor",
        format!(
            "uWSGI Emperor pid {} (`{}`) watches `{}` as `{user}`",
            emperor.pid,
            emperor.exe.display(),
            emperor.watches.display()
        ),
    ));
    if emperor.tyrant {
        f.push(bad(
            "emperor_mode",
            "the Emperor runs in tyrant mode; Backstage sets each Sess' account with uid/gid"
                .to_owned(),
            format!(
                "remove `emperor-tyrant` from `{}`, then: systemctl restart uwsgi-emperor",
                emperor
                    .config
                    .as_deref()
                    .map_or_else(|| "its ini".into(), |c| c.display().to_string())
            ),
        ));
    }
    match emperor.build() {
        Build::Plugins => {
            let plugin = Path::new("/usr/lib/uwsgi/plugins/python3_plugin.so");
            if emperor.exe.starts_with("/usr/bin") && !plugin.exists() {
                f.push(bad(
                    "python_plugin",
                    "the Emperor is a plugin build and the Python 3 plugin is missing".to_owned(),
                    "apt-get install uwsgi-plugin-python3".to_owned(),
                ));
            } else {
                f.push(good(
                    "python_plugin",
                    "a plugin build: vassals load `need-plugin = python3`".to_owned(),
                ));
            }
        }
        Build::Monolithic => f.push(good(
            "python_plugin",
            "a monolithic build with Python built in: vassals load no plugin".to_owned(),
        )),
    }
    if !emperor.can_switch_users() {
        for (name, sess) in &production.sess {
            let wanted = sess.tuning.uid.as_ref().map_or("root", Account::as_str);
            let same = nix::unistd::User::from_name(wanted)
                .ok()
                .flatten()
                .is_some_and(|u| u.uid.as_raw() == emperor.uid);
            if !same {
                let config = emperor
                    .config
                    .as_deref()
                    .map_or_else(|| "the Emperor's ini".into(), |c| c.display().to_string());
                f.push(bad(
                    "sess_uid",
                    format!("Sess `{name}` runs as `{wanted}`, but the Emperor runs as `{user}` and cannot switch users"),
                    format!("sed -i -E 's/^(uid|gid)( *=)/# \\1\\2/' {config} && systemctl restart uwsgi-emperor   # or set uid = \"{user}\" on the Sess"),
                ));
            }
        }
    }
}

fn nginx_findings(production: &Production, nginx: &NginxBinary, f: &mut Vec<Finding>) {
    let system = match SystemNginx::of(production, nginx) {
        Ok(s) => s,
        Err(e) => {
            f.push(bad(
                "nginx",
                format!("cannot read the system's nginx configuration: {e}"),
                "apt-get install nginx-light".to_owned(),
            ));
            return;
        }
    };
    match system.running_master() {
        Some(pid) => f.push(good(
            "nginx",
            format!(
                "nginx master pid {pid}, workers as `{}`, configuration `{}`",
                system.worker_user,
                system.conf.display()
            ),
        )),
        None => f.push(bad(
            "nginx",
            format!(
                "nginx is not running (no live pid in `{}`)",
                system.pid_file.display()
            ),
            "systemctl enable --now nginx".to_owned(),
        )),
    }
    if nix::unistd::User::from_name(&system.worker_user)
        .ok()
        .flatten()
        .is_none()
    {
        f.push(bad(
            "nginx_user",
            format!(
                "nginx's worker account `{}` does not exist",
                system.worker_user
            ),
            format!("set `user www-data;` in `{}`", system.conf.display()),
        ));
    }
    let Some(enabled) = &production.layout.nginx_enabled_dir else {
        return;
    };
    let dump = nginx
        .command()
        .arg("-T")
        .arg("-q")
        .args(
            production
                .layout
                .nginx_conf
                .as_ref()
                .map(|c| ["-c", c.as_str()])
                .into_iter()
                .flatten(),
        )
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let included = dump.lines().any(|l| {
        let l = l.trim();
        l.starts_with("include") && l.contains(enabled.as_str())
    });
    if included {
        f.push(good("nginx_sites", format!("nginx includes `{enabled}`")));
    } else {
        f.push(bad(
            "nginx_sites",
            format!("nginx's configuration does not include `{enabled}`: Backstage's sites would not load"),
            format!("add `include {enabled}/*;` inside the http block of `{}`", system.conf.display()),
        ));
    }
}

fn dir_findings(production: &Production, f: &mut Vec<Finding>) {
    let layout = &production.layout;
    for (check, dir) in [
        ("vassal_dir", &layout.vassal_dir),
        ("run_dir", &layout.run_dir),
        ("log_dir", &layout.log_dir),
        ("state_dir", &layout.state_dir),
    ] {
        match std::fs::symlink_metadata(dir.as_path()) {
            Ok(m) if m.is_dir() => f.push(good(
                check,
                format!(
                    "`{dir}` (owner {}, group {}, mode {:o})",
                    m.uid(),
                    m.gid(),
                    m.mode() & 0o7777
                ),
            )),
            Ok(_) => f.push(bad(
                check,
                format!("`{dir}` is not a directory"),
                format!("remove `{dir}`, then run `backstage apply`"),
            )),
            Err(_) => f.push(bad(
                check,
                if dir.as_str().starts_with("/run/") {
                    format!("`{dir}` does not exist (a reboot empties /run)")
                } else {
                    format!("`{dir}` does not exist yet")
                },
                "backstage apply   # creates it with the right owner and mode".to_owned(),
            )),
        }
    }
    for name in production.sess.keys() {
        let dir = Production::sess_run_dir(layout, production.mode, name);
        if !dir.as_path().is_dir() {
            f.push(bad(
                "sess_run_dir",
                format!("Sess `{name}`: no run dir `{dir}`"),
                "backstage apply".to_owned(),
            ));
        }
    }
}
