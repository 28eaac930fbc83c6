//! The sandbox of the system-mode tests: private mount, network and pid namespaces (`unshare`,
//! as root) where temporary copies are bind-mounted over `/etc/nginx`, `/etc/uwsgi-emperor`,
//! `/run`, `/var/log` and `/var/lib`, and Debian's nginx and Emperor are started the way their
//! units start them. The machine's own files and port 80 are never touched, and every process a
//! test started dies with its namespace.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::test_venv;

const INSIDE: &str = "BACKSTAGE_SYSTEM_SANDBOX";
/// Where this process' sandbox shows the Act and the virtualenv to every account.
pub static SRV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Runs `body` inside the sandbox: re-executes this test binary for test `name` alone in new
/// namespaces, and fails if that run fails.
pub fn sandboxed(name: &str, body: impl FnOnce(&mut Sandbox)) {
    if std::env::var_os(INSIDE).is_some() {
        let mut sandbox = Sandbox::enter();
        body(&mut sandbox);
        return;
    }
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the system-mode tests need root (private mount namespaces)"
    );
    for (what, path) in [
        ("uwsgi-emperor", "/etc/uwsgi-emperor/emperor.ini"),
        (
            "uwsgi-plugin-python3",
            "/usr/lib/uwsgi/plugins/python3_plugin.so",
        ),
        ("nginx", "/usr/sbin/nginx"),
    ] {
        assert!(
            Path::new(path).exists(),
            "no {what} (`{path}`): run `scripts/test-deps`"
        );
    }
    let status = Command::new("unshare")
        .args(["--mount", "--net", "--pid", "--fork", "--mount-proc", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .env("BACKSTAGE_TEST_VENV", test_venv())
        .status()
        .expect("run unshare");
    assert!(status.success(), "the sandboxed run of `{name}` failed");
}

/// The private copies of the system's directories, and the services started on them.
pub struct Sandbox {
    pub root: PathBuf,
    emperor: Option<Child>,
    /// Where the Production's manifest lives.
    pub dir: PathBuf,
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Sandbox {
    fn enter() -> Sandbox {
        let root = tempfile::Builder::new()
            .prefix("backstage-system.")
            .tempdir()
            .unwrap()
            .keep();
        for (from, name) in [
            ("/etc/nginx", "nginx"),
            ("/etc/uwsgi-emperor", "uwsgi-emperor"),
        ] {
            run(Command::new("cp").arg("-a").arg(from).arg(root.join(name)));
        }
        for d in [
            "run",
            "log/nginx",
            "log/uwsgi",
            "lib/nginx",
            "lib/backstage",
            "srv",
            "tmp",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        run(Command::new("chown")
            .arg("www-data:adm")
            .arg(root.join("log/nginx")));
        for (name, over) in [
            ("nginx", "/etc/nginx"),
            ("uwsgi-emperor", "/etc/uwsgi-emperor"),
            ("run", "/run"),
            ("log", "/var/log"),
            ("lib", "/var/lib"),
        ] {
            run(Command::new("mount")
                .arg("--bind")
                .arg(root.join(name))
                .arg(over));
        }
        run(Command::new("ip").args(["link", "set", "lo", "up"]));
        // The Production's own directory, readable by the accounts its Sess run as.
        let dir = root.join("srv/jazz");
        std::fs::create_dir_all(&dir).unwrap();
        for d in [&root, &root.join("srv"), &dir] {
            std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        // The Act and the Stage's virtualenv, shown at a path every account can reach: the
        // checkout itself may sit below a directory only root may enter (`/root`).
        for (from, name) in [
            (super::workspace().join("examples/jazzclub/club"), "club"),
            (test_venv(), "venv"),
        ] {
            let at = root.join("srv").join(name);
            std::fs::create_dir_all(&at).unwrap();
            run(Command::new("mount").arg("--bind").arg(&from).arg(&at));
        }
        // The virtualenv's interpreter must be runnable by the Sess' accounts (release phases
        // and `backstage run` execute it as them), as on a server. On a machine whose Python
        // lives below `/root` (pyenv), that directory is shown again over an open `/root`.
        let python = std::fs::canonicalize(test_venv().join("bin/python")).unwrap();
        if let Ok(rest) = python.strip_prefix("/root") {
            let top = rest.components().next().unwrap().as_os_str().to_owned();
            let hidden = root.join("root-python");
            std::fs::create_dir_all(&hidden).unwrap();
            run(Command::new("mount")
                .arg("--bind")
                .arg(Path::new("/root").join(&top))
                .arg(&hidden));
            run(Command::new("mount").args(["-t", "tmpfs", "-o", "mode=755", "tmpfs", "/root"]));
            std::fs::create_dir_all(Path::new("/root").join(&top)).unwrap();
            run(Command::new("mount")
                .arg("--bind")
                .arg(&hidden)
                .arg(Path::new("/root").join(&top)));
        }
        // The manifests of this process' one sandbox point there.
        let _ = SRV.set(root.join("srv"));
        let mut sandbox = Sandbox {
            root,
            emperor: None,
            dir,
        };
        sandbox.start_services();
        sandbox
    }

    /// What the units do: `nginx -g 'daemon on; master_process on;'` and `uwsgi --ini
    /// /etc/uwsgi-emperor/emperor.ini` with its runtime directory.
    pub fn start_services(&mut self) {
        run(Command::new("/usr/sbin/nginx").args(["-g", "daemon on; master_process on;"]));
        self.start_emperor();
    }

    pub fn start_emperor(&mut self) {
        std::fs::create_dir_all("/run/uwsgi").unwrap();
        run(Command::new("chown").args(["root:www-data", "/run/uwsgi"]));
        let mut emperor = Command::new("/usr/bin/uwsgi");
        emperor.args(["--ini", "/etc/uwsgi-emperor/emperor.ini"]);
        self.start_emperor_with(emperor);
    }

    /// Starts `emperor` as this sandbox's Emperor (its output in `emperor.log`), and waits until
    /// it watches the vassal dir.
    pub fn start_emperor_with(&mut self, mut emperor: Command) {
        let log = std::fs::File::create(self.root.join("emperor.log")).unwrap();
        let child = emperor
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start the Emperor");
        self.emperor = Some(child);
        wait_for_emperor();
    }

    pub fn stop_emperor(&mut self) {
        if let Some(mut child) = self.emperor.take() {
            // SIGINT stops the Emperor and its vassals.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
                nix::sys::signal::Signal::SIGINT,
            );
            let _ = child.wait();
        }
    }

    /// Debian's stock Emperor drops to www-data; a root Emperor has its `uid`/`gid` lines
    /// commented out, as the README tells a sysadmin to.
    pub fn make_emperor_root(&mut self) {
        let ini = "/etc/uwsgi-emperor/emperor.ini";
        let text = std::fs::read_to_string(ini).unwrap();
        let text = text
            .lines()
            .map(|l| {
                if l.starts_with("uid") || l.starts_with("gid") {
                    format!("# {l}")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(ini, text + "\n").unwrap();
        self.stop_emperor();
        self.start_emperor();
    }

    /// A reboot: every service stops, `/run` is emptied, the services start again.
    pub fn reboot(&mut self) {
        self.stop_emperor();
        if let Ok(pid) = std::fs::read_to_string("/run/nginx.pid") {
            let pid: i32 = pid.trim().parse().unwrap();
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGQUIT,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while super::pid_alive(u64::try_from(pid).unwrap()) {
                assert!(Instant::now() < deadline, "nginx did not stop");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        for e in std::fs::read_dir("/run").unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
        self.start_services();
    }

    pub fn write_manifest(&self, text: &str) {
        std::fs::write(self.dir.join("backstage.toml"), text).unwrap();
    }

    pub fn backstage(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_backstage"))
            .args(args)
            .current_dir(&self.dir)
            // Sandboxes share /tmp but not pids: each keeps its scratch dirs apart.
            .env("TMPDIR", self.root.join("tmp"))
            .output()
            .expect("run backstage")
    }
}

/// Waits until an Emperor watches the vassal dir.
fn wait_for_emperor() {
    let deadline = Instant::now() + Duration::from_secs(10);
    while backstage_uwsgi::system::SystemEmperor::find(Path::new("/etc/uwsgi-emperor/vassals"))
        .is_none()
    {
        assert!(Instant::now() < deadline, "the Emperor did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What the Emperor and nginx said, for the failure's report.
            let emperor =
                std::fs::read_to_string(self.root.join("emperor.log")).unwrap_or_default();
            let tail: Vec<&str> = emperor.lines().rev().take(40).collect();
            eprintln!("--- the Emperor's log, last lines:");
            for l in tail.iter().rev() {
                eprintln!("  | {l}");
            }
            let ls = Command::new("ls")
                .args(["-laR", "/var/log/backstage", "/run/backstage"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            eprintln!("--- Backstage's directories:\n{ls}");
            for log in super::walk(Path::new("/var/log/backstage"))
                .into_iter()
                .filter(|p| p.to_string_lossy().contains(".worker."))
            {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                eprintln!("--- `{}`, last lines:", log.display());
                for l in tail.iter().rev() {
                    eprintln!("  | {l}");
                }
            }
            let nginx = std::fs::read_to_string("/var/log/nginx/error.log").unwrap_or_default();
            eprintln!("--- nginx's error log:\n{nginx}");
        }
        self.stop_emperor();
    }
}
