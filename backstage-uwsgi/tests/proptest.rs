//! Properties of the parsers of untrusted bytes: round trips, and no panic on any input.
use backstage_uwsgi::{
    BufferSize, Error, Modifier1, Modifier2, Packet, PacketCodec, ResponseHead, Stats,
    encode_packet,
};
use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn vars() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    proptest::collection::vec(
        (
            proptest::collection::vec(any::<u8>(), 1..40),
            proptest::collection::vec(any::<u8>(), 0..200),
        ),
        0..30,
    )
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(vars in vars(), m1 in any::<u8>(), m2 in any::<u8>(), tail in proptest::collection::vec(any::<u8>(), 0..20)) {
        let mut wire = BytesMut::new();
        encode_packet(&mut wire, Modifier1::new(m1), Modifier2::new(m2), vars.iter().map(|(k, v)| (k, v)), BufferSize::MAX).unwrap();
        let len = wire.len();
        wire.extend_from_slice(&tail);
        let (packet, used) = Packet::decode(&wire, BufferSize::MAX).unwrap().unwrap();
        prop_assert_eq!(used, len);
        prop_assert_eq!(packet.header().modifier1, Modifier1::new(m1));
        prop_assert_eq!(packet.header().modifier2, Modifier2::new(m2));
        prop_assert_eq!(packet.vars().len(), vars.len());
        let decoded: Vec<(Vec<u8>, Vec<u8>)> =
            packet.vars().iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        prop_assert_eq!(decoded, vars);
        for end in 0..len {
            prop_assert!(Packet::decode(&wire[..end], BufferSize::MAX).unwrap().is_none());
        }
    }

    #[test]
    fn decode_never_panics_and_offsets_stay_in_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..600), limit in any::<u16>()) {
        match Packet::decode(&bytes, BufferSize::new(limit)) {
            Ok(Some((packet, used))) => {
                prop_assert!(used <= bytes.len());
                prop_assert_eq!(packet.vars().iter().count(), packet.vars().len());
            }
            Ok(None) => {}
            Err(Error::InvalidPacket { offset, .. }) => prop_assert!(offset <= bytes.len()),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
        let mut src = BytesMut::from(&bytes[..]);
        let _ = PacketCodec::new(BufferSize::new(limit)).decode(&mut src);
    }

    #[test]
    fn response_head_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = ResponseHead::parse(&bytes, 128);
        let mut with_prefix = b"HTTP/1.1 200 OK\r\n".to_vec();
        with_prefix.extend_from_slice(&bytes);
        if let Ok(Some((_, used))) = ResponseHead::parse(&with_prefix, 1024) {
            prop_assert!(used <= with_prefix.len());
        }
    }

    #[test]
    fn stats_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Stats::parse(&bytes);
    }

    #[test]
    fn stats_strings_without_quotes_read_back_exactly(cwd in "[^\"]{0,40}") {
        // uWSGI prints strings between quotes as they are, without escaping.
        let raw = format!("{{\"cwd\":\"{cwd}\",\"pid\":42}}");
        let stats = Stats::parse(raw.as_bytes()).unwrap();
        prop_assert_eq!(stats.cwd, cwd);
        prop_assert_eq!(stats.pid, 42);
    }

    #[test]
    fn stats_strings_with_quotes_never_panic(cwd in "[a-z\",:{}\\\\]{0,20}") {
        let raw = format!("{{\"cwd\":\"{cwd}\",\"pid\":42}}");
        match Stats::parse(raw.as_bytes()) {
            Ok(_) => {}
            Err(Error::InvalidStats { offset, .. }) => prop_assert!(offset <= raw.len()),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}
