//! Showing nginx a candidate configuration at the live paths without touching them: a child
//! process in a private mount namespace, with scratch directories bind-mounted over the live
//! ones. The mounts exist only for that child; the machine's own view never changes.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use crate::error::Error;

/// A directory to show in place of another, inside the child's namespace only.
#[derive(Debug, Clone)]
pub(crate) struct Bind {
    /// The scratch directory.
    pub from: PathBuf,
    /// The live directory it hides.
    pub over: PathBuf,
}

fn c_path(p: &Path) -> Result<CString, Error> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Io {
        action: "use path",
        path: p.to_owned(),
        source: std::io::Error::other("it holds a NUL byte"),
    })
}

/// Makes `command` run in a private mount namespace where each [`Bind`] is in place. Needs
/// root (`CAP_SYS_ADMIN`); without it the command fails to start with `EPERM`, which the
/// caller reports as "system mode needs root".
pub(crate) fn in_private_mounts(command: &mut Command, binds: &[Bind]) -> Result<(), Error> {
    // Everything the child needs is allocated here, before the fork.
    let pairs: Vec<(CString, CString)> = binds
        .iter()
        .map(|b| Ok((c_path(&b.from)?, c_path(&b.over)?)))
        .collect::<Result<_, Error>>()?;
    let root = c"/";
    let hook = move || -> std::io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNS)?;
        // Mounts made below must not propagate back to the machine's namespace.
        mount(
            None::<&std::ffi::CStr>,
            root,
            None::<&std::ffi::CStr>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&std::ffi::CStr>,
        )?;
        for (from, over) in &pairs {
            mount(
                Some(from.as_c_str()),
                over.as_c_str(),
                None::<&std::ffi::CStr>,
                MsFlags::MS_BIND,
                None::<&std::ffi::CStr>,
            )?;
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec; it only makes system calls
    // (unshare, mount) on memory allocated before the fork, and allocates nothing itself.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(hook);
    }
    Ok(())
}
