//! A [`tokio_util::codec`] codec for uwsgi packets.
use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::{
    error::Error,
    packet::{BufferSize, HEADER_LEN, Header, Modifier1, Modifier2, Vars, encode_packet},
};

/// An owned packet: a header and its validated vars block (shared, not copied).
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    header: Header,
    vars: Bytes,
    count: usize,
}

impl Frame {
    /// Builds a frame from vars, checking them as [`encode_packet`] does.
    pub fn new<I, K, V>(
        modifier1: Modifier1,
        modifier2: Modifier2,
        vars: I,
        buffer_size: BufferSize,
    ) -> Result<Frame, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut buf = BytesMut::new();
        encode_packet(&mut buf, modifier1, modifier2, vars, buffer_size)?;
        let header = Header::decode(&buf).expect("encode_packet wrote a header");
        let block = buf.split_off(HEADER_LEN).freeze();
        let count = Vars::parse(&block)?.len();
        Ok(Frame {
            header,
            vars: block,
            count,
        })
    }

    /// The header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The vars block.
    pub fn vars(&self) -> Vars<'_> {
        Vars::trusted(&self.vars, self.count)
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("header", &self.header)
            .field("vars", &self.vars())
            .finish_non_exhaustive()
    }
}

/// Decodes and encodes [`Frame`]s, enforcing a `buffer_size` both ways.
///
/// A decoder error means the stream is corrupt: it cannot be resynchronised.
#[derive(Debug, Clone, Copy, Default)]
pub struct PacketCodec {
    buffer_size: BufferSize,
}

impl PacketCodec {
    /// A codec accepting vars blocks up to `buffer_size` bytes.
    pub fn new(buffer_size: BufferSize) -> Self {
        Self { buffer_size }
    }
}

impl Decoder for PacketCodec {
    type Item = Frame;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        let Some(header) = Header::decode(src) else {
            src.reserve(HEADER_LEN - src.len());
            return Ok(None);
        };
        // Checked before reserving, so a hostile header cannot make us allocate.
        crate::packet::check_datasize(header, self.buffer_size)?;
        let end = HEADER_LEN + usize::from(header.datasize);
        if src.len() < end {
            src.reserve(end - src.len());
            return Ok(None);
        }
        let count = crate::packet::validate_block(&src[HEADER_LEN..end], HEADER_LEN)?;
        let mut packet = src.split_to(end);
        packet.advance(HEADER_LEN);
        Ok(Some(Frame {
            header,
            vars: packet.freeze(),
            count,
        }))
    }
}

impl Encoder<&Frame> for PacketCodec {
    type Error = Error;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), Error> {
        let header = frame.header;
        encode_packet(
            dst,
            header.modifier1,
            header.modifier2,
            frame.vars().iter(),
            self.buffer_size,
        )
    }
}

impl Encoder<Frame> for PacketCodec {
    type Error = Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), Error> {
        self.encode(&frame, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_packets_split_anywhere_and_back_to_back() {
        let frame = Frame::new(
            Modifier1::WSGI,
            Modifier2::DEFAULT,
            [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/x")],
            BufferSize::MAX,
        )
        .unwrap();
        let mut codec = PacketCodec::default();
        let mut wire = BytesMut::new();
        codec.encode(&frame, &mut wire).unwrap();
        codec.encode(&frame, &mut wire).unwrap();
        for split in 0..wire.len() {
            let mut src = BytesMut::from(&wire[..split]);
            let mut got = Vec::new();
            while let Some(f) = codec.decode(&mut src).unwrap() {
                got.push(f);
            }
            src.extend_from_slice(&wire[split..]);
            while let Some(f) = codec.decode(&mut src).unwrap() {
                got.push(f);
            }
            assert_eq!(got, [frame.clone(), frame.clone()]);
            assert!(src.is_empty());
        }
    }

    #[test]
    fn rejects_a_hostile_datasize_without_reserving() {
        let mut codec = PacketCodec::new(BufferSize::new(100));
        let mut src = BytesMut::from(&b"\x00\xff\xff\x00"[..]);
        let err = codec.decode(&mut src).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid uwsgi packet at byte `1`: datasize `65535` exceeds the `buffer_size` limit of `100` bytes"
        );
        assert!(src.capacity() < 1000);
    }

    #[test]
    fn encoder_enforces_buffer_size() {
        let frame = Frame::new(
            Modifier1::WSGI,
            Modifier2::DEFAULT,
            [("K", "v".repeat(200))],
            BufferSize::MAX,
        )
        .unwrap();
        let err = PacketCodec::new(BufferSize::new(100))
            .encode(&frame, &mut BytesMut::new())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "vars block of `205` bytes exceeds the `buffer_size` limit of `100` bytes"
        );
    }
}
