//! Packets captured from a real nginx 1.22 `uwsgi_pass` (see `scripts/capture-nginx-packets`),
//! decoded and re-encoded byte for byte.
use backstage_uwsgi::{BufferSize, Modifier1, Modifier2, Packet, PacketCodec, encode_packet};
use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

const FIXTURES: [(&str, &[u8]); 4] = [
    (
        "get-query-headers",
        include_bytes!("fixtures/nginx-get-query-headers.bin"),
    ),
    ("post-form", include_bytes!("fixtures/nginx-post-form.bin")),
    (
        "browser-get-cookies",
        include_bytes!("fixtures/nginx-browser-get-cookies.bin"),
    ),
    (
        "post-binary",
        include_bytes!("fixtures/nginx-post-binary.bin"),
    ),
];

#[test]
fn nginx_packets_decode_and_re_encode_byte_identically() {
    for (name, wire) in FIXTURES {
        let (packet, used) = Packet::decode(wire, BufferSize::MAX)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: incomplete"));
        assert_eq!(used, wire.len(), "{name}");
        assert_eq!(packet.header().modifier1, Modifier1::WSGI, "{name}");
        assert_eq!(packet.header().modifier2, Modifier2::DEFAULT, "{name}");
        let mut again = BytesMut::new();
        encode_packet(
            &mut again,
            packet.header().modifier1,
            packet.header().modifier2,
            packet.vars(),
            BufferSize::MAX,
        )
        .unwrap();
        assert!(again[..] == wire[..], "{name}: re-encoding differs");
    }
}

#[test]
fn nginx_packets_carry_what_uwsgi_params_says() {
    let vars = |wire| {
        Packet::decode(wire, BufferSize::MAX)
            .unwrap()
            .unwrap()
            .0
            .vars()
    };
    let get = vars(FIXTURES[0].1);
    assert_eq!(get.get(b"REQUEST_METHOD"), Some(&b"GET"[..]));
    assert_eq!(get.get(b"PATH_INFO"), Some(&b"/search/"[..]));
    assert_eq!(
        get.get(b"QUERY_STRING"),
        Some(&b"q=jazz+club&page=2&sort=-date"[..])
    );
    assert_eq!(get.get(b"HTTP_X_REQUEST_ID").map(<[u8]>::len), Some(36));
    // nginx sends empty values rather than leaving vars out.
    assert_eq!(get.get(b"CONTENT_LENGTH"), Some(&b""[..]));

    let post = vars(FIXTURES[1].1);
    assert_eq!(post.get(b"REQUEST_METHOD"), Some(&b"POST"[..]));
    assert_eq!(
        post.get(b"CONTENT_LENGTH"),
        Some(
            include_bytes!("fixtures/nginx-post-form.body")
                .len()
                .to_string()
                .as_bytes()
        )
    );

    let big = vars(FIXTURES[2].1);
    assert!(FIXTURES[2].1.len() > 3000);
    assert!(big.get(b"HTTP_COOKIE").unwrap().len() > 2000);
}

#[test]
fn the_codec_frames_nginx_packets_followed_by_their_body() {
    let mut codec = PacketCodec::new(BufferSize::UWSGI_DEFAULT);
    let body = include_bytes!("fixtures/nginx-post-binary.body");
    let wire = FIXTURES[3].1;
    let mut src = BytesMut::from(wire);
    src.extend_from_slice(body);
    let frame = codec.decode(&mut src).unwrap().unwrap();
    // What follows the packet is the request body, left for the caller.
    assert_eq!(&src[..], &body[..]);
    let mut dst = BytesMut::new();
    codec.encode(&frame, &mut dst).unwrap();
    assert_eq!(&dst[..], wire);
}

#[test]
fn every_truncation_of_an_nginx_packet_needs_more() {
    for (name, wire) in FIXTURES {
        for end in 0..wire.len() {
            assert!(
                Packet::decode(&wire[..end], BufferSize::MAX)
                    .unwrap()
                    .is_none(),
                "{name} at {end}"
            );
        }
    }
}
