//! Helpers shared by the end-to-end tests of the Production Manager: the real `backstage`
//! binary, the example Production copied to a short temp dir, plain HTTP through nginx.

#![allow(dead_code)]

pub mod pebble;
pub mod sandbox;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn test_venv() -> PathBuf {
    let venv = std::env::var_os("BACKSTAGE_TEST_VENV")
        .map_or_else(|| workspace().join("target/test-venv"), PathBuf::from);
    assert!(
        venv.join("bin/uwsgi").is_file() && venv.join("bin/python").is_file(),
        "no uWSGI in `{}`: run `scripts/test-deps` first",
        venv.display()
    );
    assert!(
        Path::new("/usr/sbin/nginx").is_file(),
        "no nginx: run `scripts/test-deps` first"
    );
    venv
}

pub fn backstage(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backstage"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run backstage")
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET through nginx: (status, body).
pub fn get(port: u16, host: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".backstage" || name == "__pycache__" || name == "staticfiles" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Stops the Production when the test ends, however it ends.
pub struct Down(pub PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = backstage(&self.0, &["down"]);
    }
}

pub fn pid_alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// The example Production copied into a short temp dir (unix socket paths stay under the
/// kernel's limit), its Stage on the test venv, nginx on a free port. Stopped when dropped.
pub struct Club {
    /// The Production's directory (holds `backstage.toml`).
    pub dir: PathBuf,
    /// nginx's port.
    pub port: u16,
    /// The manifest as written.
    pub text: String,
    down: Down,
    _tmp: tempfile::TempDir,
}

impl Club {
    /// Copies the example and rewrites its port and virtualenv.
    pub fn new() -> Club {
        let venv = test_venv();
        let tmp = tempfile::Builder::new()
            .prefix("bs")
            .tempdir_in("/tmp")
            .unwrap();
        let dir = tmp.path().to_owned();
        copy_tree(&workspace().join("examples/jazzclub"), &dir);
        let port = free_port();
        let text = std::fs::read_to_string(dir.join("backstage.toml"))
            .unwrap()
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
            .replace(
                "virtualenv = \".backstage/venv\"",
                &format!("virtualenv = \"{}\"", venv.display()),
            );
        std::fs::write(dir.join("backstage.toml"), &text).unwrap();
        Club {
            down: Down(dir.clone()),
            dir,
            port,
            text,
            _tmp: tmp,
        }
    }

    /// Replaces the manifest.
    pub fn write_manifest(&self, text: &str) {
        std::fs::write(self.dir.join("backstage.toml"), text).unwrap();
    }

    /// Runs `backstage ARGS` in the Production's dir.
    pub fn run(&self, args: &[&str]) -> Output {
        backstage(&self.down.0, args)
    }
}

/// The vassal files of a Sess' copies.
pub fn vassals(dir: &std::path::Path, sess: &str) -> Vec<PathBuf> {
    let prefix = format!("backstage.jazzclub.{sess}.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join(".backstage/vassals"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".ini")
        })
        .collect();
    found.sort();
    found
}

/// Runs `during` while a client asks the home Gig for `/whoami` in a loop: (requests served,
/// requests failed, what `during` returned).
pub fn under_load<T>(port: u16, during: impl FnOnce() -> T) -> (usize, usize, T) {
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 20_000 {
                n += 1;
                match get(port, "jazz.localhost", "/whoami") {
                    Ok((200, _)) => served.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let result = during();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    (
        served.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        result,
    )
}

/// Runs `openssl ARGS` in `dir` (a test CA, certificates); fails the test when it fails.
pub fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/test-deps installs it)");
    ok(&out);
}
