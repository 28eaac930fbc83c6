//! A real ACME server for the tests: Pebble from Debian's packages, with pebble-challtestsrv
//! as its DNS (every name resolves to 127.0.0.1, no IPv6), on free loopback ports.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, ok, openssl};

/// A Pebble and its DNS, stopped when dropped.
pub struct Pebble {
    dir: tempfile::TempDir,
    /// Its ACME API's port.
    pub port: u16,
    management: u16,
    dns: u16,
    http_port: u16,
    /// External account binding required, with this key id and MAC key.
    eab: Option<(&'static str, &'static str)>,
    children: Vec<Child>,
}

impl Pebble {
    /// Starts Pebble validating HTTP-01 challenges on `http_port`. Pebble ships no certificate
    /// for its own HTTPS API: a throwaway CA signs one for 127.0.0.1.
    pub fn start(http_port: u16) -> Pebble {
        Pebble::start_with(http_port, None)
    }

    /// [`Pebble::start`], requiring an external account binding when `eab` is given.
    pub fn start_with(http_port: u16, eab: Option<(&'static str, &'static str)>) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=backstage test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
            d,
        );
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "csr.pem",
            ],
            d,
        );
        std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "csr.pem",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext",
                "-out",
                "cert.pem",
            ],
            d,
        );
        let mut pebble = Pebble {
            port: free_port(),
            management: free_port(),
            dns: free_port(),
            http_port,
            eab,
            children: Vec::new(),
            dir,
        };
        let cts_management = free_port();
        pebble.children.push(
            Command::new("pebble-challtestsrv")
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .arg("-dns01")
                .arg(format!("127.0.0.1:{}", pebble.dns))
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .arg("-management")
                .arg(format!("127.0.0.1:{cts_management}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run pebble-challtestsrv (scripts/test-deps installs pebble)"),
        );
        pebble.start_server();
        pebble
    }

    pub fn start_server(&mut self) {
        let d = self.dir.path();
        let mut config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{}", self.port),
            "managementListenAddress": format!("127.0.0.1:{}", self.management),
            "certificate": d.join("cert.pem"),
            "privateKey": d.join("key.pem"),
            "httpPort": self.http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        if let Some((kid, key)) = self.eab {
            config["pebble"]["externalAccountBindingRequired"] = true.into();
            config["pebble"]["externalAccountMACKeys"] = serde_json::json!({ kid: key });
        }
        std::fs::write(d.join("pebble.json"), config.to_string()).unwrap();
        let child = Command::new("pebble")
            .arg("-config")
            .arg(d.join("pebble.json"))
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{}", self.dns))
            // No random sleep before validating; no nonce rejected on purpose.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run pebble (scripts/test-deps installs it)");
        self.children.push(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.fetch("dir").is_none() {
            assert!(Instant::now() < deadline, "pebble did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the ACME server (its DNS stays).
    pub fn stop_server(&mut self) {
        let mut pebble = self.children.pop().unwrap();
        let _ = pebble.kill();
        let _ = pebble.wait();
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// GET on Pebble's API (`dir`) or, with a `:`, its management API (`:roots/0`).
    pub fn fetch(&self, path: &str) -> Option<String> {
        let url = match path.strip_prefix(':') {
            Some(p) => format!("https://127.0.0.1:{}/{p}", self.management),
            None => format!("https://127.0.0.1:{}/{path}", self.port),
        };
        let out = Command::new("curl")
            .args(["-sSf", "--max-time", "5", "--cacert"])
            .arg(self.ca_file())
            .arg(url)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Pebble's root certificate (a new one each start), as a file.
    pub fn root(&self) -> PathBuf {
        let file = self.dir.path().join("root.pem");
        std::fs::write(&file, self.fetch(":roots/0").expect("Pebble's root")).unwrap();
        file
    }

    /// The `[acme]` table for this Pebble.
    pub fn acme_table(&self) -> String {
        format!(
            "\n[acme]\ndirectory = \"https://127.0.0.1:{}/dir\"\nemail = \"ops@jazz.example\"\nca_file = \"{}\"\n",
            self.port,
            self.ca_file().display()
        )
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The serial of the certificate nginx serves for `name` on `port` (upper-case hex).
pub fn served_serial(port: u16, name: &str) -> String {
    let mut s_client = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(s_client.stdout.take().unwrap())
        .output()
        .unwrap();
    let _ = s_client.wait();
    ok(&x509)
        .trim()
        .strip_prefix("serial=")
        .unwrap_or_default()
        .to_owned()
}
