//! Fuzz the certificate reader of `tls status` and `tls renew` (what an ACME CA sends, what is
//! on disk): any bytes, raw or inside PEM armour, give a certificate or an error, never a panic.
#![no_main]

use backstage_manager::acme::Leaf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for input in [data.to_vec(), {
        let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
        pem.extend_from_slice(data);
        pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
        pem
    }] {
        if let Ok(leaf) = Leaf::parse(&input) {
            assert!(
                leaf.names.windows(2).all(|w| w[0] < w[1]),
                "sorted, no duplicates"
            );
            assert!(leaf.serial.chars().all(|c| c.is_ascii_hexdigit()));
        }
    }
});
