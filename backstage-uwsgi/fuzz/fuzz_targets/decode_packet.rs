//! Packet::decode and PacketCodec on arbitrary bytes: never panic; a decoded packet
//! re-encodes to the same bytes.
#![no_main]
use backstage_uwsgi::{BufferSize, Error, Packet, PacketCodec, encode_packet};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    match Packet::decode(data, BufferSize::MAX) {
        Ok(Some((packet, used))) => {
            let mut again = BytesMut::new();
            let header = packet.header();
            encode_packet(
                &mut again,
                header.modifier1,
                header.modifier2,
                packet.vars(),
                BufferSize::MAX,
            )
            .expect("a decoded packet encodes");
            assert_eq!(&again[..], &data[..used]);
        }
        Ok(None) => {}
        Err(Error::InvalidPacket { offset, .. }) => assert!(offset <= data.len()),
        Err(other) => panic!("unexpected error {other:?}"),
    }
    let mut codec = PacketCodec::new(BufferSize::UWSGI_DEFAULT);
    let mut src = BytesMut::from(data);
    while let Ok(Some(_)) = codec.decode(&mut src) {}
});
