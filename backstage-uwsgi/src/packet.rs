//! The uwsgi packet: a 4-byte header and a vars block, decoded without copying.
//!
//! ```text
//! +-----------+-------------------+-----------+----------------------------------------+
//! | modifier1 | datasize (u16 LE) | modifier2 | vars: (u16 LE len, key, u16 LE len, value)* |
//! +-----------+-------------------+-----------+----------------------------------------+
//! ```
use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Field, InvalidPacket, Limit};

/// Length of the packet header.
pub const HEADER_LEN: usize = 4;

/// The first header byte: what kind of request the packet carries (an open set).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Modifier1(u8);

impl Modifier1 {
    /// A WSGI (Python) request; the HTTP body follows the packet.
    pub const WSGI: Modifier1 = Modifier1(0);
    /// A PSGI (Perl) request.
    pub const PSGI: Modifier1 = Modifier1(5);
    /// A Lua WSAPI request.
    pub const LUA: Modifier1 = Modifier1(6);
    /// A Rack (Ruby) request.
    pub const RACK: Modifier1 = Modifier1(7);
    /// A JWSGI/Ring (JVM) request.
    pub const JWSGI: Modifier1 = Modifier1(8);
    /// A CGI request.
    pub const CGI: Modifier1 = Modifier1(9);
    /// A PHP request.
    pub const PHP: Modifier1 = Modifier1(14);
    /// A raw HTTP response (`H`): replies start with `HTTP/`, read as a uwsgi header.
    pub const HTTP_RESPONSE: Modifier1 = Modifier1(72);
    /// Ping; a live server answers with the same modifier1 and modifier2 `1`.
    pub const PING: Modifier1 = Modifier1(100);
    /// Echo: the server sends the packet back.
    pub const ECHO: Modifier1 = Modifier1(101);
    /// A uWSGI signal.
    pub const SIGNAL: Modifier1 = Modifier1(110);
    /// A cache request.
    pub const CACHE: Modifier1 = Modifier1(111);
    /// An RPC call.
    pub const RPC: Modifier1 = Modifier1(173);

    /// Any modifier1, named or not.
    pub const fn new(code: u8) -> Self {
        Self(code)
    }

    /// The wire byte.
    pub const fn get(self) -> u8 {
        self.0
    }

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::WSGI => "WSGI",
            Self::PSGI => "PSGI",
            Self::LUA => "LUA",
            Self::RACK => "RACK",
            Self::JWSGI => "JWSGI",
            Self::CGI => "CGI",
            Self::PHP => "PHP",
            Self::HTTP_RESPONSE => "HTTP_RESPONSE",
            Self::PING => "PING",
            Self::ECHO => "ECHO",
            Self::SIGNAL => "SIGNAL",
            Self::CACHE => "CACHE",
            Self::RPC => "RPC",
            _ => return None,
        })
    }
}

impl fmt::Debug for Modifier1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Modifier1({})", self.0),
        }
    }
}

impl fmt::Display for Modifier1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The last header byte: a sub-type whose meaning depends on modifier1 (an open set).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Modifier2(u8);

impl Modifier2 {
    /// The default for requests.
    pub const DEFAULT: Modifier2 = Modifier2(0);
    /// A pong: the reply to a [`Modifier1::PING`].
    pub const PONG: Modifier2 = Modifier2(1);

    /// Any modifier2.
    pub const fn new(code: u8) -> Self {
        Self(code)
    }

    /// The wire byte.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Debug for Modifier2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Modifier2({})", self.0)
    }
}

impl fmt::Display for Modifier2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The 4-byte packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// What the packet carries.
    pub modifier1: Modifier1,
    /// Size of the payload (the vars block) that follows the header.
    pub datasize: u16,
    /// Sub-type.
    pub modifier2: Modifier2,
}

impl Header {
    /// Reads a header from the first 4 bytes of `buf`; `None` if `buf` is shorter.
    pub fn decode(buf: &[u8]) -> Option<Header> {
        match *buf {
            [m1, lo, hi, m2, ..] => Some(Header {
                modifier1: Modifier1(m1),
                datasize: u16::from_le_bytes([lo, hi]),
                modifier2: Modifier2(m2),
            }),
            _ => None,
        }
    }

    /// The header's 4 wire bytes.
    pub fn encode(self) -> [u8; HEADER_LEN] {
        let [lo, hi] = self.datasize.to_le_bytes();
        [self.modifier1.0, lo, hi, self.modifier2.0]
    }
}

