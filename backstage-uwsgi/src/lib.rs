//! The uwsgi wire protocol, uWSGI vassal rendering and Emperor control.
//!
//! The Stage Manager half of this crate turns each Sess of a validated
//! [`Production`](backstage_core::Production) into a uWSGI vassal and drives it through the
//! Emperor: [`vassal`] renders the `.ini` (every value reads back literally), [`stage_manager`]
//! places, touches and removes it atomically and reports the Sess' [`SessState`], [`emperor`]
//! runs the user-mode Emperor, and [`stage_set`] builds a Stage's virtualenv.
//!
//! ```
//! use std::path::PathBuf;
//! use backstage_core::Manifest;
//! use backstage_uwsgi::vassal::render_vassal;
//!
//! let text = r#"
//! [production]
//! name = "jazzclub"
//! [acts.club]
//! root = "club"
//! wsgi = "club.wsgi:application"
//! env = { SALE = "100% off" }
//! [stages.local]
//! virtualenv = "venv"
//! [sess.club-a]
//! act = "club"
//! stage = "local"
//! "#;
//! let manifest = Manifest::from_source("backstage.toml".into(), PathBuf::from("/srv/jazz"), text.into());
//! let production = manifest.parse().expect("valid");
//! let vassal = render_vassal(&production, &"club-a".parse().unwrap()).unwrap();
//! assert!(vassal.content.contains("\nenv = SALE=100%% off\n"));
//! assert!(vassal.path.ends_with("vassals/backstage.jazzclub.club-a.ini"));
//! ```
//!
//! [`SessState`]: stage_manager::SessState
#![deny(missing_docs)]

pub mod emperor;
pub mod stage_error;
pub mod stage_manager;
pub mod stage_set;
pub mod vassal;
