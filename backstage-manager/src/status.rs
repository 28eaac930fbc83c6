//! `status`: every Sess' state and every Gig's answer through nginx.

// The pieces of the Production Manager share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

/// A Gig's public URL and where nginx listens for it.
#[derive(Debug, Clone, Serialize)]
pub struct GigUrl {
    /// The Gig.
    pub name: String,
    /// Its URL (`http://jazz.localhost:8080/`).
    pub url: String,
    /// The address to connect to.
    #[serde(skip)]
    pub connect: SocketAddr,
    /// The Host header to send (and over TLS, the SNI name).
    #[serde(skip)]
    pub host: String,
    /// Whether to ask over TLS: the Venue has TLS, so its plain listeners only redirect.
    #[serde(skip)]
    pub tls: bool,
    /// The path to ask for.
    #[serde(skip)]
    pub path: String,
}

/// Every Gig's URL: its Venue's first non-wildcard name on its first listen address (its first
/// TLS address when the Venue has TLS: the plain ones only redirect there).
pub fn gig_urls(production: &Production) -> Vec<GigUrl> {
    let mut out = Vec::new();
    for (name, gig) in &production.gigs {
        let Some(venue) = production.venues.get(&gig.venue) else {
            continue;
        };
        let tls = venue.serving_tls().is_some();
        let listens = venue.serving_tls().map_or(&venue.listen, |t| &t.listen);
        let Some(listen) = listens.first() else {
            continue;
        };
        let host = venue
            .server_names
            .iter()
            .find(|n| !n.is_wildcard())
            .map_or_else(|| "localhost".to_owned(), ToString::to_string);
        let connect = match listen {
            ListenAddr::Port(p) => SocketAddr::from(([127, 0, 0, 1], *p)),
            ListenAddr::Socket(a) if a.ip().is_unspecified() => SocketAddr::new(
                if a.is_ipv4() {
                    [127, 0, 0, 1].into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                },
                a.port(),
            ),
            ListenAddr::Socket(a) => *a,
        };
        let path = if gig.path.is_root() {
            "/".to_owned()
        } else {
            format!("{}/", gig.path)
        };
        let (scheme, default_port) = if tls { ("https", 443) } else { ("http", 80) };
        let port = if connect.port() == default_port {
            String::new()
        } else {
            format!(":{}", connect.port())
        };
        out.push(GigUrl {
            name: name.to_string(),
            url: format!("{scheme}://{host}{port}{path}"),
            connect,
            host,
            path,
            tls,
        });
    }
    out
}

/// The HTTP status a Gig answers through nginx. The request carries the probe header with
/// the Production's name, and only the Gig's own location answers it with the Gig's name: an
/// answer without it came from another server block (a default site, say), and the Gig is
/// not up.
pub(super) async fn http_status(
    url: &GigUrl,
    production: &str,
    timeout: Duration,
) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let tcp = tokio::net::TcpStream::connect(url.connect)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", url.connect))?;
        let mut stream: Box<dyn Stream> = if url.tls {
            Box::new(probe_tls(tcp, &url.host).await?)
        } else {
            Box::new(tcp)
        };
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: backstage\r\n{}: {production}\r\n\r\n",
            url.path,
            url.host,
            backstage_nginx::PROBE_HEADER
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head);
        let first = text.lines().next().unwrap_or("");
        let code = first
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP answer: `{first}`"))?;
        let answered_by = text.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(backstage_nginx::PROBE_ANSWER)
                .then(|| v.trim().to_owned())
        });
        match answered_by {
            Some(gig) if gig == url.name => Ok(code),
            Some(other) => Err(format!("HTTP {code} from Gig `{other}`, not this one")),
            None => Err(format!(
                "HTTP {code} from another server block: nginx does not route {} to this Gig (is the site enabled and nginx reloaded?)",
                url.url
            )),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
}

/// A connection a probe reads and writes: plain TCP or TLS over it.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// TLS to nginx for a probe, with `host` as the SNI name. The probe checks where nginx routes
/// a request, not whether a browser would trust the certificate (a self-signed or a not yet
/// renewed one still serves), so any certificate is accepted; its signatures are checked.
async fn probe_tls(
    tcp: tokio::net::TcpStream,
    host: &str,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    use tokio_rustls::rustls;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("`{host}` cannot be a TLS server name: {e}"))?;
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with nginx failed: {e}"))
}

/// The probe's certificate check: every certificate passes, handshake signatures are verified.
#[derive(Debug)]
struct AnyCertificate(std::sync::Arc<tokio_rustls::rustls::crypto::CryptoProvider>);

