//! The DNS plan: what the Venues need, against what PowerDNS has; pure, no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use backstage_core::{Producer, Production};
use serde::Serialize;

use crate::Error;
use crate::api::{Comment, Record, RrSet, RrSetChange, ZoneInfo};

/// The record types the Producer manages.
const MANAGED_TYPES: [&str; 2] = ["A", "AAAA"];

/// Backstage's ownership mark on the rrsets and zones one Production creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    production: String,
}

impl Mark {
    /// The mark of Production `production`.
    pub fn new(production: &str) -> Self {
        Self {
            production: production.to_owned(),
        }
    }

    /// The `account` written on zones and rrset comments: `backstage:<production>`.
    pub fn account(&self) -> String {
        format!("backstage:{}", self.production)
    }

    /// The comment on a Venue's rrsets.
    pub fn comment(&self, venue: &str) -> Comment {
        Comment {
            content: format!(
                "managed by Backstage Production `{}` for Venue `{venue}`",
                self.production
            ),
            account: self.account(),
        }
    }

    /// Whether an rrset carries this Production's mark.
    pub fn owns(&self, rrset: &RrSet) -> bool {
        let account = self.account();
        rrset.comments.iter().any(|c| c.account == account)
    }
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Make something that is not there.
    Create,
    /// Change something Backstage made.
    Update,
    /// Remove something Backstage made.
    Delete,
}

/// What a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A zone.
    Zone,
    /// An rrset: all records of one name and type.
    Record,
}

/// One change to PowerDNS. Serialises as `{"action", "kind", "name", "zone", …}`: for records
/// also `type`, `ttl` and `content` (the records wanted; absent for deletes), `previous` (the
/// records there now; absent for creates) and `venue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Change {
    /// Create, update or delete.
    pub action: Action,
    /// Zone or record.
    pub kind: Kind,
    /// The zone's or record's name, with the trailing dot.
    pub name: String,
    /// The zone it is in (for a zone: itself).
    pub zone: String,
    /// The record type (`A` or `AAAA`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub rtype: Option<&'static str>,
    /// TTL of the records wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// The records wanted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<String>,
    /// The records there now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<String>,
    /// The Venue the records serve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
}

/// Every change that brings PowerDNS to what the manifest says; empty when it already does.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// Zones to create first, then record changes, in a stable order.
    pub changes: Vec<Change>,
    /// Ids of the existing zones, by name.
    #[serde(skip)]
    pub(crate) zone_ids: BTreeMap<String, String>,
    /// The mark written on what the plan creates.
    #[serde(skip)]
    pub(crate) mark: Mark,
}

impl Plan {
    /// Whether DNS already matches.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The rrset changes of zone `zone`, as a `PATCH` sends them.
    pub(crate) fn patch_of(&self, zone: &str) -> Vec<RrSetChange> {
        self.changes
            .iter()
            .filter(|c| c.kind == Kind::Record && c.zone == zone)
            .map(|c| {
                let rtype = c.rtype.expect("record changes have a type").to_owned();
                match c.action {
                    Action::Delete => RrSetChange {
                        name: c.name.clone(),
                        rtype,
                        changetype: "DELETE",
                        ttl: None,
                        records: Vec::new(),
                        comments: Vec::new(),
                    },
                    Action::Create | Action::Update => RrSetChange {
                        name: c.name.clone(),
                        rtype,
                        changetype: "REPLACE",
                        ttl: c.ttl,
                        records: c
                            .content
                            .iter()
                            .map(|content| Record {
                                content: content.clone(),
                                disabled: false,
                            })
                            .collect(),
                        comments: vec![self.mark.comment(c.venue.as_deref().unwrap_or(""))],
                    },
                }
            })
            .collect()
    }

    /// The zones with record changes, in order.
    pub(crate) fn zones_touched(&self) -> BTreeSet<&str> {
        self.changes
            .iter()
            .filter(|c| c.kind == Kind::Record)
            .map(|c| c.zone.as_str())
            .collect()
    }
}

