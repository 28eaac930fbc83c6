//! `backstage status` as a monitoring check, against peers written here: it exits 1 when a
//! Sess or a Gig is down, prints its report either way, and a stats socket or a Gig that
//! answers one byte at a time cannot hold it past its deadlines.

use std::io::Write;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use backstage_core::Manifest;
use backstage_uwsgi::stage_manager::StageManager;

/// A Production with one Sess booked by one Gig on `port`.
fn manifest(dir: &Path, port: u16) -> backstage_core::Production {
    let text = format!(
        "[production]\nname = \"jazzclub\"\n\n[acts.club]\nroot = \"club\"\n\
         wsgi = \"club.wsgi:application\"\n\n[stages.local]\nvirtualenv = \"venv\"\n\n\
         [sess.club-a]\nact = \"club\"\nstage = \"local\"\n\n\
         [venues.jazz]\nserver_names = [\"jazz.localhost\"]\nlisten = [\"127.0.0.1:{port}\"]\n\n\
         [gigs.jazz-home]\nvenue = \"jazz\"\nsess = [\"club-a\"]\n"
    );
    let path = dir.join("backstage.toml");
    std::fs::write(&path, text).unwrap();
    Manifest::read(&path).unwrap().load().unwrap()
}

fn status(dir: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_backstage"))
        .args(["status", "--json"])
        .current_dir(dir)
        .output()
        .unwrap();
    (out, started.elapsed())
}

/// A loopback HTTP "server" that sends its answer one byte a second.
fn dribbling_gig() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                for &b in b"HTTP/1.1 200 OK\r\nX-A: "
                    .iter()
                    .chain(std::iter::repeat(&b'a'))
                {
                    if conn.write_all(&[b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
    });
    port
}

/// A process that looks like this Production's Emperor (`--emperor <vassal dir>`).
struct FakeEmperor(Child);

impl Drop for FakeEmperor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn status_exits_1_when_a_sess_or_gig_is_down_and_prints_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let port = dribbling_gig();
    let _p = manifest(dir.path(), port);
    // Nothing runs: the Sess is stopped, the Gig answers nothing whole.
    let (out, took) = status(dir.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sess"][0]["state"], "stopped", "{report}");
    assert_eq!(report["gigs"][0]["http_status"], serde_json::Value::Null);
    assert!(
        report["gigs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no answer within"),
        "{report}"
    );
    // The Gig's probe has 5 s in all, however often its peer sends a byte.
    assert!(took < Duration::from_secs(5 + 5), "{took:?}");

    // Human output: the same exit code, and what is down on stderr.
    let out = Command::new(env!("CARGO_BIN_EXE_backstage"))
        .arg("status")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Sess `club-a` is stopped") && err.contains("Gig `jazz-home` does not answer"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("club-a"));
}

#[test]
fn a_stats_socket_sending_a_byte_a_second_does_not_hold_status() {
    let dir = tempfile::tempdir().unwrap();
    let port = dribbling_gig();
    let p = manifest(dir.path(), port);
    let manager = StageManager::new(&p);
    manager.start("club-a").unwrap();
    let copy = manager.wanted("club-a").unwrap();
    let vassal_dir = p.layout.vassal_dir.as_path().to_owned();
    let run_dir = p.layout.run_dir.as_path().to_owned();
    std::fs::create_dir_all(&run_dir).unwrap();
    let emperor = FakeEmperor(
        Command::new("/bin/sh")
            .arg0("uwsgi")
            .args(["-c", "sleep 60; true", "--emperor"])
            .arg(&vassal_dir)
            .spawn()
            .unwrap(),
    );
    std::fs::write(run_dir.join("emperor.pid"), format!("{}\n", emperor.0.id())).unwrap();
    let stats = std::os::unix::net::UnixListener::bind(copy.stats.as_path()).unwrap();
    std::thread::spawn(move || {
        for conn in stats.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                for &b in b"{\"workers\":[".iter().chain(std::iter::repeat(&b' ')) {
                    if conn.write_all(&[b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
    });
    let (out, took) = status(dir.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sess"][0]["state"], "failed", "{report}");
    // Stats have 2 s in all, the Gig 5 s, side by side.
    assert!(took < Duration::from_secs(5 + 5), "{took:?}");
}