/// The largest vars block a peer accepts: uWSGI's `buffer-size` option.
///
/// Sizes are 16-bit, so every value is valid; uWSGI's default is [`BufferSize::UWSGI_DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferSize(u16);

impl BufferSize {
    /// The protocol's limit, 65535 bytes.
    pub const MAX: BufferSize = BufferSize(u16::MAX);
    /// uWSGI's default `buffer-size`, 4096 bytes.
    pub const UWSGI_DEFAULT: BufferSize = BufferSize(4096);

    /// A limit of `bytes`.
    pub const fn new(bytes: u16) -> Self {
        Self(bytes)
    }

    /// The limit in bytes.
    pub const fn get(self) -> u16 {
        self.0
    }

    fn limit(self) -> Limit {
        if self == Self::MAX {
            Limit::Protocol
        } else {
            Limit::BufferSize
        }
    }
}

impl Default for BufferSize {
    /// The protocol's limit: let the server enforce its own.
    fn default() -> Self {
        Self::MAX
    }
}

/// A validated vars block, borrowed from the bytes it was decoded from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Vars<'a> {
    block: &'a [u8],
    count: usize,
}

impl<'a> Vars<'a> {
    /// Validates a vars block; offsets in errors count from the start of `block`.
    pub fn parse(block: &'a [u8]) -> Result<Vars<'a>, Error> {
        let count =
            validate(block).map_err(|(offset, reason)| Error::InvalidPacket { offset, reason })?;
        Ok(Vars { block, count })
    }

    /// Wraps a block already validated (by the codec).
    pub(crate) fn trusted(block: &'a [u8], count: usize) -> Vars<'a> {
        Vars { block, count }
    }

    /// The raw block.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.block
    }

    /// The number of vars.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the block holds no var.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The vars in wire order, as `(key, value)`.
    pub fn iter(&self) -> VarsIter<'a> {
        VarsIter { rest: self.block }
    }

    /// The value of the first var named `key`.
    pub fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl fmt::Debug for Vars<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

impl<'a> IntoIterator for Vars<'a> {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = VarsIter<'a>;
    fn into_iter(self) -> VarsIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Vars<'a> {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = VarsIter<'a>;
    fn into_iter(self) -> VarsIter<'a> {
        self.iter()
    }
}

/// Iterator over the `(key, value)` pairs of a [`Vars`] block.
#[derive(Debug, Clone)]
pub struct VarsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for VarsIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, rest) = split_sized(self.rest)?;
        let (value, rest) = split_sized(rest)?;
        self.rest = rest;
        Some((key, value))
    }
}

/// Splits a u16-LE-sized field off the front of `buf`.
#[inline]
fn split_sized(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&[lo, hi], rest) = buf.split_first_chunk::<2>()?;
    let size = usize::from(u16::from_le_bytes([lo, hi]));
    if size > rest.len() {
        return None;
    }
    Some(rest.split_at(size))
}

/// Checks every size in a vars block; returns the var count or `(offset, reason)`.
fn validate(block: &[u8]) -> Result<usize, (usize, InvalidPacket)> {
    let mut pos = 0;
    let mut count = 0;
    while pos < block.len() {
        for is_key in [true, false] {
            let Some(&[lo, hi]) = block.get(pos..pos + 2).and_then(|s| s.first_chunk::<2>()) else {
                return Err((pos, InvalidPacket::TruncatedSize));
            };
            let size = u16::from_le_bytes([lo, hi]);
            if is_key && size == 0 {
                return Err((pos, InvalidPacket::EmptyKey));
            }
            let left = block.len() - pos - 2;
            if usize::from(size) > left {
                return Err((pos, InvalidPacket::Overrun { size, left }));
            }
            pos += 2 + usize::from(size);
        }
        count += 1;
    }
    Ok(count)
}

/// A decoded packet: its header and vars block, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    header: Header,
    vars: Vars<'a>,
}

impl<'a> Packet<'a> {
    /// Decodes one packet from the front of `buf`.
    ///
    /// `Ok(None)` means `buf` holds only part of a packet: read more and call again.
    /// `Ok(Some((packet, used)))` gives the packet and how many bytes of `buf` it took
    /// (any HTTP body follows them). `Err` means the bytes are not a uwsgi packet; offsets
    /// count from the start of `buf`. The datasize is checked against `buffer_size` before
    /// waiting for the block, as uWSGI does.
    pub fn decode(buf: &'a [u8], buffer_size: BufferSize) -> Result<Option<(Self, usize)>, Error> {
        let Some(header) = Header::decode(buf) else {
            return Ok(None);
        };
        check_datasize(header, buffer_size)?;
        let end = HEADER_LEN + usize::from(header.datasize);
        let Some(block) = buf.get(HEADER_LEN..end) else {
            return Ok(None);
        };
        let count = validate(block).map_err(|(offset, reason)| Error::InvalidPacket {
            offset: offset + HEADER_LEN,
            reason,
        })?;
        Ok(Some((
            Packet {
                header,
                vars: Vars::trusted(block, count),
            },
            end,
        )))
    }

