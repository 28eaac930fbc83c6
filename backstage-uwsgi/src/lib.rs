//! uWSGI for Backstage: the uwsgi wire protocol, vassals, the Emperor and the Stage Set.
//!
//! ## The wire protocol
//!
//!
//! - [`Packet`] decodes a packet without copying and [`encode_packet`] writes one;
//!   [`PacketCodec`] is the same for `tokio_util::codec` framed streams.
//! - [`Client`] sends HTTP requests over uwsgi (unix sockets or TCP) and reads the raw
//!   HTTP response; [`Client::ping`] health-checks a server.
//! - [`stats::read`] reads a stats socket into typed [`Stats`].
//! - [`control`] writes master FIFO commands and signals a master.
//!
//! ```
//! use backstage_uwsgi::{BufferSize, Modifier1, Modifier2, Packet, encode_packet};
//! use bytes::BytesMut;
//!
//! let mut wire = BytesMut::new();
//! let vars = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/")];
//! encode_packet(&mut wire, Modifier1::WSGI, Modifier2::DEFAULT, vars, BufferSize::UWSGI_DEFAULT)?;
//!
//! // Part of a packet is not an error: read more bytes and try again.
//! assert!(Packet::decode(&wire[..10], BufferSize::MAX)?.is_none());
//!
//! let (packet, used) = Packet::decode(&wire, BufferSize::MAX)?.expect("a whole packet");
//! assert_eq!(used, wire.len());
//! assert_eq!(packet.vars().get(b"PATH_INFO"), Some(&b"/"[..]));
//! # Ok::<(), backstage_uwsgi::Error>(())
//! ```
//!
//! Talking to a running uWSGI:
//!
//! ```no_run
//! # async fn run() -> Result<(), backstage_uwsgi::Error> {
//! use backstage_uwsgi::{Client, Request};
//!
//! let client = Client::new("/run/backstage/club-a.sock".parse()?);
//! client.ping().await?;
//! let response = client.send(Request::get("/health?full=1").header("Accept", "text/plain")).await?;
//! println!("{} {:?}", response.status(), response.bytes().await?);
//! # Ok(()) }
//! ```
//!
//! ## The Stage Manager
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
//! // A Sess on the default socket runs as a copy named after a hash of its vassal.
//! let name = vassal.path.file_name().unwrap().to_str().unwrap();
//! assert!(name.starts_with("backstage.jazzclub.club-a.") && name.ends_with(".ini"));
//! assert_eq!(name.len(), "backstage.jazzclub.club-a.12345678.ini".len());
//! ```
//!
//! [`SessState`]: stage_manager::SessState
#![deny(missing_docs)]

mod client;
pub mod codec;
pub mod control;
mod error;
mod http;
mod packet;
pub mod stats;
mod target;

pub use client::{Client, Pong, Request, Response, ResponseBody};
pub use codec::{Frame, PacketCodec};
pub use error::{Error, Field, InvalidPacket, InvalidResponse, Limit};
pub use http::{MAX_HEAD_LEN, ResponseHead};
pub use packet::{
    BufferSize, HEADER_LEN, Header, Modifier1, Modifier2, Packet, Vars, VarsIter, encode_packet,
};
pub use stats::Stats;
pub use target::Target;

pub mod emperor;
pub mod stage_manager;
pub mod stage_set;
pub mod system;
pub mod vassal;
pub mod work;
