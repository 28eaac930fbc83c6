//! The runtime artefacts of one copy of a Sess, as the system shows them: its master (found by
//! its pid file, or by its process name and command line while it is still starting), and the
//! files it creates under the run dir, with which of its sockets something still listens on.

// The Stage Manager's parts share its imports.
#[allow(clippy::wildcard_imports)]
use super::*;

/// The runtime artefacts of one copy of a Sess: its master's pid file and process name, and
/// the files it creates under the run dir.
#[derive(Debug, Clone)]
pub(crate) struct SessRuntime {
    pub(crate) sess: Slug,
    pub(crate) instance: SessInstance,
    /// `backstage.<production>.<sess> `: the prefix of its processes' names.
    pub(super) procname: String,
    /// `backstage.<production>.<sess>.<id>.ini`: what the Emperor starts its master with.
    pub(super) vassal_name: String,
    pub(super) pid_file: PathBuf,
    /// Socket (when it is the copy's own unix socket), stats socket, master FIFO.
    pub(super) files: Vec<PathBuf>,
}

impl SessRuntime {
    pub(crate) fn of(production: &Production, copy: &SessInstance) -> SessRuntime {
        let mut files = vec![
            copy.stats.as_path().to_owned(),
            copy.fifo.as_path().to_owned(),
        ];
        // The socket of an id-less copy of a Sess now on the default socket is the Sess' link.
        if let SessSocket::Unix(path) = &copy.socket
            && !(copy.id.is_none() && production.has_default_socket(&copy.sess))
        {
            files.push(path.as_path().to_owned());
        }
        SessRuntime {
            sess: copy.sess.clone(),
            instance: copy.clone(),
            procname: format!("{} ", production.generated_name(&copy.sess, "").as_str()),
            vassal_name: copy
                .vassal
                .as_path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            pid_file: copy.pid_file.as_path().to_owned(),
            files,
        }
    }

    /// Every copy of every Sess that may run or have left files: the manifest's wanted
    /// copies, plus any copy whose vassal is placed or whose pid file is in the run dir.
    pub(crate) fn copies(production: &Production) -> Vec<SessRuntime> {
        let mut copies: Vec<SessInstance> = production
            .sess
            .keys()
            .filter_map(|n| instance(production, n).ok())
            .collect();
        let vassals = fs::read_dir(production.layout.vassal_dir.as_path())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| production.instance_of_vassal(&e.path()));
        // A runtime file names its copy as a vassal would: `<stem>.pid` for `<stem>.ini`. The
        // FIFO counts too: `vacuum` never removes it, so it outlives a copy's pid file; so does
        // a copy's socket (`vacuum` skips one inherited across a reload). In system mode each
        // Sess keeps them in a directory of its own.
        let run_dir = production.layout.run_dir.as_path();
        let mut dirs = vec![run_dir.to_owned()];
        if production.mode == backstage_core::Mode::System {
            dirs.extend(
                fs::read_dir(run_dir)
                    .into_iter()
                    .flatten()
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        let pids = dirs
            .into_iter()
            .filter_map(|d| fs::read_dir(d).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (stem, suffix) = [".pid", ".fifo", ".stats.sock", ".sock"]
                    .iter()
                    .find_map(|suffix| Some((name.strip_suffix(suffix)?, *suffix)))?;
                let vassal = production
                    .layout
                    .vassal_dir
                    .as_path()
                    .join(format!("{stem}.ini"));
                let copy = production.instance_of_vassal(&vassal)?;
                // `<sess>.sock` without an id is the Sess' own socket (its link): never a
                // leftover of a copy.
                (suffix != ".sock" || copy.id.is_some()).then_some(copy)
            });
        for copy in vassals.chain(pids) {
            if !copies.contains(&copy) {
                copies.push(copy);
            }
        }
        copies
            .iter()
            .map(|c| SessRuntime::of(production, c))
            .collect()
    }

