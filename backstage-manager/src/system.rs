//! System mode: the server's own uWSGI Emperor and nginx.
//!
//! Before anything is written, [`Host::inspect`] reads the server (the running Emperor and
//! the account it runs as, whether it is a plugin build, nginx's worker account, pid file and
//! error log from its own `nginx.conf`) and [`Host::preflight`] refuses, with the fix, what
//! could not work: not root, no Emperor watching the vassal dir, an Emperor in tyrant mode, a
//! Sess whose `uid` the Emperor cannot switch to. [`Host::ensure_dirs`] creates the run, log
//! and state dirs with their owners (again after a reboot empties `/run`), and
//! [`nginx_can_reach`] proves nginx's workers may open a Sess' socket before anything routes
//! to it.

use std::borrow::Cow;
use std::fs;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use backstage_core::values::Account;
use backstage_core::{Mode, Production};
use backstage_nginx::{NginxBinary, SystemNginx};
use backstage_uwsgi::system::{Build, SystemEmperor, build_of};
use nix::unistd::{Gid, Group, Uid, User, chown};

use super::ManagerError;

/// What the server runs, as Backstage found it.
#[derive(Debug, Clone)]
pub struct Host {
    /// The Emperor watching the Production's vassal dir, when one runs.
    pub emperor: Option<SystemEmperor>,
    /// The system's nginx, from its main configuration.
    pub nginx: SystemNginx,
}

/// The Production as it will be rendered on this host: every Act on its live release (see
/// [`on_live_releases`](super::on_live_releases)); in system mode the plugins the Emperor needs
/// and nginx's group filled in from the server (see [`Host::inspect`]).
pub fn resolve<'p>(
    production: &'p Production,
    nginx: &NginxBinary,
) -> Result<(Cow<'p, Production>, Option<Host>), ManagerError> {
    let p = on_state(production)?;
    if production.mode != Mode::System {
        return Ok((p, None));
    }
    let host = Host::inspect(production, nginx)?;
    let mut p = p.into_owned();
    if p.uwsgi_plugins.is_none() {
        let build = host.emperor.as_ref().map_or_else(
            || build_of(Path::new("/usr/bin/uwsgi")),
            SystemEmperor::build,
        );
        p.uwsgi_plugins = Some(match build {
            Build::Monolithic => Vec::new(),
            Build::Plugins => vec!["python3".parse().expect("a valid plugin name")],
        });
    }
    p.nginx_group = host.nginx.worker_group.parse::<Account>().ok();
    Ok((Cow::Owned(p), Some(host)))
}

/// The Production with what the state dir adds to the manifest: each Act's secrets and live
/// release (the host is not looked at).
pub(super) fn on_state(production: &Production) -> Result<Cow<'_, Production>, ManagerError> {
    let with_secrets = super::secrets::with_secrets(production)?;
    let p = with_secrets.as_ref().unwrap_or(production);
    let p = match (super::on_live_releases(p), with_secrets) {
        (Some(p), _) | (None, Some(p)) => Cow::Owned(p),
        (None, None) => Cow::Borrowed(production),
    };
    // An ACME Venue with no certificate yet is served over plain HTTP until it has one.
    Ok(match super::acme::mark_pending(&p) {
        Some(marked) => Cow::Owned(marked),
        None => p,
    })
}

impl Host {
    /// Reads the server.
    pub fn inspect(production: &Production, nginx: &NginxBinary) -> Result<Host, ManagerError> {
        Ok(Host {
            emperor: SystemEmperor::find(production.layout.vassal_dir.as_path()),
            nginx: SystemNginx::of(production, nginx)?,
        })
    }