/// One rrset a Venue needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub zone: String,
    pub name: String,
    pub rtype: &'static str,
    pub content: Vec<String>,
    pub venue: String,
}

/// `name` with the trailing dot DNS and PowerDNS write.
fn fqdn(name: &str) -> String {
    format!("{name}.")
}

/// The zone a name goes into when its Venue names none: the longest known zone it is inside,
/// else its last two labels (`jazz.example.com` → `example.com.`, `jazz.localhost` →
/// `jazz.localhost.`; a one-label name is its own zone).
pub(crate) fn derive_zone(host: &str, known: &BTreeSet<String>) -> String {
    let name = fqdn(host);
    // Suffixes longest first: `a.b.c.` then `b.c.` then `c.`.
    let mut suffix = name.as_str();
    loop {
        if known.contains(suffix) {
            return suffix.to_owned();
        }
        match suffix.split_once('.') {
            Some((_, rest)) if !rest.is_empty() => suffix = rest,
            _ => break,
        }
    }
    let labels: Vec<&str> = host.split('.').collect();
    let start = labels.len().saturating_sub(2);
    fqdn(&labels[start..].join("."))
}

/// Every rrset the Production's Venues need, given the zones PowerDNS has.
pub(crate) fn wanted(
    production: &Production,
    producer: &Producer,
    existing: &[ZoneInfo],
) -> Vec<Wanted> {
    let mut known: BTreeSet<String> = existing.iter().map(|z| z.name.to_lowercase()).collect();
    known.extend(
        production
            .venues
            .values()
            .filter_map(|v| v.zone.as_ref().map(|z| fqdn(z.as_str()))),
    );
    let v4: Vec<String> = addresses(&producer.addresses, IpAddr::is_ipv4);
    let v6: Vec<String> = addresses(&producer.addresses, IpAddr::is_ipv6);
    let mut out: Vec<Wanted> = Vec::new();
    let mut index: BTreeMap<(String, String, &'static str), usize> = BTreeMap::new();
    for (slug, venue) in &production.venues {
        for server_name in &venue.server_names {
            let host = server_name.as_str().trim_start_matches("*.");
            let zone = match &venue.zone {
                Some(z) => fqdn(z.as_str()),
                None => derive_zone(host, &known),
            };
            for (rtype, content) in [("A", &v4), ("AAAA", &v6)] {
                let name = fqdn(server_name.as_str());
                // Venues on different listen addresses may share a name: one rrset names both.
                if content.is_empty() {
                    continue;
                }
                let key = (zone.clone(), name.clone(), rtype);
                if let Some(&i) = index.get(&key) {
                    out[i].venue = format!("{}, {slug}", out[i].venue);
                } else {
                    index.insert(key, out.len());
                    out.push(Wanted {
                        zone: zone.clone(),
                        name,
                        rtype,
                        content: content.clone(),
                        venue: slug.to_string(),
                    });
                }
            }
        }
    }
    out
}

fn addresses(all: &[IpAddr], keep: fn(&IpAddr) -> bool) -> Vec<String> {
    let mut v: Vec<String> = all
        .iter()
        .filter(|a| keep(a))
        .map(ToString::to_string)
        .collect();
    v.sort();
    v
}

/// The plan from what is wanted and what PowerDNS has: `existing` zones, and the rrsets of
/// each zone Backstage may touch (`current`, by zone name). Stops at the first zone or record
/// that belongs to someone else, before anything is changed.
pub(crate) fn diff(
    mark: Mark,
    ttl: u32,
    wanted: &[Wanted],
    existing: &[ZoneInfo],
    current: &BTreeMap<String, Vec<RrSet>>,
) -> Result<Plan, Error> {
    let by_name: BTreeMap<String, &ZoneInfo> = existing
        .iter()
        .map(|z| (z.name.to_lowercase(), z))
        .collect();
    let mut changes = Vec::new();
    let needed: BTreeSet<&str> = wanted.iter().map(|w| w.zone.as_str()).collect();
    for zone in &needed {
        match by_name.get(*zone) {
            None => {
                // A new zone inside someone else's would take its names over on this server.
                let parent = zone
                    .match_indices('.')
                    .map(|(i, _)| &zone[i + 1..])
                    .find_map(|suffix| by_name.get(suffix));
                if let Some(parent) = parent {
                    check_zone(&mark, parent)?;
                }
                changes.push(Change {
                    action: Action::Create,
                    kind: Kind::Zone,
                    name: (*zone).to_owned(),
                    zone: (*zone).to_owned(),
                    rtype: None,
                    ttl: None,
                    content: Vec::new(),
                    previous: Vec::new(),
                    venue: None,
                });
            }
            Some(info) => check_zone(&mark, info)?,
        }
    }
    // Every rrset there now, by zone, lowercase name and type.
    let lookup: BTreeMap<(&str, String, &str), &RrSet> = current
        .iter()
        .flat_map(|(zone, rrsets)| {
            rrsets
                .iter()
                .map(move |r| ((zone.as_str(), r.name.to_lowercase(), r.rtype.as_str()), r))
        })
        .collect();
    let mut wanted_keys = BTreeSet::new();
    for w in wanted {
        wanted_keys.insert((w.zone.as_str(), w.name.as_str(), w.rtype));
        let same_name = |rtype: &str| {
            lookup
                .get(&(w.zone.as_str(), w.name.clone(), rtype))
                .copied()
        };
        // A CNAME someone else put at the name would make PowerDNS refuse the whole PATCH.
        if let Some(cname) = same_name("CNAME") {
            return Err(foreign(&mark, cname, &w.zone));
        }
        let wanted_comment = mark.comment(&w.venue);
        let base = Change {
            action: Action::Create,
            kind: Kind::Record,
            name: w.name.clone(),
            zone: w.zone.clone(),
            rtype: Some(w.rtype),
            ttl: Some(ttl),
            content: w.content.clone(),
            previous: Vec::new(),
            venue: Some(w.venue.clone()),
        };
        match same_name(w.rtype) {
            None => changes.push(base),
            Some(r) if !mark.owns(r) => return Err(foreign(&mark, r, &w.zone)),
            Some(r) => {
                let previous = contents(r);
                let account = mark.account();
                let comments_match = r
                    .comments
                    .iter()
                    .filter(|c| c.account == account)
                    .all(|c| *c == wanted_comment);
                let all_enabled = r.records.iter().all(|x| !x.disabled);
                if previous != w.content || r.ttl != ttl || !comments_match || !all_enabled {
                    changes.push(Change {
                        action: Action::Update,
                        previous,
                        ..base
                    });
                }
            }
        }
    }
    for (zone, rrsets) in current {
        for r in rrsets {
            let managed = MANAGED_TYPES.contains(&r.rtype.as_str());
            let name = r.name.to_lowercase();
            if managed
                && mark.owns(r)
                && !wanted_keys.contains(&(zone.as_str(), name.as_str(), r.rtype.as_str()))
            {
                changes.push(Change {
                    action: Action::Delete,
                    kind: Kind::Record,
                    name,
                    zone: zone.clone(),
                    rtype: MANAGED_TYPES.into_iter().find(|t| *t == r.rtype),
                    ttl: None,
                    content: Vec::new(),
                    previous: contents(r),
                    venue: None,
                });
            }
        }
    }
    changes.sort_by(|a, b| {
        (a.kind, &a.zone, &a.name, a.rtype).cmp(&(b.kind, &b.zone, &b.name, b.rtype))
    });
    Ok(Plan {
        changes,
        zone_ids: existing
            .iter()
            .map(|z| (z.name.to_lowercase(), z.id.clone()))
            .collect(),
        mark,
    })
}

/// Whether Backstage may change records in an existing zone: one made by this Production or
/// one with no owner, of an editable kind.
pub(crate) fn check_zone(mark: &Mark, info: &ZoneInfo) -> Result<(), Error> {
    let account = mark.account();
    if !info.account.is_empty() && info.account != account {
        return Err(Error::ForeignZone {
            zone: info.name.clone(),
            account: info.account.clone(),
            ours: account,
        });
    }
    if !matches!(info.kind.as_str(), "Native" | "Master" | "Primary" | "") {
        return Err(Error::ZoneKind {
            zone: info.name.clone(),
            kind: info.kind.clone(),
        });
    }
    Ok(())
}

/// Whether Backstage looks into a zone for records to remove.
pub(crate) fn may_hold_ours(mark: &Mark, info: &ZoneInfo) -> bool {
    check_zone(mark, info).is_ok()
}

fn foreign(mark: &Mark, r: &RrSet, zone: &str) -> Error {
    Error::ForeignRecord {
        name: r.name.clone(),
        rtype: r.rtype.clone(),
        zone: zone.to_owned(),
        production: mark.production.clone(),
    }
}

fn contents(r: &RrSet) -> Vec<String> {
    let mut v: Vec<String> = r.records.iter().map(|x| x.content.clone()).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str, account: &str) -> ZoneInfo {
        serde_json::from_value(serde_json::json!({
            "id": name, "name": name, "kind": "Native", "account": account
        }))
        .unwrap()
    }

    fn rrset(name: &str, rtype: &str, content: &[&str], comments: Vec<Comment>) -> RrSet {
        RrSet {
            name: name.into(),
            rtype: rtype.into(),
            ttl: 300,
            records: content
                .iter()
                .map(|c| Record {
                    content: (*c).into(),
                    disabled: false,
                })
                .collect(),
            comments,
        }
    }

    fn want(zone: &str, name: &str, rtype: &'static str, content: &[&str]) -> Wanted {
        Wanted {
            zone: zone.into(),
            name: name.into(),
            rtype,
            content: content.iter().map(|c| (*c).into()).collect(),
            venue: "jazz".into(),
        }
    }

    #[test]
    fn zone_derivation() {
        let known: BTreeSet<String> = ["example.com.", "jazz.example.com.", "ample.com."]
            .map(String::from)
            .into();
        assert_eq!(
            derive_zone("a.jazz.example.com", &known),
            "jazz.example.com."
        );
        assert_eq!(derive_zone("jazz.example.com", &known), "jazz.example.com.");
        assert_eq!(derive_zone("www.example.com", &known), "example.com.");
        // Suffix match is by whole labels: `example.com` is not inside `ample.com`.
        assert_eq!(derive_zone("x.example.org", &known), "example.org.");
        assert_eq!(derive_zone("a.b.c.example.net", &known), "example.net.");
        assert_eq!(derive_zone("jazz.localhost", &known), "jazz.localhost.");
        assert_eq!(derive_zone("localhost", &known), "localhost.");
    }

    #[test]
    fn plan_creates_updates_deletes_and_keeps_foreign_records() {
        let mark = Mark::new("jazzclub");
        let ours = vec![mark.comment("jazz")];
        let existing = vec![zone("example.com.", "")];
        let current = BTreeMap::from([(
            "example.com.".to_owned(),
            vec![
                rrset("jazz.example.com.", "A", &["192.0.2.9"], ours.clone()),
                rrset("old.example.com.", "A", &["192.0.2.1"], ours.clone()),
                rrset("other.example.com.", "A", &["192.0.2.7"], vec![]),
                rrset("example.com.", "NS", &["ns1.example.com."], vec![]),
            ],
        )]);
        let wanted = vec![
            want("example.com.", "jazz.example.com.", "A", &["192.0.2.1"]),
            want(
                "example.com.",
                "*.jazz.example.com.",
                "AAAA",
                &["2001:db8::1"],
            ),
            want("jazz.test.", "jazz.test.", "A", &["192.0.2.1"]),
        ];
        let plan = diff(mark, 300, &wanted, &existing, &current).unwrap();
        insta::assert_json_snapshot!(plan);
        // What the PATCH of `example.com.` sends: only this Production's rrsets, marked.
        insta::assert_json_snapshot!(plan.patch_of("example.com."));
        assert_eq!(plan.patch_of("jazz.test.").len(), 1);
    }

    #[test]
    fn venues_sharing_a_name_share_its_rrset() {
        let text = r#"
[production]
name = "jazzclub"
[venues.jazz]
server_names = ["jazz.example.com", "*.jazz.example.com"]
listen = ["127.0.0.1:8080"]
[venues.late]
server_names = ["jazz.example.com"]
listen = ["127.0.0.1:8081"]
zone = "jazz.example.com"
[venues.blues]
server_names = ["blues.example.com"]
listen = ["127.0.0.1:8081"]
[producer]
api_url = "http://127.0.0.1:8081"
api_key_env = "PDNS_KEY"
address = ["2001:db8::1", "192.0.2.1", "192.0.2.2"]
"#;
        let manifest =
            backstage_core::Manifest::from_source("b.toml".into(), "/srv".into(), text.into());
        let production = manifest.parse().unwrap();
        let producer = production.producer.as_ref().unwrap();
        let got: Vec<String> = wanted(&production, producer, &[zone("com.", "")])
            .iter()
            .map(|w| {
                format!(
                    "{} {} {} {:?} [{}]",
                    w.zone, w.name, w.rtype, w.content, w.venue
                )
            })
            .collect();
        insta::assert_debug_snapshot!(got);
    }

    #[test]
    fn plan_is_empty_when_dns_matches() {
        let mark = Mark::new("jazzclub");
        let existing = vec![zone("example.com.", "backstage:jazzclub")];
        let current = BTreeMap::from([(
            "example.com.".to_owned(),
            vec![rrset(
                "jazz.example.com.",
                "A",
                &["192.0.2.1"],
                vec![mark.comment("jazz")],
            )],
        )]);
        let wanted = vec![want(
            "example.com.",
            "jazz.example.com.",
            "A",
            &["192.0.2.1"],
        )];
        let plan = diff(mark, 300, &wanted, &existing, &current).unwrap();
        assert!(plan.is_empty(), "{:?}", plan.changes);
    }

    #[test]
    fn foreign_records_and_zones_are_refused() {
        let mark = Mark::new("jazzclub");
        let existing = vec![zone("example.com.", "")];
        let current = BTreeMap::from([(
            "example.com.".to_owned(),
            vec![rrset(
                "jazz.example.com.",
                "A",
                &["192.0.2.1"],
                vec![Mark::new("other").comment("jazz")],
            )],
        )]);
        let wanted = vec![want(
            "example.com.",
            "jazz.example.com.",
            "A",
            &["192.0.2.1"],
        )];
        let err = diff(mark.clone(), 300, &wanted, &existing, &current).unwrap_err();
        insta::assert_snapshot!(err.to_string(), @"record `jazz.example.com.` A in zone `example.com.` was not made by Production `jazzclub`; Backstage does not replace it (remove it, or take the name out of the manifest)");

        let existing = vec![zone("example.com.", "dns-team")];
        let err = diff(mark.clone(), 300, &wanted, &existing, &BTreeMap::new()).unwrap_err();
        insta::assert_snapshot!(err.to_string(), @"zone `example.com.` belongs to account `dns-team`, not to `backstage:jazzclub`; Backstage changes no one else's zone");

        // Nor is a zone created inside someone else's: it would take their names over.
        let inside = vec![want(
            "jazz.example.com.",
            "jazz.example.com.",
            "A",
            &["192.0.2.1"],
        )];
        let err = diff(mark.clone(), 300, &inside, &existing, &BTreeMap::new()).unwrap_err();
        assert!(
            matches!(err, Error::ForeignZone { ref zone, .. } if zone == "example.com."),
            "{err}"
        );
        // Inside a shared zone (no account) it may.
        let shared = vec![zone("example.com.", "")];
        let plan = diff(mark, 300, &inside, &shared, &BTreeMap::new()).unwrap();
        assert_eq!(plan.changes[0].kind, Kind::Zone);
    }
}