impl tokio_rustls::rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[tokio_rustls::rustls::pki_types::CertificateDer<'_>],
        _server_name: &tokio_rustls::rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: tokio_rustls::rustls::pki_types::UnixTime,
    ) -> Result<tokio_rustls::rustls::client::danger::ServerCertVerified, tokio_rustls::rustls::Error>
    {
        Ok(tokio_rustls::rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<tokio_rustls::rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Every Sess' state and every Gig's answer through nginx.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// One entry per Act: its live release.
    pub acts: Vec<ActStatus>,
    /// One entry per Sess.
    pub sess: Vec<SessStatus>,
    /// One entry per Gig.
    pub gigs: Vec<GigStatus>,
    /// One entry per worker (SPEC §10), and any the manifest dropped that still runs.
    pub workers: Vec<super::WorkerStatus>,
    /// One entry per cron job, with its last run.
    pub cron: Vec<super::CronStatus>,
}

/// An Act in `status`: the release it runs.
#[derive(Debug, Clone, Serialize)]
pub struct ActStatus {
    /// Its name.
    pub name: String,
    /// Its live release's id; `null` before its first release.
    pub release: Option<String>,
    /// The live release's git commit or content hash.
    pub revision: Option<String>,
    /// When the live release went live (RFC 3339, UTC).
    pub deployed_at: Option<String>,
}

fn act_status(production: &Production, name: &Slug) -> ActStatus {
    let store = store_of(production, name);
    let live = store.live().and_then(|id| store.get(&id).ok());
    let deployed_at = live.as_ref().and(
        fs::symlink_metadata(store.current_link())
            .and_then(|m| m.modified())
            .ok()
            .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
    );
    ActStatus {
        name: name.to_string(),
        release: live.as_ref().map(|r| r.id.clone()),
        revision: live.map(|r| r.revision),
        deployed_at,
    }
}

impl Status {
    /// What is down, one line each: every Sess that is not running, every Gig that nothing
    /// answers or that answers 5xx. Empty when all is up.
    pub fn down(&self) -> Vec<String> {
        let sess = self
            .sess
            .iter()
            .filter(|s| s.state != "running")
            .map(|s| format!("Sess `{}` is {}", s.name, s.state));
        let gigs = self.gigs.iter().filter_map(|g| match g.http_status {
            Some(code) if code < 500 => None,
            Some(code) => Some(format!("Gig `{}` answers HTTP {code}", g.name)),
            None => Some(format!("Gig `{}` does not answer", g.name)),
        });
        let workers = self
            .workers
            .iter()
            .filter(|w| w.state != "running")
            .map(|w| format!("worker `{}` of Act `{}` is {}", w.name, w.act, w.state));
        sess.chain(gigs).chain(workers).collect()
    }
}

/// A Sess in `status`.
#[derive(Debug, Clone, Serialize)]
pub struct SessStatus {
    /// Its name.
    pub name: String,
    /// `running`, `stopped` or `failed`.
    pub state: &'static str,
    /// Live workers.
    pub workers: u32,
    /// Requests served.
    pub requests: u64,
    /// Resident memory of its workers.
    pub rss_bytes: u64,
    /// The release its Act runs (`null` before the first).
    pub release: Option<String>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The end of its log, when it failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

/// A Gig in `status`.
#[derive(Debug, Clone, Serialize)]
pub struct GigStatus {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The HTTP status nginx answered with; `null` when nothing answered.
    pub http_status: Option<u16>,
    /// Why nothing answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads every Sess' state and asks every Gig through nginx, all at once.
pub fn status(production: &Production) -> Result<Status, ManagerError> {
    let (production, _host) = resolve(production, &NginxBinary::from_env())?;
    let production = production.as_ref();
    if production.mode == Mode::System && !nix::unistd::Uid::effective().is_root() {
        // Each Sess' stats socket is its account's and nginx's group's: any other user would
        // see every Sess as failed.
        return Err(ManagerError::NeedsRoot {
            what: "status reads each Sess' stats socket, which only its account and root may open",
        });
    }
    let emperor = emperor_running(production);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|source| ManagerError::Io {
            action: "start an async runtime for",
            path: PathBuf::from("status"),
            source,
        })?;
    runtime.block_on(async {
        let mut sess_tasks = Vec::new();
        for name in production.sess.keys() {
            let production = production.clone();
            let name = name.to_string();
            sess_tasks.push(tokio::task::spawn_blocking(move || {
                let state = StageManager::new(&production).state(&name, emperor);
                (name, state)
            }));
        }
        let urls = gig_urls(production);
        let mut gig_tasks = Vec::new();
        for url in urls {
            let probe = production.name.to_string();
            gig_tasks.push(tokio::spawn(async move {
                let answer = http_status(&url, &probe, Duration::from_secs(5)).await;
                (url, answer)
            }));
        }
        let acts: Vec<ActStatus> = production
            .acts
            .keys()
            .map(|a| act_status(production, a))
            .collect();
        let mut sess = Vec::new();
        for t in sess_tasks {
            let (name, state) = t.await.expect("status task");
            let mut s = sess_status(name, state?);
            s.release = production
                .sess
                .iter()
                .find(|(k, _)| k.as_str() == s.name)
                .and_then(|(_, v)| acts.iter().find(|a| a.name == v.act.as_str()))
                .and_then(|a| a.release.clone());
            sess.push(s);
        }
        let mut gigs = Vec::new();
        for t in gig_tasks {
            let (url, answer) = t.await.expect("status task");
            let (http_status, error) = match answer {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            };
            gigs.push(GigStatus {
                name: url.name,
                url: url.url,
                http_status,
                error,
            });
        }
        Ok(Status {
            acts,
            sess,
            gigs,
            workers: super::worker_status(production),
            cron: super::cron_status(production),
        })
    })
}

pub(super) fn sess_status(name: String, state: SessState) -> SessStatus {
    let mut s = SessStatus {
        name,
        state: state.name(),
        workers: 0,
        requests: 0,
        rss_bytes: 0,
        release: None,
        reason: None,
        log_tail: Vec::new(),
    };
    match state {
        SessState::Running {
            workers,
            requests,
            rss_bytes,
            ..
        } => {
            s.workers = workers;
            s.requests = requests;
            s.rss_bytes = rss_bytes;
        }
        SessState::Failed { reason, log_tail } => {
            s.reason = Some(reason);
            s.log_tail = log_tail;
        }
        SessState::Stopped => {}
    }
    s
}
