//! Starts a real uWSGI for the tests, and stops it when dropped.
//!
//! Shared by `backstage-uwsgi/tests/` and the workspace's `tests/request.rs`.
#![allow(dead_code)] // Each test crate uses part of it.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use backstage_uwsgi::{
    Target,
    control::{Pid, shutdown},
};

/// The workspace root: the nearest ancestor of the test's package holding `Cargo.lock`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .expect("a workspace root above CARGO_MANIFEST_DIR")
        .to_owned()
}

/// The test virtualenv (`BACKSTAGE_TEST_VENV`, else `<workspace>/target/test-venv`).
pub fn venv() -> PathBuf {
    std::env::var_os("BACKSTAGE_TEST_VENV")
        .map_or_else(|| workspace_root().join("target/test-venv"), PathBuf::from)
}

/// The venv's uwsgi; fails the test when it is missing.
pub fn uwsgi_bin() -> PathBuf {
    let bin = venv().join("bin/uwsgi");
    assert!(
        bin.is_file(),
        "uWSGI not found at `{}`: run `scripts/test-deps` (or set BACKSTAGE_TEST_VENV)",
        bin.display()
    );
    bin
}

/// A free loopback port (the OS picks it; uWSGI binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Copies a directory tree, leaving out `__pycache__` and `staticfiles`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" || name == "staticfiles" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A blocking uwsgi ping (modifier1 100); true on a pong.
fn ping(socket: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut pong = [0u8; 4];
    conn.write_all(&[100, 0, 0, 0]).is_ok()
        && conn.read_exact(&mut pong).is_ok()
        && pong == [100, 0, 0, 1]
}

/// A running uWSGI serving `tests/support/app.py` on a unix socket and a loopback port.
pub struct Uwsgi {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub unix: Target,
    pub tcp: Target,
    pub stats: Target,
    pub fifo: PathBuf,
    pub log: PathBuf,
}

/// How to start uWSGI.
pub struct Options {
    /// Serve stats on TCP instead of a unix socket.
    pub stats_on_tcp: bool,
    /// A working directory name inside the tempdir (to test odd characters in stats).
    pub chdir_name: Option<&'static str>,
    /// Worker processes.
    pub processes: u32,
    /// No request logging and no memory report (per-request costs), as in benchmarks.
    pub lean: bool,
    /// Serve the one-file Django project `django_app.py` instead of the plain WSGI `app.py`.
    pub django: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            stats_on_tcp: false,
            chdir_name: None,
            processes: 2,
            lean: false,
            django: false,
        }
    }
}

impl Uwsgi {
    pub fn start() -> Self {
        Self::start_with(&Options::default())
    }

    pub fn start_with(options: &Options) -> Self {
        let bin = uwsgi_bin();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("app.sock");
        let port = free_port();
        let stats = if options.stats_on_tcp {
            format!("127.0.0.1:{}", free_port())
        } else {
            dir.path().join("stats.sock").display().to_string()
        };
        let fifo = dir.path().join("master.fifo");
        let log = dir.path().join("uwsgi.log");
        let chdir = options
            .chdir_name
            .map_or_else(|| dir.path().to_owned(), |name| dir.path().join(name));
        std::fs::create_dir_all(&chdir).unwrap();
        let app = workspace_root().join(if options.django {
            "backstage-uwsgi/tests/support/django_app.py"
        } else {
            "backstage-uwsgi/tests/support/app.py"
        });
        let per_request_extras: &[&str] = if options.lean {
            &["--disable-logging"]
        } else {
            &["--memory-report"]
        };
        let child = Command::new(bin)
            .args(per_request_extras)
            .arg("--strict")
            .arg("--home")
            .arg(venv())
            .arg("--master")
            .args(["--processes", &options.processes.to_string()])
            .arg("--socket")
            .arg(&socket)
            .args(["--socket", &format!("127.0.0.1:{port}")])
            .args(["--stats", &stats])
            .arg("--master-fifo")
            .arg(&fifo)
            .arg("--chdir")
            .arg(&chdir)
            .arg("--wsgi-file")
            .arg(&app)
            .arg("--need-app")
            .arg("--die-on-term")
            .arg("--logto")
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let server = Uwsgi {
            child: Some(child),
            unix: Target::Unix(socket.clone()),
            tcp: format!("127.0.0.1:{port}").parse().unwrap(),
            stats: stats.parse().unwrap(),
            fifo,
            log,
            dir,
        };
        server.wait_ready(&socket);
        server
    }

    fn wait_ready(&self, socket: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        // Ready once a worker answers a ping (the master alone accepts connections earlier)
        // and the master has started its stats server (it does so after the workers).
        while Instant::now() < deadline {
            if ping(socket) && self.log_text().contains("Stats server enabled") {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        panic!("uWSGI did not start; its log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().unwrap().id()).unwrap()
    }

    /// Waits for uWSGI to exit on its own (after a shutdown command); fails after 30 s.
    pub fn wait_exit(&mut self) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("uWSGI did not exit; its log:\n{}", self.log_text());
    }
}

impl Drop for Uwsgi {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT stops uWSGI 2.0 (SIGTERM would only reload it).
            let _ = shutdown(Pid::from_raw(i32::try_from(child.id()).unwrap()));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