    /// The pid of its live master, identified by what even a master that has just started
    /// has: the process its pid file names, when that is alive and its command line names this
    /// copy (its vassal file, as the Emperor starts it, or the Sess' process name, once
    /// `procname-prefix` applies; a reused pid is someone else's); else a live uWSGI process
    /// whose command line names this copy's vassal file (started, no pid file written yet).
    pub(crate) fn live_master(&self) -> Option<i32> {
        if let Some(pid) = read_pid(&self.pid_file).filter(|&p| pid_alive(p))
            && cmdline(pid).is_some_and(|args| self.names_this_copy(&args, true))
        {
            return Some(pid);
        }
        let procs = fs::read_dir("/proc").ok()?;
        procs
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .find(|&pid| {
                cmdline(pid).is_some_and(|args| self.names_this_copy(&args, false))
                    && pid_alive(pid)
            })
    }

    /// Whether a command line is this copy's uWSGI: one of its arguments is this copy's vassal
    /// file (`uwsgi --ini backstage.<p>.<sess>.<id>.ini`), or, with `procname` (for the pid
    /// its own pid file names), it carries the Sess' process name.
    fn names_this_copy(&self, args: &[Vec<u8>], procname: bool) -> bool {
        let vassal = self.vassal_name.as_bytes();
        let is_uwsgi = args.first().is_some_and(|a| {
            let base = a.rsplit(|&b| b == b'/').next().unwrap_or(a);
            base.starts_with(b"uwsgi")
        });
        let names_vassal = args.iter().skip(1).any(|a| {
            a.as_slice() == vassal
                || (a.ends_with(vassal) && a.get(a.len() - vassal.len() - 1) == Some(&b'/'))
        });
        if is_uwsgi && names_vassal {
            return true;
        }
        procname
            && args.iter().any(|a| {
                a.windows(self.procname.len())
                    .any(|w| w == self.procname.as_bytes())
            })
    }

    /// Removes what a master that is gone left behind. Nothing is removed while a master of
    /// this copy runs, nor a socket something still listens on (a live process uses it).
    pub(crate) fn remove_leftovers(&self) -> Result<(), Error> {
        if self.live_master().is_some() {
            return Ok(());
        }
        let listening = listening_unix_sockets();
        for path in self.files.iter().chain([&self.pid_file]) {
            if listening.contains(path) {
                continue;
            }
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err("remove", path)(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes the Sess' socket link: call when none of its copies runs.
    pub(crate) fn remove_link(&self, production: &Production) -> Result<(), Error> {
        remove_link(production, &self.sess)
    }
}

/// A live process' parent, from `/proc/PID/stat`.
pub(super) fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state and the parent follow the parenthesised command name, which may hold spaces.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let parent = fields.next()?.parse().ok()?;
    (state != "Z" && state != "X").then_some(parent)
}

/// A process' arguments, from `/proc/PID/cmdline`.
fn cmdline(pid: i32) -> Option<Vec<Vec<u8>>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// The paths of the unix sockets something listens on, from `/proc/net/unix` (empty when it
/// cannot be read).
fn listening_unix_sockets() -> std::collections::HashSet<PathBuf> {
    /// `__SO_ACCEPTCON` in the `Flags` column: a listening socket.
    const ACCEPTCON: u32 = 0x0001_0000;
    let Ok(table) = fs::read_to_string("/proc/net/unix") else {
        return std::collections::HashSet::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // Num RefCount Protocol Flags Type St Inode Path (the inode is space-padded).
            let mut rest = line;
            let mut fields = Vec::with_capacity(7);
            for _ in 0..7 {
                let (field, tail) = rest.trim_start().split_once(' ')?;
                fields.push(field);
                rest = tail;
            }
            let flags = u32::from_str_radix(fields[3], 16).ok()?;
            let path = rest.trim_start();
            (flags & ACCEPTCON != 0 && path.starts_with('/')).then(|| PathBuf::from(path))
        })
        .collect()
}
