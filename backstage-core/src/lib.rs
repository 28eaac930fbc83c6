//! Backstage's domain: the Production and everything in it.
//!
//! A **Production** is one `backstage.toml`: its **Acts** (runnable Django projects), **Stages**
//! (virtualenvs with uWSGI), **Sess** (an Act playing on a Stage: one uWSGI vassal), **Venues**
//! (DNS namespaces served by nginx), **Gigs** (an Act booked at a Venue) and the **Producer**
//! (DNS through PowerDNS). This crate reads the manifest, validates all of it at once, and hands
//! out a [`Production`] made only of validated values; it knows nothing of uWSGI's or nginx's
//! file formats, which the `backstage-uwsgi` and `backstage-nginx` crates render from it.
//!
//! ```
//! use std::path::PathBuf;
//! use backstage_core::Manifest;
//!
//! let text = r#"
//! [production]
//! name = "jazzclub"
//!
//! [venues.jazz]
//! server_names = ["jazz.localhost", "Jazz..localhost"]
//! "#;
//! let manifest = Manifest::from_source("backstage.toml".into(), PathBuf::from("/srv/jazz"), text.into());
//! let problems = manifest.check();
//! assert_eq!(problems.len(), 1);
//! assert_eq!(problems[0].path, "venues.jazz.server_names[1]");
//! assert_eq!((problems[0].line, problems[0].column), (6, 35));
//! ```
#![deny(missing_docs)]

mod desired;
mod error;
pub mod files;
pub mod journal;
mod manifest;
mod model;
pub mod plan;
mod problem;
pub mod secrets;
mod source;
mod suggest;
pub mod values;
pub mod work;

pub use desired::{DesiredFile, FileKind};
pub use error::{Error, error_chain};
pub use manifest::{MANIFEST_NAME, Manifest};
pub use model::{
    Acme, Act, ApiKey, DEFAULT_HARAKIRI, DEFAULT_KEEP_RELEASES, Eab, Escape, Gig, Health,
    LETS_ENCRYPT_DIRECTORY, Layout, Media, Mode, Producer, Production, Sess, SessInstance,
    SessSocket, Stage, Tls, Tuning, UNIX_SOCKET_PATH_MAX, Venue,
};
pub use problem::{Problem, line_column};
pub use source::MANIFEST_MAX_BYTES;
pub use suggest::suggest;
