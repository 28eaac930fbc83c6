//! End-to-end tests of `backstage dns plan|apply` against a real PowerDNS (Debian's
//! `pdns-server` with the sqlite3 backend) on loopback, resolved with real DNS queries (`dig`).

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use backstage_producer::PowerDns;
use backstage_producer::api::{Comment, Record, RrSetChange};

const PDNS: &str = "/usr/sbin/pdns_server";
const SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";
const KEY_VAR: &str = "BACKSTAGE_TEST_PDNS_KEY";

fn need(path: &str) {
    assert!(
        Path::new(path).exists() || which(path),
        "`{path}` is missing: run `scripts/test-deps` (installs pdns-server, pdns-backend-sqlite3, dnsutils, sqlite3, openssl, nginx)"
    );
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port free for both TCP and UDP on loopback, for now.
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A PowerDNS server in a temporary directory, stopped on drop.
struct Pdns {
    child: Child,
    dir: tempfile::TempDir,
    dns_port: u16,
    api_port: u16,
    key: String,
}

impl Pdns {
    fn start() -> Pdns {
        need(PDNS);
        need(SCHEMA);
        need("sqlite3");
        need("dig");
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pdns.sqlite3");
        let init = Command::new("sqlite3")
            .arg(&db)
            .stdin(std::fs::File::open(SCHEMA).unwrap())
            .output()
            .unwrap();
        assert!(init.status.success(), "sqlite3: {init:?}");
        let (dns_port, api_port) = (free_port(), free_port());
        let key = format!("key-{}-{api_port}", std::process::id());
        let conf = format!(
            "launch=gsqlite3\ngsqlite3-database={db}\nlocal-address=127.0.0.1\nlocal-port={dns_port}\n\
             api=yes\napi-key={key}\nwebserver=yes\nwebserver-address=127.0.0.1\n\
             webserver-port={api_port}\nwebserver-allow-from=127.0.0.1\nsocket-dir={dir}\n\
             daemon=no\nguardian=no\nwrite-pid=no\n",
            db = db.display(),
            dir = dir.path().display(),
        );
        std::fs::write(dir.path().join("pdns.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.path().join("pdns.log")).unwrap();
        let child = Command::new(PDNS)
            .arg(format!("--config-dir={}", dir.path().display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut pdns = Pdns {
            child,
            dir,
            dns_port,
            api_port,
            key,
        };
        pdns.wait_ready();
        pdns
    }

    fn wait_ready(&mut self) {
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pdns_server exited with {status}: {}", self.log());
            }
            let api = TcpStream::connect(("127.0.0.1", self.api_port)).is_ok();
            // Any DNS answer (REFUSED included) means the resolver threads are up.
            if api && self.dig_status("ready.invalid", "SOA") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pdns_server did not come up: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pdns.log")).unwrap_or_default()
    }

    fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    fn dig_status(&self, name: &str, rtype: &str) -> bool {
        Command::new("dig")
            .args(["@127.0.0.1", "-p", &self.dns_port.to_string()])
            .args([name, rtype, "+tries=1", "+time=1"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// The answers PowerDNS gives for `name`/`rtype`, sorted.
    fn resolve(&self, name: &str, rtype: &str) -> Vec<String> {
        let out = Command::new("dig")
            .args(["@127.0.0.1", "-p", &self.dns_port.to_string()])
            .args([name, rtype, "+short", "+tries=2", "+time=2"])
            .output()
            .unwrap();
        assert!(out.status.success(), "dig: {out:?}");
        let mut v: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    }

    /// A client as an administrator other than Backstage would use it.
    fn admin(&self) -> PowerDns {
        PowerDns::new(&self.api_url(), &self.key).unwrap()
    }
}

impl Drop for Pdns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// An A rrset made by hand, without Backstage's mark.
fn foreign_a(pdns: &Pdns, zone: &str, account: &str, name: &str, ip: &str) {
    let admin = pdns.admin();
    block_on(async {
        let zones = admin.zones().await.unwrap();
        if !zones.iter().any(|z| z.name == zone) {
            admin
                .create_zone(zone, &[format!("ns1.{zone}")], account)
                .await
                .unwrap();
        }
        let change = RrSetChange {
            name: name.into(),
            rtype: "A".into(),
            changetype: "REPLACE",
            ttl: Some(120),
            records: vec![Record {
                content: ip.into(),
                disabled: false,
            }],
            comments: vec![Comment {
                content: "made by the DNS team".into(),
                account: "dns-team".into(),
            }],
        };
        admin.patch_rrsets(zone, &[change]).await.unwrap();
    });
}

struct Production {
    dir: tempfile::TempDir,
}

impl Production {
    fn new(venues: &str, api_url: &str, address: &str) -> Production {
        let dir = tempfile::tempdir().unwrap();
        let p = Production { dir };
        p.write(venues, api_url, address);
        p
    }

    fn write(&self, venues: &str, api_url: &str, address: &str) {
        let text = format!(
            "[production]\nname = \"jazzclub\"\n\n{venues}\n\n[producer]\napi_url = \"{api_url}\"\n\
             api_key_env = \"{KEY_VAR}\"\naddress = {address}\nttl = 60\n"
        );
        std::fs::write(self.manifest(), text).unwrap();
    }

    fn manifest(&self) -> PathBuf {
        self.dir.path().join("backstage.toml")
    }

    fn dns(&self, key: &str, args: &[&str]) -> Output {
        self.dns_trusting(key, args, None)
    }

    /// `dns` with `SSL_CERT_FILE` set to `ca` (or, with `None`, neither it nor `SSL_CERT_DIR`:
    /// the system's trusted certificates).
    fn dns_trusting(&self, key: &str, args: &[&str], ca: Option<&Path>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_backstage"));
        command
            .arg("dns")
            .args(args)
            .arg("-f")
            .arg(self.manifest())
            .env(KEY_VAR, key)
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        if let Some(ca) = ca {
            command.env("SSL_CERT_FILE", ca);
        }
        command.output().unwrap()
    }
}

fn changes(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["changes"].as_array().unwrap().clone()
}

fn summary(changes: &[serde_json::Value]) -> Vec<String> {
    changes
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}",
                c["action"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
                c["type"].as_str().unwrap_or("")
            )
            .trim_end()
            .to_owned()
        })
        .collect()
}

const VENUES: &str = r#"
[venues.jazz]
server_names = ["jazz.example.com", "*.jazz.example.com"]

[venues.blues]
server_names = ["blues.example.org"]
zone = "example.org"
"#;

#[test]
fn apply_resolves_converges_and_follows_the_manifest() {
    let pdns = Pdns::start();
    // The DNS team's zone and record: Backstage adds to the zone and leaves the record alone.
    foreign_a(
        &pdns,
        "example.com.",
        "",
        "mail.example.com.",
        "198.51.100.25",
    );
    let prod = Production::new(VENUES, &pdns.api_url(), r#"["192.0.2.10", "2001:db8::10"]"#);

    let plan = changes(&prod.dns(&pdns.key, &["plan", "--json"]));
    assert_eq!(
        summary(&plan),
        [
            "create zone example.org.",
            "create record *.jazz.example.com. A",
            "create record *.jazz.example.com. AAAA",
            "create record jazz.example.com. A",
            "create record jazz.example.com. AAAA",
            "create record blues.example.org. A",
            "create record blues.example.org. AAAA",
        ]
    );
    // A plan changes nothing.
    assert!(pdns.resolve("jazz.example.com", "A").is_empty());

    let applied = prod.dns(&pdns.key, &["apply"]);
    assert!(applied.status.success(), "{applied:?}");
    let stdout = String::from_utf8(applied.stdout).unwrap();
    assert!(stdout.contains("dns: 7 changes applied"), "{stdout}");

    assert_eq!(pdns.resolve("jazz.example.com", "A"), ["192.0.2.10"]);
    assert_eq!(pdns.resolve("jazz.example.com", "AAAA"), ["2001:db8::10"]);
    assert_eq!(pdns.resolve("late.jazz.example.com", "A"), ["192.0.2.10"]);
    assert_eq!(pdns.resolve("blues.example.org", "AAAA"), ["2001:db8::10"]);
    assert_eq!(pdns.resolve("mail.example.com", "A"), ["198.51.100.25"]);

    // Idempotent: nothing left to do, and a second apply changes nothing.
    assert!(changes(&prod.dns(&pdns.key, &["plan", "--json"])).is_empty());
    assert!(changes(&prod.dns(&pdns.key, &["apply", "--json"])).is_empty());

    // The blues Venue closes, jazz gains a name, the addresses change (IPv4 only now).
    let venues = r#"
[venues.jazz]
server_names = ["jazz.example.com", "*.jazz.example.com", "www.example.com"]
"#;
    prod.write(venues, &pdns.api_url(), r#""192.0.2.20""#);
    let plan = prod.dns(&pdns.key, &["plan"]);
    assert!(plan.status.success(), "{plan:?}");
    insta::assert_snapshot!(String::from_utf8(plan.stdout).unwrap());
    let applied = changes(&prod.dns(&pdns.key, &["apply", "--json"]));
    assert_eq!(
        summary(&applied),
        [
            "update record *.jazz.example.com. A",
            "delete record *.jazz.example.com. AAAA",
            "update record jazz.example.com. A",
            "delete record jazz.example.com. AAAA",
            "create record www.example.com. A",
            "delete record blues.example.org. A",
            "delete record blues.example.org. AAAA",
        ]
    );
    assert_eq!(pdns.resolve("jazz.example.com", "A"), ["192.0.2.20"]);
    assert!(pdns.resolve("jazz.example.com", "AAAA").is_empty());
    assert_eq!(pdns.resolve("www.example.com", "A"), ["192.0.2.20"]);
    assert_eq!(pdns.resolve("x.jazz.example.com", "A"), ["192.0.2.20"]);
    assert!(pdns.resolve("blues.example.org", "A").is_empty());
    assert_eq!(pdns.resolve("mail.example.com", "A"), ["198.51.100.25"]);
    assert!(changes(&prod.dns(&pdns.key, &["plan", "--json"])).is_empty());
}

#[test]
fn a_half_done_apply_is_finished_by_the_next() {
    let pdns = Pdns::start();
    // As if an apply had created its zone and stopped before the records.
    block_on(pdns.admin().create_zone(
        "example.org.",
        &["ns1.example.org.".to_owned()],
        "backstage:jazzclub",
    ))
    .unwrap();
    let prod = Production::new(VENUES, &pdns.api_url(), r#""192.0.2.10""#);
    let applied = changes(&prod.dns(&pdns.key, &["apply", "--json"]));
    assert_eq!(
        summary(&applied),
        [
            "create zone example.com.",
            "create record *.jazz.example.com. A",
            "create record jazz.example.com. A",
            "create record blues.example.org. A",
        ]
    );
    assert_eq!(pdns.resolve("blues.example.org", "A"), ["192.0.2.10"]);
    assert_eq!(pdns.resolve("a.jazz.example.com", "A"), ["192.0.2.10"]);
    assert!(changes(&prod.dns(&pdns.key, &["plan", "--json"])).is_empty());
}

#[test]
fn a_record_someone_else_made_is_never_replaced() {
    let pdns = Pdns::start();
    foreign_a(
        &pdns,
        "example.com.",
        "",
        "jazz.example.com.",
        "198.51.100.7",
    );
    let prod = Production::new(VENUES, &pdns.api_url(), r#""192.0.2.10""#);
    let out = prod.dns(&pdns.key, &["apply"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("record `jazz.example.com.` A in zone `example.com.` was not made by Production `jazzclub`"),
        "{stderr}"
    );
    // Refused before any change: the record stands and no other Venue's record was written.
    assert_eq!(pdns.resolve("jazz.example.com", "A"), ["198.51.100.7"]);
    assert!(pdns.resolve("blues.example.org", "A").is_empty());
}

#[test]
fn a_zone_someone_else_owns_is_refused() {
    let pdns = Pdns::start();
    foreign_a(
        &pdns,
        "example.com.",
        "dns-team",
        "mail.example.com.",
        "198.51.100.25",
    );
    let prod = Production::new(VENUES, &pdns.api_url(), r#""192.0.2.10""#);
    let out = prod.dns(&pdns.key, &["plan"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("zone `example.com.` belongs to account `dns-team`"),
        "{stderr}"
    );
}

#[test]
fn a_wrong_key_is_a_clear_error_and_never_printed() {
    let pdns = Pdns::start();
    let prod = Production::new(VENUES, &pdns.api_url(), r#""192.0.2.10""#);
    let wrong = "not-the-key-0123";
    let out = prod.dns(wrong, &["apply", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        stderr.contains("refused the API key (HTTP 401)"),
        "{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(doc["error"].as_str().unwrap().contains("HTTP 401"), "{doc}");
    assert!(!stderr.contains(wrong) && !stdout.contains(wrong));
    // Nothing was changed: the right key now finds everything still to do.
    assert_eq!(changes(&prod.dns(&pdns.key, &["plan", "--json"])).len(), 5);
}

/// Real nginx terminating TLS in front of PowerDNS' webserver, with a certificate for
/// 127.0.0.1 issued by a throwaway CA (made with the `openssl` command). Stopped on drop.
struct TlsProxy {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl TlsProxy {
    fn start(api_port: u16) -> TlsProxy {
        need("openssl");
        need("/usr/sbin/nginx");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        for command in [
            format!(
                "req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=backstage-test-CA"
            ),
            format!("req {ec} -keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1"),
            "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile leaf.ext -out leaf.pem"
                .to_owned(),
        ] {
            let out = Command::new("openssl")
                .args(command.split_whitespace())
                .current_dir(d)
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl {command}: {out:?}");
        }
        let port = free_port();
        let temp = |name: &str| format!("{name}_temp_path {}/{name};", d.display());
        std::fs::write(
            d.join("nginx.conf"),
            format!(
                "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
                 http {{\n access_log off;\n {}\n {}\n {}\n {}\n {}\n\
                 server {{\n  listen 127.0.0.1:{port} ssl;\n  ssl_certificate {d}/leaf.pem;\n\
                 ssl_certificate_key {d}/leaf.key;\n\
                 location / {{ proxy_pass http://127.0.0.1:{api_port}; }}\n }}\n}}\n",
                temp("client_body"),
                temp("proxy"),
                temp("fastcgi"),
                temp("uwsgi"),
                temp("scgi"),
                d = d.display(),
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut proxy = TlsProxy { child, dir, port };
        for _ in 0..200 {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!(
                    "nginx exited with {status}: {}",
                    std::fs::read_to_string(proxy.dir.path().join("error.log")).unwrap_or_default()
                );
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return proxy;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nginx did not listen on {port}");
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl TlsProxy {
    /// The pids of the master's workers.
    fn workers(&self) -> Vec<String> {
        let out = Command::new("pgrep")
            .args(["-P", &self.child.id().to_string()])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers, then exits (a SIGKILL would orphan them).
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_https_api_is_spoken_with_its_certificate_verified() {
    let pdns = Pdns::start();
    let proxy = TlsProxy::start(pdns.api_port);
    let https = format!("https://127.0.0.1:{}", proxy.port);
    let prod = Production::new(VENUES, &https, r#""192.0.2.10""#);

    // The system does not trust the test CA (or has no CA store at all): refused before any
    // request, and said why.
    let out = prod.dns_trusting(&pdns.key, &["plan"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("TLS with the PowerDNS API at `{https}")),
        "{stderr}"
    );
    assert!(!stderr.contains(&pdns.key), "{stderr}");

    // Trusting the CA through SSL_CERT_FILE: plan, apply, and the names resolve.
    let plan = changes(&prod.dns_trusting(&pdns.key, &["plan", "--json"], Some(&proxy.ca())));
    assert!(!plan.is_empty());
    let out = prod.dns_trusting(&pdns.key, &["apply"], Some(&proxy.ca()));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(pdns.resolve("jazz.example.com", "A"), ["192.0.2.10"]);
    let again = changes(&prod.dns_trusting(&pdns.key, &["plan", "--json"], Some(&proxy.ca())));
    assert!(again.is_empty(), "{again:?}");

    // The certificate names 127.0.0.1, not `localhost`: refused even with the CA trusted.
    let by_name = Production::new(
        VENUES,
        &format!("https://localhost:{}", proxy.port),
        r#""192.0.2.10""#,
    );
    let out = by_name.dns_trusting(&pdns.key, &["plan"], Some(&proxy.ca()));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("not valid for name"), "{stderr}");

    // The proxy leaves no nginx worker behind.
    let workers = proxy.workers();
    assert!(!workers.is_empty());
    drop(proxy);
    for w in workers {
        assert!(
            !Path::new(&format!("/proc/{w}")).exists(),
            "nginx worker {w} left"
        );
    }
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    // A port bound but not listening: refused, and no concurrent test's server can take it.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let prod = Production::new(
        VENUES,
        &format!("http://127.0.0.1:{port}"),
        r#""192.0.2.10""#,
    );
    let out = prod.dns("any-key", &["plan"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "cannot reach the PowerDNS API at `http://127.0.0.1:{port}/api/v1/servers/localhost/zones`"
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_key_variable_is_named() {
    let prod = Production::new(VENUES, "http://127.0.0.1:9", r#""192.0.2.10""#);
    let out = Command::new(env!("CARGO_BIN_EXE_backstage"))
        .args(["dns", "plan", "-f"])
        .arg(prod.manifest())
        .env_remove(KEY_VAR)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("environment variable `{KEY_VAR}`")),
        "{stderr}"
    );
}

#[test]
fn an_inline_key_works_with_a_warning_and_is_never_printed() {
    let pdns = Pdns::start();
    let prod = Production::new(VENUES, &pdns.api_url(), r#""192.0.2.10""#);
    let text = std::fs::read_to_string(prod.manifest()).unwrap().replace(
        &format!("api_key_env = \"{KEY_VAR}\""),
        &format!("api_key = \"{}\"", pdns.key),
    );
    std::fs::write(prod.manifest(), text).unwrap();
    let out = prod.dns("unused", &["apply"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stderr.contains("warning: `producer.api_key` keeps the PowerDNS key in the manifest"),
        "{stderr}"
    );
    assert!(!stderr.contains(&pdns.key) && !stdout.contains(&pdns.key));
    assert_eq!(pdns.resolve("jazz.example.com", "A"), ["192.0.2.10"]);
}