    /// Refuses, before anything is written, what could not work on this server.
    pub fn preflight(&self, production: &Production) -> Result<(), ManagerError> {
        if !Uid::effective().is_root() {
            return Err(ManagerError::NeedsRoot {
                what: "system mode writes into /etc/uwsgi-emperor, /etc/nginx and /run",
            });
        }
        let vassal_dir = production.layout.vassal_dir.as_path();
        let Some(emperor) = &self.emperor else {
            return Err(ManagerError::NoEmperor {
                vassal_dir: vassal_dir.to_owned(),
            });
        };
        if emperor.tyrant {
            return Err(ManagerError::EmperorUnsupported {
                pid: emperor.pid,
                why: "it runs in tyrant mode (each vassal as its file's owner); Backstage sets each Sess' account with `uid`/`gid` instead: remove `emperor-tyrant`".to_owned(),
            });
        }
        if !emperor.can_switch_users()
            && production
                .venues
                .values()
                .any(backstage_core::Venue::is_acme)
        {
            return Err(ManagerError::EmperorUnsupported {
                pid: emperor.pid,
                why: format!(
                    "it runs as `{}`, and the job it would run to renew the ACME certificates (`backstage tls renew`, twice a day) writes keys under the state dir as root: let the Emperor run as root by removing its `uid`/`gid` lines{} and restarting it (`systemctl restart uwsgi-emperor`); each Sess keeps its own `uid`",
                    emperor.user_name(),
                    emperor
                        .config
                        .as_ref()
                        .map(|c| format!(" from `{}`", c.display()))
                        .unwrap_or_default()
                ),
            });
        }
        if !emperor.can_switch_users() {
            let user = emperor.user_name();
            for (name, sess) in &production.sess {
                let wanted = sess.tuning.uid.as_ref().map_or("root", Account::as_str);
                if !same_account(wanted, emperor.uid) {
                    return Err(ManagerError::UidIgnored {
                        sess: name.to_string(),
                        uid: wanted.to_owned(),
                        emperor_pid: emperor.pid,
                        emperor_user: user.clone(),
                        config: emperor.config.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Creates the state, run and log dirs, each Sess' run dir and log file, with owners and
    /// modes that let each account reach what it must and nobody else: state `root 0711` (the
    /// Sess' accounts pass through to their Act's releases and shared files, and cannot list
    /// it; the journal, lock and records in it are root's alone); run
    /// `root:<nginx> 0755` (only links live there); a Sess' run dir `<uid>:<nginx> 0750` (its
    /// sockets, stats socket, FIFO and pid file); logs `root:adm 0755` (Debian's log group),
    /// each Sess' log `<uid>:adm 0640`. Idempotent; puts modes and owners right.
    pub fn ensure_dirs(&self, production: &Production) -> Result<(), ManagerError> {
        let layout = &production.layout;
        let nginx_gid = gid_of(&self.nginx.worker_group);
        let adm = gid_of("adm");
        let root = Some(Uid::from_raw(0));
        ensure_dir(layout.state_dir.as_path(), root, None, 0o711)?;
        ensure_dir(layout.run_dir.as_path(), root, nginx_gid, 0o755)?;
        ensure_dir(layout.log_dir.as_path(), root, adm, 0o755)?;
        for (name, sess) in &production.sess {
            let uid = sess.tuning.uid.as_ref().and_then(|u| uid_of(u.as_str()));
            let dir = Production::sess_run_dir(layout, production.mode, name);
            ensure_dir(dir.as_path(), uid.or(root), nginx_gid, 0o750)?;
            let log = production.log_file(name);
            ensure_file(log.as_path(), uid.or(root), adm, 0o640)?;
        }
        Ok(())
    }
}

/// Whether account name (or number) `wanted` is `uid`.
fn same_account(wanted: &str, uid: u32) -> bool {
    uid_of(wanted).is_some_and(|u| u.as_raw() == uid)
}

fn uid_of(name: &str) -> Option<Uid> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(Uid::from_raw(n));
    }
    User::from_name(name).ok().flatten().map(|u| u.uid)
}

fn gid_of(name: &str) -> Option<Gid> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(Gid::from_raw(n));
    }
    Group::from_name(name).ok().flatten().map(|g| g.gid)
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ManagerError {
    let path = path.to_owned();
    move |source| ManagerError::Io {
        action,
        path,
        source,
    }
}

fn ensure_dir(
    dir: &Path,
    uid: Option<Uid>,
    gid: Option<Gid>,
    mode: u32,
) -> Result<(), ManagerError> {
    // Parents (`/run/backstage`) are searchable by all, like `/run` itself.
    if let Some(parent) = dir.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(io("create directory", parent))?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("create directory", dir)(e)),
    }
    // A link here would make the chown below land elsewhere.
    let meta = fs::symlink_metadata(dir).map_err(io("inspect", dir))?;
    if !meta.is_dir() {
        return Err(ManagerError::Io {
            action: "use directory",
            path: dir.to_owned(),
            source: std::io::Error::other("it is not a directory (a link?)"),
        });
    }
    chown(dir, uid, gid).map_err(|e| io("change the owner of", dir)(e.into()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(io("set the mode of", dir))
}

fn ensure_file(
    file: &Path,
    uid: Option<Uid>,
    gid: Option<Gid>,
    mode: u32,
) -> Result<(), ManagerError> {
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(file)
        .map_err(io("create", file))?;
    chown(file, uid, gid).map_err(|e| io("change the owner of", file)(e.into()))?;
    fs::set_permissions(file, fs::Permissions::from_mode(mode)).map_err(io("set the mode of", file))
}

/// Whether the account `user` (with its groups) may connect to the unix socket `socket`: search
/// permission on every directory on the way (through links, as the kernel resolves them) and
/// write permission on the socket itself. `Err` says which step refuses. Mode bits only (no
/// ACLs, which Backstage never sets).
pub fn nginx_can_reach(user: &str, socket: &Path) -> Result<(), String> {
    let Some(account) = User::from_name(user).ok().flatten() else {
        return Err(format!("nginx's worker account `{user}` does not exist"));
    };
    let cname = std::ffi::CString::new(user).map_err(|_| "bad account name".to_owned())?;
    let mut groups: Vec<u32> = nix::unistd::getgrouplist(&cname, account.gid).map_or_else(
        |_| vec![account.gid.as_raw()],
        |gs| gs.into_iter().map(Gid::as_raw).collect(),
    );
    groups.push(account.gid.as_raw());
    let uid = account.uid.as_raw();
    let allowed = |meta: &fs::Metadata, bit: u32| -> bool {
        if uid == 0 {
            return true;
        }
        let mode = meta.mode();
        if meta.uid() == uid {
            mode & (bit << 6) != 0
        } else if groups.contains(&meta.gid()) {
            mode & (bit << 3) != 0
        } else {
            mode & bit != 0
        }
    };
    walk(socket, 0, &mut |dir, meta| {
        if allowed(meta, 0o1) {
            Ok(())
        } else {
            Err(format!(
                "nginx's workers (`{user}`) cannot enter `{}` (owner {}, group {}, mode {:o})",
                dir.display(),
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777
            ))
        }
    })?;
    let real = fs::canonicalize(socket).map_err(|e| format!("`{}`: {e}", socket.display()))?;
    let meta = fs::metadata(&real).map_err(|e| format!("`{}`: {e}", real.display()))?;
    if allowed(&meta, 0o2) {
        Ok(())
    } else {
        Err(format!(
            "nginx's workers (`{user}`) may not connect to `{}` (owner {}, group {}, mode {:o})",
            real.display(),
            meta.uid(),
            meta.gid(),
            meta.mode() & 0o7777
        ))
    }
}

/// Calls `check` on every directory the kernel searches to resolve `path`, following links.
fn walk(
    path: &Path,
    depth: usize,
    check: &mut dyn FnMut(&Path, &fs::Metadata) -> Result<(), String>,
) -> Result<(), String> {
    if depth > 8 {
        return Err(format!("`{}`: too many levels of links", path.display()));
    }
    let mut so_far = PathBuf::from("/");
    let parts: Vec<_> = path.components().skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        let dir_meta = fs::metadata(&so_far).map_err(|e| format!("`{}`: {e}", so_far.display()))?;
        check(&so_far, &dir_meta)?;
        let next = so_far.join(part);
        match fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                let target =
                    fs::read_link(&next).map_err(|e| format!("`{}`: {e}", next.display()))?;
                let target = if target.is_absolute() {
                    target
                } else {
                    so_far.join(target)
                };
                let mut rest = target;
                for p in &parts[i + 1..] {
                    rest.push(p);
                }
                return walk(&rest, depth + 1, check);
            }
            Ok(_) => so_far = next,
            Err(e) => return Err(format!("`{}`: {e}", next.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachability_follows_links_and_mode_bits() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::set_permissions(base, fs::Permissions::from_mode(0o755)).unwrap();
        let inner = base.join("inner");
        fs::create_dir(&inner).unwrap();
        let sock = inner.join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let link = base.join("link.sock");
        std::os::unix::fs::symlink(&sock, &link).unwrap();
        // Every path component above the tempdir is searchable by `nobody` on a normal system.
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).unwrap();
        if nginx_can_reach("nobody", &link).is_err() {
            // The tempdir lives under a directory `nobody` cannot search: nothing to learn here.
            return;
        }
        fs::set_permissions(&sock, fs::Permissions::from_mode(0o660)).unwrap();
        let err = nginx_can_reach("nobody", &link).unwrap_err();
        assert!(err.contains("may not connect"), "{err}");
        fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).unwrap();
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o700)).unwrap();
        let err = nginx_can_reach("nobody", &link).unwrap_err();
        assert!(err.contains("cannot enter"), "{err}");
        assert!(nginx_can_reach("root", &link).is_ok());
    }
}
