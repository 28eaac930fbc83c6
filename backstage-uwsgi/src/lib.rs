//! The uwsgi wire protocol, spoken straight to a uWSGI server.
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
