//! A small async client for the PowerDNS Authoritative HTTP API (HTTP or HTTPS, on tokio).
//!
//! Only what the Producer needs: list zones, read one zone's rrsets, create a zone, and
//! `PATCH` a zone's rrsets (atomic per zone on the server's side).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use crate::Error;

/// How long to wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (a zone with some hundred thousand records).
const MAX_BODY: usize = 64 << 20;
/// How long one whole request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The API key; its `Debug` never shows it.
#[derive(Clone)]
struct Secret(HeaderValue);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A PowerDNS server's API, `servers/localhost` under `/api/v1`.
#[derive(Debug, Clone)]
pub struct PowerDns {
    /// `host:port` to connect to and send as `Host`.
    authority: String,
    /// The path every endpoint is below, e.g. `/api/v1/servers/localhost`.
    base: String,
    /// `http://authority` or `https://authority`, for messages.
    origin: String,
    key: Secret,
    /// For an `https://` URL: the TLS client, and the name the server's certificate must carry.
    tls: Option<Tls>,
}

/// TLS towards the API: the system's trusted certificates (or `SSL_CERT_FILE`/`SSL_CERT_DIR`).
#[derive(Clone)]
struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// A TLS client for `host` that trusts the system's CA certificates, or those of the
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR` named by the environment (OpenSSL's variables).
    fn new(url: &str, host: &str) -> Result<Tls, Error> {
        let tls_error = |message: String| Error::Tls {
            url: url.to_owned(),
            message,
        };
        // `[::1]` in a URL is the address `::1` in a certificate.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_owned()).map_err(|e| {
            tls_error(format!(
                "`{host}` is not a name a certificate can carry: {e}"
            ))
        })?;
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map_or_else(String::new, |e| format!(" ({e})"));
            return Err(tls_error(format!(
                "no trusted CA certificate found in the system's store or in SSL_CERT_FILE/SSL_CERT_DIR{why}"
            )));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }
}

/// A zone as listed by `GET zones`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ZoneInfo {
    /// Opaque id, safe in URLs.
    pub id: String,
    /// The zone's name, with the trailing dot.
    pub name: String,
    /// `Native`, `Master`, `Slave`, …
    #[serde(default)]
    pub kind: String,
    /// Free-form owner field; Backstage writes `backstage:<production>` in zones it creates.
    #[serde(default)]
    pub account: String,
}

/// One record of an rrset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The record data, e.g. `192.0.2.1`.
    pub content: String,
    /// Whether PowerDNS serves it.
    #[serde(default)]
    pub disabled: bool,
}

/// A comment on an rrset: Backstage's ownership mark lives here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Free text.
    pub content: String,
    /// Who wrote it.
    #[serde(default)]
    pub account: String,
}

/// All records of one name and type, with their comments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RrSet {
    /// The owner name, with the trailing dot.
    pub name: String,
    /// The record type, e.g. `A`.
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL in seconds.
    #[serde(default)]
    pub ttl: u32,
    /// The records.
    #[serde(default)]
    pub records: Vec<Record>,
    /// The comments.
    #[serde(default)]
    pub comments: Vec<Comment>,
}

/// A zone with its rrsets, as `GET zones/{id}` returns it.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Zone {
    /// Opaque id.
    pub id: String,
    /// The zone's name.
    pub name: String,
    /// Every rrset.
    #[serde(default)]
    pub rrsets: Vec<RrSet>,
}

/// One change in a `PATCH`: replace an rrset's records and comments, or delete it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RrSetChange {
    /// The owner name, with the trailing dot.
    pub name: String,
    /// The record type.
    #[serde(rename = "type")]
    pub rtype: String,
    /// `REPLACE` or `DELETE`.
    pub changetype: &'static str,
    /// TTL (absent for `DELETE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// The new records (empty for `DELETE`).
    pub records: Vec<Record>,
    /// The new comments (empty for `DELETE`).
    pub comments: Vec<Comment>,
}

#[derive(Serialize)]
struct NewZone<'a> {
    name: &'a str,
    kind: &'static str,
    nameservers: &'a [String],
    account: &'a str,
}

/// PowerDNS' error body.
#[derive(Deserialize)]
struct ApiError {
    error: String,
}

#[derive(Serialize)]
struct Patch<'a> {
    rrsets: &'a [RrSetChange],
}

impl PowerDns {
    /// A client for the API at `api_url` (`http://host:port` or `https://host:port`, optionally
    /// ending in `/api/v1`), authenticating with `api_key`. Over `https` the server's certificate
    /// must chain to a CA the system trusts, or one in `SSL_CERT_FILE`/`SSL_CERT_DIR`.
    pub fn new(api_url: &str, api_key: &str) -> Result<Self, Error> {
        let bad = |why| Error::BadUrl {
            url: api_url.to_owned(),
            why,
        };
        let uri: Uri = api_url.parse().map_err(|_| bad("not a valid URL"))?;
        let (scheme, default_port) = match uri.scheme_str() {
            Some("http") => ("http", 80),
            Some("https") => ("https", 443),
            _ => return Err(bad("expected an `http://` or `https://` URL")),
        };
        if uri.query().is_some() {
            return Err(bad("the URL has a query"));
        }
        let authority = uri.authority().ok_or_else(|| bad("the URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("the URL carries credentials; use `api_key_env`"));
        }
        let tls = match scheme {
            "https" => Some(Tls::new(api_url, authority.host())?),
            _ => None,
        };
        let authority = match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:{default_port}", authority.host()),
        };
        let path = uri.path().trim_end_matches('/');
        let api = if path.ends_with("/api/v1") {
            path.to_owned()
        } else {
            format!("{path}/api/v1")
        };
        let key = HeaderValue::from_str(api_key).map_err(|_| Error::BadKey)?;
        let mut key = key;
        key.set_sensitive(true);
        Ok(Self {
            origin: format!("{scheme}://{authority}"),
            authority,
            base: format!("{api}/servers/localhost"),
            key: Secret(key),
            tls,
        })
    }

