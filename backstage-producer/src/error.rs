//! The Producer's error type.

/// What can go wrong planning or applying DNS. Messages never carry the API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The manifest has no `[producer]` section.
    #[error("the manifest has no `[producer]` section")]
    NoProducer,
    /// The API key's environment variable is unset or not UTF-8.
    #[error(
        "environment variable `{var}` (the PowerDNS API key named by `producer.api_key_env`) is not set"
    )]
    MissingKey {
        /// The variable's name.
        var: String,
    },
    /// The API key cannot be sent in an HTTP header.
    #[error("the PowerDNS API key has characters an HTTP header cannot carry")]
    BadKey,
    /// The API URL cannot be used.
    #[error("cannot use API URL `{url}`: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why not.
        why: &'static str,
    },
    /// The PowerDNS server could not be reached.
    #[error("cannot reach the PowerDNS API at `{url}`")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// The connection error.
        #[source]
        source: std::io::Error,
    },
    /// TLS towards an `https://` API failed: no trusted CA, or the server's certificate was
    /// refused (unknown issuer, wrong name, expired).
    #[error("TLS with the PowerDNS API at `{url}` failed: {message}")]
    Tls {
        /// The URL tried.
        url: String,
        /// rustls' reason.
        message: String,
    },
    /// The HTTP exchange failed after connecting.
    #[error("HTTP exchange with the PowerDNS API at `{url}` failed")]
    Http {
        /// The URL tried.
        url: String,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// The answer's body could not be read, or was larger than the limit.
    #[error("cannot read the answer of the PowerDNS API at `{url}`")]
    Body {
        /// The URL tried.
        url: String,
        /// hyper's error, or the length limit's.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server did not answer in time.
    #[error("the PowerDNS API at `{url}` did not answer within {seconds} s")]
    Timeout {
        /// The URL tried.
        url: String,
        /// The limit.
        seconds: u64,
    },
    /// The server refused the API key (HTTP 401 or 403).
    #[error(
        "the PowerDNS API at `{url}` refused the API key (HTTP {status}); check `producer.api_key_env`"
    )]
    Unauthorized {
        /// The URL tried.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The server answered with an error status.
    #[error("the PowerDNS API answered HTTP {status} to {method} `{url}`: {message}")]
    Status {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// PowerDNS' `error` field, or the start of the body.
        message: String,
    },
    /// The server's answer was not the JSON expected.
    #[error("unexpected answer from the PowerDNS API to `{url}`")]
    Decode {
        /// The URL.
        url: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A zone a Venue needs belongs to someone else.
    #[error(
        "zone `{zone}` belongs to account `{account}`, not to `{ours}`; Backstage changes no one else's zone"
    )]
    ForeignZone {
        /// The zone.
        zone: String,
        /// Its account.
        account: String,
        /// Our account.
        ours: String,
    },
    /// A zone a Venue needs is a secondary, which cannot be edited.
    #[error("zone `{zone}` is of kind `{kind}`; only Native and Master zones can be edited")]
    ZoneKind {
        /// The zone.
        zone: String,
        /// Its kind.
        kind: String,
    },
    /// A record a Venue needs exists already and was not made by this Production.
    #[error(
        "record `{name}` {rtype} in zone `{zone}` was not made by Production `{production}`; Backstage does not replace it (remove it, or take the name out of the manifest)"
    )]
    ForeignRecord {
        /// The record's name.
        name: String,
        /// Its type.
        rtype: String,
        /// Its zone.
        zone: String,
        /// This Production.
        production: String,
    },
}