    /// The header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The vars block.
    pub fn vars(&self) -> Vars<'a> {
        self.vars
    }
}

pub(crate) fn check_datasize(header: Header, buffer_size: BufferSize) -> Result<(), Error> {
    if header.datasize > buffer_size.0 {
        return Err(Error::InvalidPacket {
            offset: 1,
            reason: InvalidPacket::TooLarge {
                datasize: header.datasize,
                buffer_size: buffer_size.0,
            },
        });
    }
    Ok(())
}

pub(crate) fn validate_block(block: &[u8], base: usize) -> Result<usize, Error> {
    validate(block).map_err(|(offset, reason)| Error::InvalidPacket {
        offset: offset + base,
        reason,
    })
}

/// Appends one packet (header and vars block) to `dst`.
///
/// Every key must be non-empty; keys, values and the whole block must fit the protocol's
/// 16-bit sizes, and the block must fit `buffer_size`. On error `dst` is left as it was.
pub fn encode_packet<I, K, V>(
    dst: &mut BytesMut,
    modifier1: Modifier1,
    modifier2: Modifier2,
    vars: I,
    buffer_size: BufferSize,
) -> Result<(), Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let start = dst.len();
    dst.put_slice(&[modifier1.0, 0, 0, modifier2.0]);
    let limit = usize::from(buffer_size.0);
    let mut size = 0usize;
    let mut failed = None;
    for (index, (key, value)) in vars.into_iter().enumerate() {
        let (key, value) = (key.as_ref(), value.as_ref());
        let max = usize::from(u16::MAX);
        if key.is_empty() || key.len() > max || value.len() > max {
            dst.truncate(start);
            return Err(field_error(index, key.len(), value.len()));
        }
        size += 4 + key.len() + value.len();
        if size > limit {
            // Keep counting (but stop writing) to report the whole block's size.
            failed = Some(buffer_size.limit());
            continue;
        }
        put_sized(dst, key);
        put_sized(dst, value);
    }
    if let Some(limit_kind) = failed {
        dst.truncate(start);
        return Err(Error::TooLarge {
            field: Field::VarsBlock,
            size,
            limit: limit_kind,
            max: limit,
        });
    }
    let [lo, hi] = u16::try_from(size)
        .expect("size was checked against a u16 limit")
        .to_le_bytes();
    dst[start + 1] = lo;
    dst[start + 2] = hi;
    Ok(())
}

#[cold]
fn field_error(index: usize, key_len: usize, value_len: usize) -> Error {
    let (field, size) = match (key_len, value_len) {
        (0, _) => return Error::EmptyKey { index },
        (k, _) if k > usize::from(u16::MAX) => (Field::Key, k),
        (_, v) => (Field::Value, v),
    };
    Error::TooLarge {
        field,
        size,
        limit: Limit::Protocol,
        max: usize::from(u16::MAX),
    }
}