    /// Every zone on the server.
    pub async fn zones(&self) -> Result<Vec<ZoneInfo>, Error> {
        let url = format!("{}/zones", self.base);
        let body = self.call(Method::GET, &url, None).await?;
        self.decode(&url, &body)
    }

    /// One zone with its rrsets.
    pub async fn zone(&self, id: &str) -> Result<Zone, Error> {
        let url = format!("{}/zones/{id}", self.base);
        let body = self.call(Method::GET, &url, None).await?;
        self.decode(&url, &body)
    }

    /// Creates a Native zone owned by `account`, with `nameservers` as its NS records.
    pub async fn create_zone(
        &self,
        name: &str,
        nameservers: &[String],
        account: &str,
    ) -> Result<ZoneInfo, Error> {
        let url = format!("{}/zones", self.base);
        let body = serde_json::to_vec(&NewZone {
            name,
            kind: "Native",
            nameservers,
            account,
        })
        .expect("a zone serialises");
        let answer = self.call(Method::POST, &url, Some(body)).await?;
        self.decode(&url, &answer)
    }

    /// Applies `changes` to one zone, atomically.
    pub async fn patch_rrsets(&self, zone_id: &str, changes: &[RrSetChange]) -> Result<(), Error> {
        let url = format!("{}/zones/{zone_id}", self.base);
        let body = serde_json::to_vec(&Patch { rrsets: changes }).expect("rrsets serialise");
        self.call(Method::PATCH, &url, Some(body)).await?;
        Ok(())
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, path: &str, body: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(body).map_err(|source| Error::Decode {
            url: format!("{}{path}", self.origin),
            source,
        })
    }

    /// One request on a fresh connection; the answer's body when the status is a success.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, Error> {
        let url = format!("{}{path}", self.origin);
        let exchange = self.exchange(method.clone(), path, body, &url);
        let (status, answer) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| Error::Timeout {
                url: url.clone(),
                seconds: REQUEST_TIMEOUT.as_secs(),
            })??;
        if status.is_success() {
            return Ok(answer);
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized {
                url,
                status: status.as_u16(),
            });
        }
        let message = serde_json::from_slice::<ApiError>(&answer).map_or_else(
            |_| String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned(),
            |e| e.error,
        );
        Err(Error::Status {
            method: match method {
                Method::GET => "GET",
                Method::POST => "POST",
                Method::PATCH => "PATCH",
                _ => "request",
            },
            url,
            status: status.as_u16(),
            message,
        })
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        url: &str,
    ) -> Result<(StatusCode, Bytes), Error> {
        let timed_out = |_: tokio::time::error::Elapsed| Error::Timeout {
            url: url.to_owned(),
            seconds: CONNECT_TIMEOUT.as_secs(),
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.authority))
            .await
            .map_err(timed_out)?
            .map_err(|source| Error::Unreachable {
                url: url.to_owned(),
                source,
            })?;
        let Some(tls) = &self.tls else {
            return self.send(stream, method, path, body, url).await;
        };
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tls.connector.connect(tls.name.clone(), stream),
        )
        .await
        .map_err(timed_out)?
        .map_err(|e| Error::Tls {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        self.send(stream, method, path, body, url).await
    }

    /// One request and its answer over a connected (plain or TLS) stream.
    async fn send<S>(
        &self,
        stream: S,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        url: &str,
    ) -> Result<(StatusCode, Bytes), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let http = |source| Error::Http {
            url: url.to_owned(),
            source,
        };
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(http)?;
        // The connection task ends when `sender` is dropped at the end of this exchange.
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.authority)
            .header("X-API-Key", self.key.0.clone());
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("method, path and headers are valid");
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status();
        let answer = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|source| Error::Body {
                url: url.to_owned(),
                source,
            })?
            .to_bytes();
        Ok((status, answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let p = PowerDns::new("http://127.0.0.1:8081", "k").unwrap();
        assert_eq!(p.authority, "127.0.0.1:8081");
        assert_eq!(p.base, "/api/v1/servers/localhost");
        let p = PowerDns::new("http://dns.example/pdns/api/v1/", "k").unwrap();
        assert_eq!(p.authority, "dns.example:80");
        assert_eq!(p.base, "/pdns/api/v1/servers/localhost");
        let p = PowerDns::new("https://dns.example", "k").unwrap();
        assert_eq!(p.authority, "dns.example:443");
        assert_eq!(p.origin, "https://dns.example:443");
        assert!(p.tls.is_some());
        assert!(matches!(
            PowerDns::new("ftp://dns.example", "k"),
            Err(Error::BadUrl { .. })
        ));
        assert!(matches!(
            PowerDns::new("http://u:p@dns.example", "k"),
            Err(Error::BadUrl { .. })
        ));
    }

    #[test]
    fn key_is_never_shown() {
        let p = PowerDns::new("http://127.0.0.1:8081", "s3cret-key").unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(matches!(
            PowerDns::new("http://127.0.0.1:8081", "bad\nkey"),
            Err(Error::BadKey)
        ));
    }
}
