//! Reading certificates: what `tls status` shows, and the checks a new one passes before it
//! is made live.

use backstage_core::Venue;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

use super::{PathBuf, Production, Serialize, fs};

/// One Venue's certificate, as `tls status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateStatus {
    /// The Venue.
    pub venue: String,
    /// Whether ACME issues it.
    pub acme: bool,
    /// `valid`, `expired`, `missing` (an ACME Venue not issued yet) or `unreadable`.
    pub state: &'static str,
    /// The names it covers (the Venue's server names when it is missing).
    pub names: Vec<String>,
    /// Its issuer's distinguished name.
    pub issuer: Option<String>,
    /// Its serial number (hex).
    pub serial: Option<String>,
    /// When it expires (RFC 3339).
    pub not_after: Option<String>,
    /// Whole days until then (negative once expired).
    pub days_left: Option<i64>,
    /// The file nginx reads.
    pub file: PathBuf,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// Every TLS Venue's certificate (`backstage tls status`).
pub fn tls_status(production: &Production) -> Vec<CertificateStatus> {
    let now = jiff::Timestamp::now().as_second();
    production
        .venues
        .iter()
        .filter_map(|(name, venue)| Some((name, venue, venue.tls.as_ref()?)))
        .map(|(name, venue, tls)| {
            let file = tls.cert.as_path().to_owned();
            let mut status = CertificateStatus {
                venue: name.to_string(),
                acme: tls.acme,
                state: "missing",
                names: venue.server_names.iter().map(ToString::to_string).collect(),
                issuer: None,
                serial: None,
                not_after: None,
                days_left: None,
                file,
                error: None,
            };
            match fs::read(&status.file) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tls.acme => {}
                Err(e) => {
                    status.state = "unreadable";
                    status.error = Some(e.to_string());
                }
                Ok(pem) => match Leaf::parse(&pem) {
                    Ok(leaf) => {
                        status.state = if leaf.not_after <= now {
                            "expired"
                        } else {
                            "valid"
                        };
                        status.days_left = Some(leaf.days_left(now));
                        status.not_after = Some(rfc3339(leaf.not_after));
                        status.names = leaf.names;
                        status.issuer = Some(leaf.issuer);
                        status.serial = Some(leaf.serial);
                    }
                    Err(e) => {
                        status.state = "unreadable";
                        status.error = Some(e);
                    }
                },
            }
            status
        })
        .collect()
}

pub(super) fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).map_or_else(|_| unix.to_string(), |t| t.to_string())
}

/// What a PEM chain's first (leaf) certificate says.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Leaf {
    /// Its DNS names (subject alternative names), sorted.
    pub names: Vec<String>,
    /// Its issuer's distinguished name.
    pub issuer: String,
    /// Its serial number, lower-case hex.
    pub serial: String,
    /// When it expires (Unix seconds).
    pub not_after: i64,
    /// Its public key (`SubjectPublicKeyInfo`, DER).
    pub spki: Vec<u8>,
}

impl Leaf {
    /// Reads the first certificate of a PEM file: an error, never a panic, for anything else.
    pub fn parse(pem: &[u8]) -> Result<Leaf, String> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem)
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        let (_, cert) = X509Certificate::from_der(&block.contents)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                if let GeneralName::DNSName(d) = n {
                    names.push((*d).to_owned());
                }
            }
        }
        // Sorted: CAs list the names in any order.
        names.sort();
        names.dedup();
        Ok(Leaf {
            names,
            issuer: cert.issuer().to_string(),
            serial: cert
                .raw_serial_as_string()
                .replace(':', "")
                .to_ascii_lowercase(),
            not_after: cert.validity().not_after.timestamp(),
            spki: cert.public_key().raw.to_vec(),
        })
    }

    pub(super) fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }

    /// Whether it covers exactly `names` (any order).
    pub(super) fn covers(&self, venue: &Venue) -> bool {
        let mut have: Vec<String> = self.names.iter().map(|n| n.to_ascii_lowercase()).collect();
        let mut want: Vec<String> = venue
            .server_names
            .iter()
            .map(|n| n.as_str().to_ascii_lowercase())
            .collect();
        have.sort();
        have.dedup();
        want.sort();
        want.dedup();
        have == want
    }
}

/// The new key must be the certificate's (a CA bug, or a mix-up, would otherwise reach nginx).
pub(super) fn check_key_matches(key_pem: &str, leaf: &Leaf) -> Result<(), String> {
    let key = rcgen_public_key(key_pem)?;
    if key == leaf.spki {
        Ok(())
    } else {
        Err("the certificate's public key is not the key it was ordered with".to_owned())
    }
}

/// The `SubjectPublicKeyInfo` (DER) of a PEM private key.
fn rcgen_public_key(key_pem: &str) -> Result<Vec<u8>, String> {
    use rcgen::PublicKeyData as _;
    let pair = rcgen::KeyPair::from_pem(key_pem).map_err(|e| format!("unusable key: {e}"))?;
    Ok(pair.subject_public_key_info())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `names`, with its key.
    fn self_signed(names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_leaf_says_its_names_expiry_and_key() {
        let (cert, key) = self_signed(&["jazz.localhost", "www.jazz.localhost"]);
        let leaf = Leaf::parse(cert.as_bytes()).unwrap();
        assert_eq!(leaf.names, ["jazz.localhost", "www.jazz.localhost"]);
        assert!(!leaf.serial.is_empty() && !leaf.serial.contains(':'));
        let now = jiff::Timestamp::now().as_second();
        assert!(leaf.days_left(now) > 365, "rcgen's default is years");
        check_key_matches(&key, &leaf).unwrap();
        let (_, other) = self_signed(&["jazz.localhost"]);
        assert!(check_key_matches(&other, &leaf).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            b"\xff\xfe",
        ] {
            assert!(Leaf::parse(bad).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = Leaf::parse(&bytes);
            let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
            pem.extend_from_slice(&bytes);
            pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
            let _ = Leaf::parse(&pem);
        }
    }
}