#[inline]
fn put_sized(dst: &mut BytesMut, bytes: &[u8]) {
    #[allow(clippy::cast_possible_truncation)] // The caller checked `bytes.len() <= u16::MAX`.
    let len = bytes.len() as u16;
    dst.extend_from_slice(&len.to_le_bytes());
    dst.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    // `REQUEST_METHOD: GET`, `PATH_INFO: /`
    const GET: &[u8] = b"\x00\x23\x00\x00\
        \x0e\x00REQUEST_METHOD\x03\x00GET\
        \x09\x00PATH_INFO\x01\x00/";

    #[test]
    fn decodes_a_request_packet() {
        let (packet, used) = Packet::decode(GET, BufferSize::MAX).unwrap().unwrap();
        assert_eq!(used, GET.len());
        assert_eq!(packet.header().modifier1, Modifier1::WSGI);
        assert_eq!(packet.header().datasize, 35);
        let vars: Vec<_> = packet.vars().iter().collect();
        assert_eq!(
            vars,
            [
                (&b"REQUEST_METHOD"[..], &b"GET"[..]),
                (&b"PATH_INFO"[..], &b"/"[..])
            ]
        );
        assert_eq!(packet.vars().get(b"PATH_INFO"), Some(&b"/"[..]));
    }

    #[test]
    fn every_prefix_needs_more() {
        for end in 0..GET.len() {
            assert!(
                Packet::decode(&GET[..end], BufferSize::MAX)
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn trailing_bytes_are_left_alone() {
        let mut buf = GET.to_vec();
        buf.extend_from_slice(b"body");
        let (_, used) = Packet::decode(&buf, BufferSize::MAX).unwrap().unwrap();
        assert_eq!(&buf[used..], b"body");
    }

    #[test]
    fn ping_is_an_empty_packet() {
        let (packet, used) = Packet::decode(b"\x64\x00\x00\x00", BufferSize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(used, 4);
        assert_eq!(packet.header().modifier1, Modifier1::PING);
        assert!(packet.vars().is_empty());
    }

    fn invalid(buf: &[u8], buffer_size: BufferSize) -> (usize, InvalidPacket) {
        match Packet::decode(buf, buffer_size) {
            Err(Error::InvalidPacket { offset, reason }) => (offset, reason),
            other => panic!("expected an invalid packet, got {other:?}"),
        }
    }

    #[test]
    fn empty_key_is_invalid() {
        assert_eq!(
            invalid(b"\x00\x05\x00\x00\x00\x00\x01\x00x", BufferSize::MAX),
            (4, InvalidPacket::EmptyKey)
        );
    }

    #[test]
    fn value_past_the_block_is_invalid() {
        assert_eq!(
            invalid(b"\x00\x06\x00\x00\x01\x00k\x05\x00x", BufferSize::MAX),
            (7, InvalidPacket::Overrun { size: 5, left: 1 })
        );
    }

    #[test]
    fn block_ending_inside_a_size_is_invalid() {
        assert_eq!(
            invalid(b"\x00\x04\x00\x00\x01\x00k\x05", BufferSize::MAX),
            (7, InvalidPacket::TruncatedSize)
        );
    }

    #[test]
    fn datasize_over_buffer_size_is_invalid_before_the_block_arrives() {
        assert_eq!(
            invalid(b"\x00\x01\x10\x00", BufferSize::UWSGI_DEFAULT),
            (
                1,
                InvalidPacket::TooLarge {
                    datasize: 4097,
                    buffer_size: 4096
                }
            )
        );
    }

    #[test]
    fn encodes_byte_for_byte() {
        let mut dst = BytesMut::new();
        encode_packet(
            &mut dst,
            Modifier1::WSGI,
            Modifier2::DEFAULT,
            [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/")],
            BufferSize::MAX,
        )
        .unwrap();
        assert_eq!(&dst[..], GET);
    }

    #[test]
    fn encode_rejects_an_empty_key_and_leaves_dst_alone() {
        let mut dst = BytesMut::from(&b"keep"[..]);
        let err = encode_packet(
            &mut dst,
            Modifier1::WSGI,
            Modifier2::DEFAULT,
            [("A", "1"), ("", "2")],
            BufferSize::MAX,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "var `#1` has an empty key");
        assert_eq!(&dst[..], b"keep");
    }

    #[test]
    fn encode_names_the_limit_exceeded() {
        let big = "x".repeat(5000);
        let mut dst = BytesMut::new();
        let err = encode_packet(
            &mut dst,
            Modifier1::WSGI,
            Modifier2::DEFAULT,
            [("HTTP_X", big.as_str())],
            BufferSize::UWSGI_DEFAULT,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "vars block of `5010` bytes exceeds the `buffer_size` limit of `4096` bytes"
        );
        let huge = "x".repeat(70_000);
        let err = encode_packet(
            &mut dst,
            Modifier1::WSGI,
            Modifier2::DEFAULT,
            [("HTTP_X", huge.as_str())],
            BufferSize::MAX,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "value of `70000` bytes exceeds the uwsgi protocol limit of `65535` bytes"
        );
        let err = encode_packet(
            &mut dst,
            Modifier1::WSGI,
            Modifier2::DEFAULT,
            (0..20).map(|i| (format!("K{i:02}"), big.as_str())),
            BufferSize::MAX,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "vars block of `100140` bytes exceeds the uwsgi protocol limit of `65535` bytes"
        );
        assert!(dst.is_empty());
    }

    #[test]
    fn modifier_debug_names_known_codes() {
        assert_eq!(format!("{:?}", Modifier1::PING), "PING");
        assert_eq!(format!("{:?}", Modifier1::new(42)), "Modifier1(42)");
    }
}
