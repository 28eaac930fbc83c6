//! The `[venues.NAME]` sections (names, listen addresses, TLS from files or ACME, zone, body
//! size) and `[acme]`, the CA that issues ACME Venues' certificates.

// The manifest reader's parts share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

use crate::model::Eab;

const VENUE_KEYS: &[&str] = &["server_names", "listen", "tls", "zone", "max_body_size"];
const TLS_KEYS: &[&str] = &["cert", "key", "acme", "listen", "hsts"];
const ACME_KEYS: &[&str] = &["directory", "email", "ca_file", "eab"];
const EAB_KEYS: &[&str] = &["kid", "hmac_key"];

/// A Venue as read, with the spans its collision checks report at.
pub(super) struct RawVenue {
    pub(super) venue: Venue,
    pub(super) names: Vec<(Range<usize>, TomlPath)>,
    pub(super) listens: Vec<(Range<usize>, TomlPath)>,
}

pub(super) fn venue(
    ck: &mut Checker<'_>,
    mut t: Tbl<'_, '_>,
    mode: Mode,
    base: Option<&ConfPath>,
) -> Option<RawVenue> {
    let names = t
        .required(ck, "server_names")
        .and_then(|(v, p)| ck.one_or_many::<ServerName>(&p, v, "server name"));
    let listens = match t.get("listen") {
        None => {
            let default: ListenAddr = match mode {
                Mode::User => "127.0.0.1:8080",
                Mode::System => "80",
            }
            .parse()
            .expect("valid default");
            Some(vec![(default, t.span.clone(), t.path.key("listen"))])
        }
        Some((v, p)) => ck.one_or_many::<ListenAddr>(&p, v, "listen address"),
    };
    let tls = match t.get("tls") {
        None => Some(None),
        Some((v, p)) => ck.table(&p, v).and_then(|mut tt| {
            let acme = match tt.get("acme") {
                None => Some(false),
                Some((v, p)) => {
                    if let DeValue::Boolean(b) = v.get_ref() {
                        Some(*b)
                    } else {
                        ck.type_error(&p, v, "a boolean (`acme = true`)");
                        None
                    }
                }
            };
            let (cert, key) = if acme.is_none() {
                // Reported already; whether `cert` and `key` are needed is unknown.
                (None, None)
            } else if acme == Some(true) {
                // Issued into the state dir: `build` names the live pair once the layout is
                // known. Until then the manifest's directory stands in.
                for k in ["cert", "key"] {
                    if let Some((v, p)) = tt.get(k) {
                        ck.report_at(
                            &p,
                            v.span(),
                            format!("`{k}` and `acme = true` exclude each other"),
                            Some("ACME issues the certificate and key: remove `cert` and `key`, or `acme`".to_owned()),
                        );
                    }
                }
                (base.cloned(), base.cloned())
            } else {
                let cert = match (tt.required(ck, "cert"), base) {
                    (Some((v, p)), Some(b)) => path_in(ck, &p, v, b, false, "certificate path"),
                    _ => None,
                };
                let key = match (tt.required(ck, "key"), base) {
                    (Some((v, p)), Some(b)) => path_in(ck, &p, v, b, false, "key path"),
                    _ => None,
                };
                (cert, key)
            };
            let listen = match tt.get("listen") {
                None => {
                    let port = if mode == Mode::User { 8443 } else { 443 };
                    listens.as_ref().map(|ls| {
                        let mut v: Vec<ListenAddr> =
                            ls.iter().map(|(l, _, _)| l.with_port(port)).collect();
                        v.dedup();
                        v
                    })
                }
                Some((v, p)) => ck
                    .one_or_many::<ListenAddr>(&p, v, "listen address")
                    .map(|v| v.into_iter().map(|(l, _, _)| l).collect()),
            };
            let hsts = match tt.get("hsts") {
                None => Some(false),
                Some((v, p)) => {
                    if let DeValue::Boolean(b) = v.get_ref() {
                        Some(*b)
                    } else {
                        ck.type_error(&p, v, "a boolean (`hsts = true`)");
                        None
                    }
                }
            };
            tt.finish(ck, TLS_KEYS);
            Some(Some(Tls {
                cert: cert?,
                key: key?,
                listen: listen?,
                hsts: hsts?,
                acme: acme?,
                pending: false,
            }))
        }),
    };
    let zone = match t.get("zone") {
        None => Some(None),
        Some((v, p)) => {
            let z = ck.parsed::<ServerName>(&p, v, "DNS zone")?;
            if z.is_wildcard() {
                ck.report(&p, v.span(), "a DNS zone cannot be a wildcard");
                None
            } else {
                Some(Some(z))
            }
        }
    };
    let max_body_size = match t.get("max_body_size") {
        None => Some(BodySize::DEFAULT),
        Some((v, p)) => ck.parsed::<BodySize>(&p, v, "request body size"),
    };
    t.finish(ck, VENUE_KEYS);
    let names = names?;
    let listens = listens?;
    // The same name or listen address twice in one Venue is a slip worth reporting.
    let mut seen = BTreeSet::new();
    for (n, span, p) in &names {
        if !seen.insert(n.clone()) {
            ck.report(
                p,
                span.clone(),
                format!("server name `{n}` appears twice in this Venue"),
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (l, span, p) in &listens {
        if !seen.insert(*l) {
            ck.report(
                p,
                span.clone(),
                format!("listen address `{l}` appears twice in this Venue"),
            );
        }
    }
    if matches!(&tls, Some(Some(t)) if t.acme) {
        for (n, span, p) in &names {
            if n.is_wildcard() {
                ck.report_at(
                    p,
                    span.clone(),
                    format!("`{n}` is a wildcard: ACME issues it only by a DNS-01 challenge"),
                    Some("Backstage answers HTTP-01 challenges: list each name, or give `cert` and `key`".to_owned()),
                );
            }
        }
    }
    if let Some(Some(z)) = &zone {
        for (n, span, p) in &names {
            let host = n.as_str().trim_start_matches("*.");
            if host != z.as_str() && !host.ends_with(&format!(".{z}")) {
                ck.report(
                    p,
                    span.clone(),
                    format!("server name `{n}` is not inside the Venue's zone `{z}`"),
                );
            }
        }
    }
    Some(RawVenue {
        venue: Venue {
            server_names: names.iter().map(|(n, _, _)| n.clone()).collect(),
            listen: listens.iter().map(|(l, _, _)| *l).collect(),
            tls: tls?,
            zone: zone?,
            max_body_size: max_body_size?,
        },
        names: names.into_iter().map(|(_, s, p)| (s, p)).collect(),
        listens: listens.into_iter().map(|(_, s, p)| (s, p)).collect(),
    })
}

/// `[acme]`: the CA's directory, a contact, the trust for its own TLS, an account binding.
pub(super) fn acme_section(
    ck: &mut Checker<'_>,
    mut t: Tbl<'_, '_>,
    base: Option<&ConfPath>,
) -> Option<Acme> {
    let directory = match t.get("directory") {
        None => Some(Acme::default().directory),
        Some((v, p)) => ck
            .parsed::<ApiUrl>(&p, v, "ACME directory URL")
            .and_then(|u| {
                if u.as_str().starts_with("https://") {
                    Some(u)
                } else {
                    ck.report(
                        &p,
                        v.span(),
                        "an ACME directory is served over `https://` (RFC 8555)",
                    );
                    None
                }
            }),
    };
    let email = match t.get("email") {
        None => Some(None),
        Some((v, p)) => ck.string(&p, v).and_then(|s| {
            let ok = s.len() <= 254
                && s.split_once('@').is_some_and(|(user, host)| {
                    !user.is_empty()
                        && host.contains('.')
                        && !host.starts_with('.')
                        && !host.ends_with('.')
                })
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>,;:\\\"()[]".contains(c));
            if ok {
                Some(Some(s.to_owned()))
            } else {
                ck.report(
                    &p,
                    v.span(),
                    format!("invalid email address `{}`", shorten(s)),
                );
                None
            }
        }),
    };
    let ca_file = match (t.get("ca_file"), base) {
        (None, _) => Some(None),
        (Some((v, p)), Some(b)) => path_in(ck, &p, v, b, false, "CA file path").map(Some),
        (Some(_), None) => None,
    };
    let eab = match t.get("eab") {
        None => Some(None),
        Some((v, p)) => ck.table(&p, v).and_then(|mut e| {
            let kid = e.required(ck, "kid").and_then(|(v, p)| {
                let s = ck.string(&p, v)?;
                if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    ck.report(&p, v.span(), "invalid key id: empty, or has spaces or control characters");
                    None
                } else {
                    Some(s.to_owned())
                }
            });
            let hmac_key = e.required(ck, "hmac_key").and_then(|(v, p)| {
                let s = ck.string(&p, v)?;
                match s.char_indices().find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '=')) {
                    _ if s.is_empty() => {
                        ck.report(&p, v.span(), "the MAC key is empty");
                        None
                    }
                    // Never quote a secret back.
                    Some((i, _)) => {
                        ck.report(&p, v.span(), format!("the MAC key is base64url (`A-Z`, `a-z`, `0-9`, `-`, `_`): character {i} is not"));
                        None
                    }
                    None => Some(s.to_owned()),
                }
            });
            e.finish(ck, EAB_KEYS);
            Some(Some(Eab { kid: kid?, hmac_key: hmac_key? }))
        }),
    };
    t.finish(ck, ACME_KEYS);
    Some(Acme {
        directory: directory?,
        email: email?,
        ca_file: ca_file?,
        eab: eab?,
    })
}
