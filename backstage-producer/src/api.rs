//! A small async client for the PowerDNS Authoritative HTTP API (plain HTTP, on tokio).
//!
//! Only what the Producer needs: list zones, read one zone's rrsets, create a zone, and
//! `PATCH` a zone's rrsets (atomic per zone on the server's side).

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

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
    /// `http://authority` for messages.
    origin: String,
    key: Secret,
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
    /// A client for the API at `api_url` (`http://host:port`, optionally ending in `/api/v1`),
    /// authenticating with `api_key`. Only plain `http` is spoken.
    pub fn new(api_url: &str, api_key: &str) -> Result<Self, Error> {
        let bad = |why| Error::BadUrl {
            url: api_url.to_owned(),
            why,
        };
        let uri: Uri = api_url.parse().map_err(|_| bad("not a valid URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad(
                    "only plain `http` is supported; reach PowerDNS on loopback or through a local TLS proxy",
                ));
            }
            _ => return Err(bad("expected an `http://` URL")),
        }
        if uri.query().is_some() {
            return Err(bad("the URL has a query"));
        }
        let authority = uri.authority().ok_or_else(|| bad("the URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("the URL carries credentials; use `api_key_env`"));
        }
        let authority = match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:80", authority.host()),
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
            origin: format!("http://{authority}"),
            authority,
            base: format!("{api}/servers/localhost"),
            key: Secret(key),
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
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.authority))
            .await
            .map_err(|_| Error::Timeout {
                url: url.to_owned(),
                seconds: CONNECT_TIMEOUT.as_secs(),
            })?
            .map_err(|source| Error::Unreachable {
                url: url.to_owned(),
                source,
            })?;
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
        assert!(matches!(
            PowerDns::new("https://dns.example", "k"),
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
