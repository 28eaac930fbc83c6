//! Sess copies: the names of their vassals and runtime files, and reading a vassal's file name
//! back (file names found on disk are untrusted: anything may be in the vassal dir).

use std::path::{Path, PathBuf};

use backstage_core::values::InstanceId;
use backstage_core::{Manifest, Production, SessSocket};
use proptest::prelude::*;

fn production() -> Production {
    let text = r#"
[production]
name = "jazz"

[acts.club]
root = "club"
wsgi = "club.wsgi:application"

[stages.local]
virtualenv = "venv"

[sess.club-a]
act = "club"
stage = "local"

[sess.club-tcp]
act = "club"
stage = "local"
socket = "127.0.0.1:9001"
"#;
    Manifest::from_source(
        "backstage.toml".into(),
        PathBuf::from("/srv/jazz"),
        text.into(),
    )
    .parse()
    .unwrap()
}

#[test]
fn copies_are_named_after_their_id_and_read_back() {
    let p = production();
    let a = "club-a".parse().unwrap();
    let id: InstanceId = "0123abcd".parse().unwrap();
    assert!(p.has_default_socket(&a));
    let copy = p.instance(&a, Some(&id));
    assert_eq!(
        copy.vassal.as_str(),
        "/srv/jazz/.backstage/vassals/backstage.jazz.club-a.0123abcd.ini"
    );
    assert_eq!(
        copy.socket,
        SessSocket::Unix(
            "/srv/jazz/.backstage/run/backstage.jazz.club-a.0123abcd.sock"
                .parse()
                .unwrap()
        )
    );
    assert_eq!(
        copy.stats.as_str(),
        "/srv/jazz/.backstage/run/backstage.jazz.club-a.0123abcd.stats.sock"
    );
    assert_eq!(
        p.instance_of_vassal(copy.vassal.as_path()).as_ref(),
        Some(&copy)
    );
    // The Sess' own socket path is the link, not a copy's.
    assert_eq!(
        p.sess[&a].socket.to_string(),
        "unix:/srv/jazz/.backstage/run/backstage.jazz.club-a.sock"
    );

    // A Sess on a fixed address has one copy, without an id, listening there.
    let tcp = "club-tcp".parse().unwrap();
    assert!(!p.has_default_socket(&tcp));
    let only = p.instance(&tcp, None);
    assert_eq!(only.socket, p.sess[&tcp].socket);
    assert_eq!(
        p.instance_of_vassal(only.vassal.as_path()).as_ref(),
        Some(&only)
    );

    // A retired Sess (not in the manifest) is still recognised by its vassal's name.
    let gone = Path::new("/srv/jazz/.backstage/vassals/backstage.jazz.gone.89abcdef.ini");
    assert_eq!(p.instance_of_vassal(gone).unwrap().sess.as_str(), "gone");

    for other in [
        "/srv/jazz/.backstage/vassals/backstage.other.club-a.ini",
        "/srv/jazz/.backstage/vassals/backstage.jazz.club-a.0123ABCD.ini",
        "/srv/jazz/.backstage/vassals/backstage.jazz.club-a.0123abc.ini",
        "/srv/jazz/.backstage/vassals/backstage.jazz.club-a.0123abcd.x.ini",
        "/srv/jazz/.backstage/vassals/backstage.jazz.Club.ini",
        "/srv/jazz/.backstage/vassals/backstage.jazz.club-a.json",
        "/elsewhere/backstage.jazz.club-a.ini",
        "/srv/jazz/.backstage/vassals/.backstage.jazz.club-a.ini.1.tmp",
    ] {
        assert_eq!(p.instance_of_vassal(Path::new(other)), None, "{other}");
    }
}

#[test]
fn ids_are_eight_hex_digits_of_the_content_hash() {
    let a = InstanceId::of_content(b"[uwsgi]\nprocesses = 2\n");
    let b = InstanceId::of_content(b"[uwsgi]\nprocesses = 3\n");
    assert_ne!(a, b);
    assert_eq!(a, InstanceId::of_content(b"[uwsgi]\nprocesses = 2\n"));
    assert_eq!(a.as_str().len(), InstanceId::LEN);
    assert_eq!(a.as_str().parse::<InstanceId>().unwrap(), a);
    for bad in [
        "",
        "0123abc",
        "0123abcde",
        "0123abcG",
        "0123ABCD",
        "../../x",
    ] {
        assert!(bad.parse::<InstanceId>().is_err(), "{bad}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any file name in the vassal dir: never a panic, and a name that is recognised is exactly
    /// the vassal name of the copy it was read as.
    #[test]
    fn any_vassal_name_reads_back_or_is_ignored(name in "[a-z0-9.\\-_A-Z%/]{0,60}") {
        let p = production();
        let path = p.layout.vassal_dir.as_path().join(&name);
        if let Some(copy) = p.instance_of_vassal(&path) {
            prop_assert_eq!(copy.vassal.as_path(), path.as_path());
        }
    }

    /// Every copy's vassal name reads back as that copy.
    #[test]
    fn every_copy_reads_back(sess in "[a-z][a-z0-9]{0,10}(-[a-z0-9]{1,5})?", id in "[0-9a-f]{8}") {
        let p = production();
        let sess = sess.parse().unwrap();
        let id: InstanceId = id.parse().unwrap();
        let copy = p.instance(&sess, Some(&id));
        prop_assert_eq!(p.instance_of_vassal(copy.vassal.as_path()), Some(copy));
    }
}
