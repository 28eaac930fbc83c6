//! Backstage's Producer: DNS for every Venue, through the PowerDNS HTTP API.
//!
//! [`plan`] reads what PowerDNS has and returns the [`Plan`] that makes each Venue's zone exist
//! and its server names' A/AAAA records match `[producer].address`; [`apply`] carries it out.
//! Re-planning after an apply gives an empty plan.
//!
//! Ownership: every rrset Backstage writes carries a comment whose `account` is
//! `backstage:<production>` (see [`Mark`]); zones it creates carry the same `account`. Records
//! without that mark are never changed or removed, and a zone whose `account` names someone
//! else is never touched nor has a zone created inside it: planning stops with an error before
//! anything changes.
//!
//! Zones: a Venue's `zone`, else for each server name the longest zone PowerDNS already has that
//! the name is inside, else the name's last two labels (`jazz.example.com` → `example.com`,
//! `jazz.localhost` → `jazz.localhost`). A zone Backstage creates is a Native zone with NS
//! `ns1.<zone>`.
//!
//! ```no_run
//! # async fn run(production: &backstage_core::Production) -> Result<(), backstage_producer::Error> {
//! let producer = production.producer.as_ref().ok_or(backstage_producer::Error::NoProducer)?;
//! let pdns = backstage_producer::client(producer)?;
//! let plan = backstage_producer::plan(production, &pdns).await?;
//! for change in &plan.changes {
//!     println!("{:?} {:?} {}", change.action, change.kind, change.name);
//! }
//! backstage_producer::apply(&plan, &pdns).await?;
//! assert!(backstage_producer::plan(production, &pdns).await?.is_empty());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod api;
mod error;
mod plan;

use std::collections::BTreeMap;

use backstage_core::{ApiKey, Producer, Production};

pub use api::PowerDns;
pub use error::Error;
pub use plan::{Action, Change, Kind, Mark, Plan};

/// A client for the Producer's PowerDNS server, with the API key read from the manifest or
/// from the environment variable it names.
pub fn client(producer: &Producer) -> Result<PowerDns, Error> {
    let key = match &producer.api_key {
        ApiKey::Inline(key) => key.clone(),
        ApiKey::Env(var) => std::env::var(var.as_str()).map_err(|_| Error::MissingKey {
            var: var.to_string(),
        })?,
    };
    PowerDns::new(producer.api_url.as_str(), &key)
}

/// What PowerDNS must change for the Production's Venues; reads only.
pub async fn plan(production: &Production, pdns: &PowerDns) -> Result<Plan, Error> {
    let producer = production.producer.as_ref().ok_or(Error::NoProducer)?;
    let mark = Mark::new(production.name.as_str());
    let existing = pdns.zones().await?;
    let wanted = plan::wanted(production, producer, &existing);
    let mut current = BTreeMap::new();
    for info in &existing {
        if plan::may_hold_ours(&mark, info) {
            let zone = pdns.zone(&info.id).await?;
            current.insert(info.name.to_lowercase(), zone.rrsets);
        }
    }
    plan::diff(mark, producer.ttl, &wanted, &existing, &current)
}

/// Carries out a plan: creates the missing zones, then changes each zone's rrsets in one
/// atomic `PATCH` per zone. On failure, what was done stays done and a new plan finishes it.
pub async fn apply(plan: &Plan, pdns: &PowerDns) -> Result<(), Error> {
    let mut ids = plan.zone_ids.clone();
    let account = plan.mark.account();
    for change in &plan.changes {
        if change.kind == Kind::Zone && change.action == Action::Create {
            let nameservers = [format!("ns1.{}", change.name)];
            let created = pdns
                .create_zone(&change.name, &nameservers, &account)
                .await?;
            ids.insert(change.name.clone(), created.id);
        }
    }
    for zone in plan.zones_touched() {
        let id = ids.get(zone).map_or(zone, String::as_str);
        pdns.patch_rrsets(id, &plan.patch_of(zone)).await?;
    }
    Ok(())
}
