//! Shared helpers of the tests that run real nginx and uWSGI.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backstage_core::{DesiredFile, Manifest, Production};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const MISSING: &str = "run `scripts/test-deps` to install nginx-light and the test virtualenv";

/// The nginx binary the tests run; fails (never skips) when it is missing.
pub fn nginx() -> backstage_nginx::NginxBinary {
    let n = backstage_nginx::NginxBinary::from_env();
    let ok = Command::new(n.path())
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "nginx `{}` cannot run; {MISSING}", n.path().display());
    n
}

/// The test virtualenv with uWSGI and Django.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("BACKSTAGE_TEST_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv"),
        PathBuf::from,
    );
    assert!(
        venv.join("bin/uwsgi").is_file(),
        "no uWSGI in `{}`; {MISSING}",
        venv.display()
    );
    venv
}

/// The jazzclub example's Django project.
pub fn club_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/jazzclub/club")
        .canonicalize()
        .unwrap()
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `src` as `dir/backstage.toml` and loads the Production.
pub fn load(dir: &Path, src: &str) -> Production {
    let path = dir.join("backstage.toml");
    std::fs::write(&path, src).unwrap();
    Manifest::read(&path)
        .unwrap()
        .load()
        .unwrap_or_else(|e| panic!("{e}: {e:?}"))
}

/// Places rendered files where they go (what `apply` will do, minus the journal).
pub fn place(production: &Production, files: &[DesiredFile]) {
    for f in files {
        backstage_core::files::write_atomic(&f.path, f.content.as_bytes(), &production.name)
            .unwrap();
    }
}

/// A process stopped (with `signal`, then waited for) when dropped.
pub struct Running {
    pub child: Child,
    pub signal: Signal,
    pub what: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = kill(pid, self.signal);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (stdout/stderr into `log`) and keeps it until dropped.
pub fn spawn(mut cmd: Command, log: &Path, signal: Signal, what: &str) -> Running {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start {what}: {e}"));
    Running {
        child,
        signal,
        what: what.to_owned(),
    }
}

/// A real uWSGI serving the jazzclub Act as Sess `name` on the unix socket `socket`.
pub fn uwsgi(name: &str, socket: &Path, log: &Path) -> Running {
    let venv = venv();
    let mut cmd = Command::new(venv.join("bin/uwsgi"));
    cmd.args(["--master", "--need-app", "--processes", "2", "--strict"])
        .arg("--home")
        .arg(&venv)
        .arg("--socket")
        .arg(socket)
        .arg("--chdir")
        .arg(club_dir())
        .args(["--module", "club.wsgi:application"])
        .args(["--env", "DJANGO_SETTINGS_MODULE=club.settings"])
        .args(["--env", "DJANGO_ALLOWED_HOSTS=.localhost,127.0.0.1"])
        .arg("--env")
        .arg(format!("BACKSTAGE_SESS={name}"));
    // SIGINT stops a uWSGI 2.0 master (SIGTERM would reload it).
    let running = spawn(cmd, log, Signal::SIGINT, &format!("uWSGI {name}"));
    wait_for(
        &format!("uWSGI {name} socket {}", socket.display()),
        log,
        || socket.exists(),
    );
    running
}

/// Waits up to 30 s for `ready`, failing with the log's content.
pub fn wait_for(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{what} did not come up; log:\n{log}");
}

/// A real nginx (foreground master) on the user-mode configuration of `production`.
pub fn start_nginx(production: &Production, log: &Path) -> Running {
    let paths = backstage_nginx::UserNginx::of(production);
    for d in &paths.dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut cmd = nginx().command();
    cmd.arg("-p")
        .arg(&paths.prefix)
        .arg("-c")
        .arg(&paths.conf)
        .args(["-g", "daemon off;"]);
    let running = spawn(cmd, log, Signal::SIGQUIT, "nginx");
    let pid_file = paths.pid_file.clone();
    wait_for("nginx", log, || pid_file.exists());
    running
}

/// A plain HTTP/1.0 GET; returns the status and the whole response (headers and body).
pub fn get(port: u16, host: &str, path: &str) -> (u16, String) {
    post(port, host, path, None)
}

/// A POST announcing a body of `length` bytes and sending `body` (which may be shorter: nginx
/// refuses a body over `client_max_body_size` from its `Content-Length` alone), or a GET when
/// `body` is `None`.
pub fn post(port: u16, host: &str, path: &str, body: Option<(usize, &[u8])>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    match body {
        None => write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap(),
        Some((length, bytes)) => {
            write!(
                s,
                "POST {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\
                 Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
            )
            .unwrap();
            s.write_all(bytes).unwrap();
        }
    }
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (status, text)
}

/// The body of a response.
pub fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}
