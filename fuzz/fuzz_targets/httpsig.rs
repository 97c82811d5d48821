//! HTTP signatures (`weft_federation::httpsig`): `parse` of any request,
//! and `sign` → `parse` → `verify` round trips.
//!
//! An input starting with `!` is a round trip: a flags byte (bit 0 RFC
//! 9421 rather than cavage, bit 1 Ed25519 rather than RSA, bit 2 a body),
//! then the key id, the path and the body, `\n`-separated. It checks that
//! whatever this node signs, it accepts and verifies under the signer's
//! public key and no other, and that a changed body is refused before any
//! key is needed.
//!
//! Any other input is a request as text: `METHOD TARGET [UNIX-SECONDS]`,
//! header lines `name: value`, an empty line, the body. When `parse`
//! accepts it, it checks that the signature's time is inside the window,
//! that a non-empty body is bound (changing a byte is refused), and that
//! what verifies (under the RFC 9421 test key or this file's keys) is
//! evidence of the same key id and time. It does not fetch keys.

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use weft_federation::httpsig::{
    self, Pending, PublicKey, RsaKey, Scheme, SignatureError, Signer, Window,
};

/// Tue, 14 Nov 2023 22:13:20 GMT, when no time is given.
const NOW: u64 = 1_700_000_000;

/// RFC 9421 Appendix B.1.4, test-key-ed25519.
const RFC_ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn ed25519(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn ed25519_public(seed: u8) -> PublicKey {
    PublicKey::Ed25519(ed25519(seed).verifying_key().to_bytes())
}

/// Two RSA keys, made once per process.
fn rsa(second: bool) -> &'static RsaKey {
    static KEYS: OnceLock<[RsaKey; 2]> = OnceLock::new();
    &KEYS.get_or_init(|| {
        [
            RsaKey::generate().expect("an RSA key"),
            RsaKey::generate().expect("an RSA key"),
        ]
    })[usize::from(second)]
}

fuzz_target!(|data: &[u8]| {
    match data.strip_prefix(b"!") {
        Some(rest) => round_trip(rest),
        None => any_request(data),
    }
});

fn round_trip(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |b| *b == b'\n');
    let (Some(key_id), Some(path)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(key_id), Ok(path)) = (std::str::from_utf8(key_id), std::str::from_utf8(path)) else {
        return;
    };
    // The path and query a client sends: visible ASCII, no fragment.
    if path.contains('#') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return;
    }
    let target = format!("/{path}");
    let body = (flags & 4 != 0).then(|| parts.next().unwrap_or_default());
    let scheme = if flags & 1 != 0 {
        Scheme::Rfc9421
    } else {
        Scheme::Cavage
    };
    let (signer, public, other) = if flags & 2 != 0 {
        (
            Signer::Ed25519(&ed25519(1)),
            ed25519_public(1),
            ed25519_public(2),
        )
    } else {
        (
            Signer::Rsa(rsa(false)),
            PublicKey::of_rsa(rsa(false)),
            PublicKey::of_rsa(rsa(true)),
        )
    };
    let method = if body.is_some() {
        Method::POST
    } else {
        Method::GET
    };
    let url = format!("https://b.example{target}");
    let signed = match httpsig::sign(scheme, &method, &url, body, key_id, signer, at(NOW)) {
        Ok(signed) => signed,
        Err(SignatureError::BadKeyId(_) | SignatureError::BadUrl { .. }) => return,
        Err(SignatureError::NeedsRsa) => {
            assert!(matches!(
                (scheme, signer),
                (Scheme::Cavage, Signer::Ed25519(_))
            ));
            return;
        }
        Err(e) => panic!("signing {url} with key id {key_id:?} failed: {e}"),
    };
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("b.example"));
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/activity+json"),
    );
    for (name, value) in signed {
        headers.append(name, value);
    }
    let body = body.unwrap_or_default();
    let check = |body: &[u8]| {
        httpsig::parse(
            &method,
            &target,
            &headers,
            body,
            "https",
            Window::default(),
            at(NOW + 5),
        )
    };
    let pending = check(body).unwrap_or_else(|e| panic!("{url} as signed is refused: {e}"));
    assert_eq!(pending.key_id, key_id);
    assert_eq!(pending.scheme, scheme);
    assert_eq!(pending.created(), NOW);
    assert!(
        pending.clone().verify(&other).is_err(),
        "verified under another key"
    );
    let evidence = pending
        .verify(&public)
        .expect("verifies under the signer's key");
    assert_eq!((evidence.key_id.as_str(), evidence.created), (key_id, NOW));
    if let Some((first, rest)) = body.split_first() {
        let changed: Vec<u8> = std::iter::once(first ^ 1)
            .chain(rest.iter().copied())
            .collect();
        assert!(check(&changed).is_err(), "a changed body is accepted");
    }
}

fn any_request(data: &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let Ok(method) = Method::from_bytes(request_line.next().unwrap_or_default().as_bytes()) else {
        return;
    };
    let target = request_line.next().unwrap_or_default();
    // Up to year 36 812: far enough, and no `SystemTime` overflow.
    let now = request_line
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|n: &u64| *n < 1 << 40)
        .unwrap_or(NOW);
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            headers.append(name, value);
        }
    }
    let window = Window::default();
    let check =
        |body: &[u8]| httpsig::parse(&method, target, &headers, body, "https", window, at(now));
    let Ok(pending) = check(body) else {
        return;
    };
    let created = pending.created();
    assert!(
        created + window.max_age.as_secs() >= now && created <= now + window.max_ahead.as_secs(),
        "signed at {created}, outside the window around {now}"
    );
    if let Some((first, rest)) = body.split_first() {
        let changed: Vec<u8> = std::iter::once(first ^ 1)
            .chain(rest.iter().copied())
            .collect();
        assert!(check(&changed).is_err(), "a changed body is accepted");
    }
    let rfc = PublicKey::from_pem(RFC_ED25519_PUBLIC).expect("the RFC's key");
    let rsa_key = PublicKey::of_rsa(rsa(false));
    for key in [rfc, ed25519_public(1), rsa_key] {
        check_evidence(pending.clone(), &key);
    }
}

fn check_evidence(pending: Pending, key: &PublicKey) {
    let (key_id, created) = (pending.key_id.clone(), pending.created());
    if let Ok(evidence) = pending.verify(key) {
        assert_eq!((evidence.key_id, evidence.created), (key_id, created));
        assert!(!evidence.signed.is_empty());
    }
}
