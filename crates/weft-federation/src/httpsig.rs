//! HTTP signatures for ActivityPub federation: signing the requests this
//! node sends and checking the ones it receives, in the two schemes the
//! fediverse speaks.
//!
//! - draft-cavage-http-signatures-12 with `rsa-sha256` (and `hs2019`, as
//!   Mastodon sends it), in a `Signature` header or `Authorization:
//!   Signature …`, with `Digest: SHA-256=…` over the body. This is what
//!   Mastodon, GoToSocial, Misskey and Lemmy send and verify.
//! - RFC 9421 HTTP Message Signatures with `ed25519` and `rsa-v1_5-sha256`
//!   (`Signature-Input` and `Signature`), with `Content-Digest` (RFC 9530)
//!   over the body, as Fedify sends them.
//!
//! Checking is two steps, so that no key is fetched for a request that is
//! malformed, stale, or whose body does not match its digest: [`parse`]
//! checks the digest, the time window and what the signature covers, and
//! rebuilds the signing string; [`Pending::verify`] then checks the
//! signature under the key the caller fetched for [`Pending::key_id`].
//!
//! What this file is not: it does not fetch keys, does not decide whom to
//! trust (whether a key may speak for an activity's actor is the caller's
//! question), and does no I/O. Everything it reads from a request is
//! hostile: the headers it parses are capped in length, and no input makes
//! it panic.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaParameters, UnparsedPublicKey};
use data_encoding::{BASE64, BASE64_NOPAD};
use ed25519_dalek::Signer as _;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

pub use weft_core::identity::RsaKey;

/// The longest header value (all its field lines together) this module
/// reads: `Signature`, `Signature-Input`, `Authorization`, the digests and
/// every covered header.
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// Most components (headers and pseudo-headers) one signature may cover.
const MAX_COMPONENTS: usize = 32;
/// Most parameters of a cavage `Signature`, or members of a structured
/// dictionary (`Signature-Input`, `Signature`, `Content-Digest`).
const MAX_MEMBERS: usize = 16;
/// Most bytes of a signature: an RSA-8192 signature is 1024.
const MAX_SIGNATURE_LEN: usize = 1024;
/// Longest `publicKeyPem` read.
const MAX_PEM_LEN: usize = 16 * 1024;
/// The label of the RFC 9421 signature this node sends.
const LABEL: &str = "sig1";

/// Why a request cannot be signed, or why its signature is not accepted.
/// The messages are written for the remote sender: each says what is wrong
/// and what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the request is not signed: send a `Signature` header (draft-cavage rsa-sha256) or \
         `Signature-Input` and `Signature` (RFC 9421)"
    )]
    Unsigned,
    #[error("`{header}` is {len} bytes long; at most {limit} are accepted")]
    TooLong {
        header: String,
        len: usize,
        limit: usize,
    },
    #[error("`{header}` is malformed: {reason}")]
    Malformed { header: String, reason: String },
    #[error(
        "unsupported algorithm `{0}`: sign with `rsa-sha256` or `hs2019` (draft-cavage), or with \
         `ed25519` or `rsa-v1_5-sha256` (RFC 9421)"
    )]
    UnsupportedAlgorithm(String),
    #[error(
        "the signature covers `{0}`, which this server cannot reconstruct; cover only header \
         names and `(request-target)`, `(created)`, `(expires)` (draft-cavage) or `@method`, \
         `@target-uri`, `@authority`, `@scheme`, `@request-target`, `@path`, `@query` without \
         parameters (RFC 9421)"
    )]
    UnsupportedComponent(String),
    #[error(
        "the signature covers `{0}` but the request has no such header; send it or leave it out \
         of the signature"
    )]
    MissingHeader(String),
    #[error("the signature does not cover `{0}`; add it to the covered components")]
    NotCovered(&'static str),
    #[error(
        "the request has a body but neither `Digest: SHA-256=<base64>` nor `Content-Digest: \
         sha-256=:<base64>:`; send one and cover it in the signature"
    )]
    NoDigest,
    #[error("`{0}` does not match the body")]
    DigestMismatch(&'static str),
    #[error("`{0}` has no `sha-256` or `sha-512` value; send a SHA-256 digest of the body")]
    UnsupportedDigest(&'static str),
    #[error(
        "`Date` is not an HTTP date; send an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`"
    )]
    BadDate,
    #[error("`{what}` is {} old; at most {} are accepted", human(.age), human(.max))]
    TooOld {
        what: &'static str,
        age: Duration,
        max: Duration,
    },
    #[error(
        "`{what}` is {} in the future; the limit is {} (check the sender's clock)",
        human(.ahead),
        human(.max)
    )]
    TooNew {
        what: &'static str,
        ahead: Duration,
        max: Duration,
    },
    #[error("the signature expired {} ago (`expires`)", human(.0))]
    Expired(Duration),
    #[error(
        "the signature has no `created` parameter; add `;created=<unix seconds>` to \
         `Signature-Input`"
    )]
    NoCreated,
    #[error("the signature is not base64 (RFC 4648, standard alphabet with padding)")]
    BadSignatureEncoding,
    #[error(
        "the signature does not verify under key `{0}`; sign with that key over exactly the \
         covered components"
    )]
    Invalid(String),
    #[error("key `{key_id}` is {kind} key, but the signature says `{algorithm}`")]
    KeyMismatch {
        key_id: String,
        kind: &'static str,
        algorithm: String,
    },
    #[error("the public key cannot be read: {0}")]
    BadKey(String),
    #[error("a draft-cavage signature needs an RSA key; sign with RFC 9421 for an Ed25519 key")]
    NeedsRsa,
    #[error("cannot sign a request to `{url}`: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error(
        "the key id `{0}` cannot be sent in a header: it must be visible ASCII without `\"` or `\\`"
    )]
    BadKeyId(String),
    #[error("the RSA key cannot be used: {0}")]
    Key(String),
    #[error("the clock reads earlier than 1970")]
    Clock,
}

fn malformed(header: &str, reason: impl Into<String>) -> SignatureError {
    SignatureError::Malformed {
        header: header.to_owned(),
        reason: reason.into(),
    }
}

/// `d` in words: "13 hours", "1 hour 5 minutes", "40 seconds".
fn human(d: &Duration) -> String {
    let secs = d.as_secs();
    let parts = [
        (secs / 3600, "hour"),
        (secs % 3600 / 60, "minute"),
        (secs % 60, "second"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if words.is_empty() {
        "0 seconds".to_owned()
    } else {
        words.join(" ")
    }
}

// ---------------------------------------------------------------------------
// Keys

/// A key that signs a request.
#[derive(Clone, Copy)]
pub enum Signer<'a> {
    Rsa(&'a RsaKey),
    Ed25519(&'a ed25519_dalek::SigningKey),
}

impl fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa(key) => f.debug_tuple("Rsa").field(key).finish(),
            Self::Ed25519(key) => f
                .debug_tuple("Ed25519")
                .field(&key.verifying_key())
                .finish(),
        }
    }
}

/// A public key as an actor document publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// SubjectPublicKeyInfo DER.
    Rsa(Vec<u8>),
    Ed25519([u8; 32]),
}

/// The DER of the AlgorithmIdentifier OIDs this module reads.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

impl PublicKey {
    /// The public half of `key`.
    pub fn of_rsa(key: &RsaKey) -> Self {
        Self::Rsa(key.public_key_der().to_vec())
    }

    /// Reads a `publicKeyPem`: a PEM `PUBLIC KEY` (SubjectPublicKeyInfo,
    /// RSA or Ed25519), or a PEM `RSA PUBLIC KEY` (PKCS#1), which some
    /// servers publish and which is converted to SubjectPublicKeyInfo.
    pub fn from_pem(pem: &str) -> Result<Self, SignatureError> {
        if pem.len() > MAX_PEM_LEN {
            return Err(SignatureError::BadKey(format!(
                "the PEM is {} bytes; at most {MAX_PEM_LEN} are read",
                pem.len()
            )));
        }
        let bad = |reason: &str| SignatureError::BadKey(reason.to_owned());
        let begin = pem
            .find("-----BEGIN ")
            .ok_or_else(|| bad("no `-----BEGIN` line"))?;
        let after_begin = pem.get(begin + 11..).unwrap_or_default();
        let (label, rest) = after_begin
            .split_once("-----")
            .ok_or_else(|| bad("the `-----BEGIN` line does not end"))?;
        let end_line = format!("-----END {label}-----");
        let (body, _) = rest
            .split_once(end_line.as_str())
            .ok_or_else(|| bad("no `-----END` line matching the `-----BEGIN` line"))?;
        let text: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = BASE64
            .decode(text.as_bytes())
            .map_err(|_| bad("the PEM body is not base64"))?;
        match label {
            "PUBLIC KEY" => Self::from_spki_der(&der),
            "RSA PUBLIC KEY" => Self::rsa_from_der(&der),
            other => Err(SignatureError::BadKey(format!(
                "a PEM `{}` is not a public key; publish a `PUBLIC KEY`",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }

    /// Reads SubjectPublicKeyInfo DER, RSA or Ed25519.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SignatureError> {
        let bad = |reason: &str| SignatureError::BadKey(reason.to_owned());
        let (tag, spki, _) = der_tlv(der).ok_or_else(|| bad("not DER"))?;
        let (alg_tag, alg, rest) = der_tlv(spki).ok_or_else(|| bad("not DER"))?;
        let (oid_tag, oid, _) = der_tlv(alg).ok_or_else(|| bad("not DER"))?;
        if tag != 0x30 || alg_tag != 0x30 || oid_tag != 0x06 {
            return Err(bad("not a SubjectPublicKeyInfo"));
        }
        if oid == OID_RSA {
            Self::rsa_from_der(der)
        } else if oid == OID_ED25519 {
            let (bits_tag, bits, _) = der_tlv(rest).ok_or_else(|| bad("not DER"))?;
            match (bits_tag, bits.split_first()) {
                (0x03, Some((0, key))) => <[u8; 32]>::try_from(key)
                    .map(Self::Ed25519)
                    .map_err(|_| bad("an Ed25519 key is 32 bytes")),
                _ => Err(bad("not a SubjectPublicKeyInfo")),
            }
        } else {
            Err(bad("neither an RSA nor an Ed25519 key"))
        }
    }

    /// An RSA key from PKCS#1 or SubjectPublicKeyInfo DER, kept as the
    /// latter.
    fn rsa_from_der(der: &[u8]) -> Result<Self, SignatureError> {
        let key = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|e| SignatureError::BadKey(format!("not an RSA public key: {e}")))?;
        let spki = key
            .as_der()
            .map_err(|_| SignatureError::BadKey("cannot encode the RSA key".into()))?;
        Ok(Self::Rsa(spki.as_ref().to_vec()))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "an RSA",
            Self::Ed25519(_) => "an Ed25519",
        }
    }
}

/// One DER tag-length-value: the tag, the contents, what follows.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 3 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

// ---------------------------------------------------------------------------
// Signing

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// draft-cavage-http-signatures-12.
    Cavage,
    /// RFC 9421 HTTP Message Signatures.
    Rfc9421,
}

/// The headers to add to an outgoing request.
///
/// `url` is the absolute URL the request goes to, as given to the HTTP
/// client; `body` is the request body (`None` for a GET).
///
/// - [`Scheme::Cavage`]: `Date`, `Digest` (with a body) and `Signature`,
///   covering `(request-target) host date` and `digest` with a body. The
///   client sets `Host`; the signature covers it as the client sends it,
///   the URL's host plus `:port` only when the port is not the scheme's
///   default. Needs an RSA signer.
/// - [`Scheme::Rfc9421`]: `Date`, `Content-Digest` (with a body),
///   `Signature-Input` and `Signature`, covering `"@method" "@target-uri"
///   "@authority" "date"` and `"content-digest"` with a body, with
///   `created`, `keyid` and `alg` (`ed25519` or `rsa-v1_5-sha256`).
pub fn sign(
    scheme: Scheme,
    method: &Method,
    url: &str,
    body: Option<&[u8]>,
    key_id: &str,
    signer: Signer<'_>,
    now: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, SignatureError> {
    if key_id.is_empty()
        || key_id.len() > MAX_HEADER_LEN / 2
        || !key_id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(SignatureError::BadKeyId(key_id.chars().take(200).collect()));
    }
    let target = split_url(url)?;
    let date = format_http_date(unix_seconds(now)?);
    let mut out = vec![(HeaderName::from_static("date"), header_value(&date)?)];
    match scheme {
        Scheme::Cavage => {
            let Signer::Rsa(key) = signer else {
                return Err(SignatureError::NeedsRsa);
            };
            let mut lines = vec![
                format!(
                    "(request-target): {} {}",
                    method.as_str().to_ascii_lowercase(),
                    target.path_and_query
                ),
                format!("host: {}", target.authority),
                format!("date: {date}"),
            ];
            let mut covered = "(request-target) host date";
            if let Some(body) = body {
                let digest = format!("SHA-256={}", BASE64.encode(&sha256(body)));
                lines.push(format!("digest: {digest}"));
                covered = "(request-target) host date digest";
                out.push((HeaderName::from_static("digest"), header_value(&digest)?));
            }
            let signature = key
                .sign(lines.join("\n").as_bytes())
                .map_err(|e| SignatureError::Key(e.to_string()))?;
            let header = format!(
                "keyId=\"{key_id}\",algorithm=\"rsa-sha256\",headers=\"{covered}\",signature=\"{}\"",
                BASE64.encode(&signature)
            );
            out.push((HeaderName::from_static("signature"), header_value(&header)?));
        }
        Scheme::Rfc9421 => {
            let created = unix_seconds(now)?;
            let mut components = vec!["@method", "@target-uri", "@authority", "date"];
            let target_uri = format!(
                "{}://{}{}",
                target.scheme, target.authority, target.path_and_query
            );
            let mut lines = vec![
                format!("\"@method\": {}", method.as_str()),
                format!("\"@target-uri\": {target_uri}"),
                format!("\"@authority\": {}", target.authority),
                format!("\"date\": {date}"),
            ];
            if let Some(body) = body {
                let digest = format!("sha-256=:{}:", BASE64.encode(&sha256(body)));
                components.push("content-digest");
                lines.push(format!("\"content-digest\": {digest}"));
                out.push((
                    HeaderName::from_static("content-digest"),
                    header_value(&digest)?,
                ));
            }
            let alg = match signer {
                Signer::Rsa(_) => "rsa-v1_5-sha256",
                Signer::Ed25519(_) => "ed25519",
            };
            let list: Vec<String> = components.iter().map(|c| format!("\"{c}\"")).collect();
            let params = format!(
                "({});created={created};keyid=\"{key_id}\";alg=\"{alg}\"",
                list.join(" ")
            );
            lines.push(format!("\"@signature-params\": {params}"));
            let base = lines.join("\n");
            let signature = match signer {
                Signer::Rsa(key) => key
                    .sign(base.as_bytes())
                    .map_err(|e| SignatureError::Key(e.to_string()))?,
                Signer::Ed25519(key) => key.sign(base.as_bytes()).to_bytes().to_vec(),
            };
            out.push((
                HeaderName::from_static("signature-input"),
                header_value(&format!("{LABEL}={params}"))?,
            ));
            out.push((
                HeaderName::from_static("signature"),
                header_value(&format!("{LABEL}=:{}:", BASE64.encode(&signature)))?,
            ));
        }
    }
    Ok(out)
}

fn header_value(text: &str) -> Result<HeaderValue, SignatureError> {
    HeaderValue::from_str(text)
        .map_err(|_| malformed("outgoing header", "has characters a header cannot carry"))
}

/// The parts of an outgoing URL a signature covers.
struct Target {
    scheme: &'static str,
    /// Lowercased, without a default port: what the client sends as `Host`.
    authority: String,
    path_and_query: String,
}

fn split_url(url: &str) -> Result<Target, SignatureError> {
    let bad = |reason| SignatureError::BadUrl {
        url: url.chars().take(200).collect(),
        reason,
    };
    if url.is_empty() || url.len() > MAX_HEADER_LEN || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "it is empty, too long, or has spaces, control or non-ASCII characters (percent-encode them)",
        ));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("it is not an absolute URL"))?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        "https"
    } else if scheme.eq_ignore_ascii_case("http") {
        "http"
    } else {
        return Err(bad("it is not an http or https URL"));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or_default();
    let tail = rest.get(end..).unwrap_or_default();
    let authority = normalize_authority(authority, scheme)
        .ok_or_else(|| bad("its host is missing or malformed, or it has user information"))?;
    let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
    let path_and_query = if tail.is_empty() {
        "/".to_owned()
    } else if tail.starts_with('?') {
        format!("/{tail}")
    } else {
        tail.to_owned()
    };
    Ok(Target {
        scheme,
        authority,
        path_and_query,
    })
}

/// `raw` (a URL's authority or a `Host` header) lowercased, without the
/// scheme's default port; `None` if it is not a host with an optional port.
fn normalize_authority(raw: &str, scheme: &str) -> Option<String> {
    if raw.is_empty()
        || raw.contains(['@', '/', '?', '#', ',', '"', '\\'])
        || !raw.bytes().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    let lower = raw.to_ascii_lowercase();
    let (host, port) = if lower.starts_with('[') {
        let close = lower.find(']')?;
        let host = lower.get(..=close)?;
        let after = lower.get(close + 1..)?;
        let port = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':')?)
        };
        (host, port)
    } else {
        match lower.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (lower.as_str(), None),
        }
    };
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return None;
    }
    let default = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    match port {
        None | Some("") => Some(host.to_owned()),
        Some(port) => {
            if port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let port: u16 = port.parse().ok()?;
            if port == default {
                Some(host.to_owned())
            } else {
                Some(format!("{host}:{port}"))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Verifying

/// How far a request's time may be from now.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// How old a `Date` or `created` may be.
    pub max_age: Duration,
    /// How far ahead of this clock a `Date` or `created` may be, and how
    /// long past its `expires` a signature is still taken (clock skew).
    pub max_ahead: Duration,
}

impl Default for Window {
    /// 12 hours old, 1 hour ahead (Mastodon's margins).
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(12 * 3600),
            max_ahead: Duration::from_secs(3600),
        }
    }
}

/// The signature algorithm a pending signature names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaSha256,
    Ed25519,
    /// `hs2019` or no algorithm: whatever the key is.
    ByKey,
}

/// A signed request whose digest and time have been checked, waiting for
/// its key. Clone it to verify under a second key (a refetched one).
#[derive(Debug, Clone)]
pub struct Pending {
    /// The key the sender names (`keyId`, `keyid`); fetch it, then call
    /// [`Pending::verify`].
    pub key_id: String,
    pub scheme: Scheme,
    /// The signing string (cavage) or signature base (RFC 9421).
    base: String,
    /// The cavage signing string with `(request-target)` without the query,
    /// as Mastodon and Fedify sign it, tried when `base` does not verify.
    alternate: Option<String>,
    signature: Vec<u8>,
    alg: Alg,
    /// The algorithm as the request names it, for messages.
    alg_name: String,
    created: u64,
}

/// What was verified, kept as evidence beside a stored activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub scheme: Scheme,
    pub key_id: String,
    /// The exact signing string (cavage) or signature base (RFC 9421).
    pub signed: String,
    /// The signature, base64.
    pub signature: String,
    /// When the request was signed (`Date` or `created`), unix seconds.
    pub created: u64,
}

/// The request as `parse` sees it.
struct Incoming<'a> {
    method: &'a Method,
    target: &'a str,
    headers: &'a HeaderMap,
    body: &'a [u8],
    uri_scheme: &'a str,
    window: Window,
    now: u64,
}

/// Step 1 of checking a request's signature, with no network.
///
/// Finds the signature (RFC 9421 `Signature-Input` and `Signature` if
/// present, else a cavage `Signature` or `Authorization: Signature`);
/// checks the body digests (every `Digest` SHA-256/SHA-512 and
/// `Content-Digest` sha-256/sha-512 value present must match `body`, and a
/// non-empty body needs one that the signature covers); checks what the
/// signature covers; checks the time window (cavage: `(created)` if
/// covered, else the covered `Date`; RFC 9421: `created`, and `expires` if
/// given); and rebuilds the signing string.
///
/// `target` is the request's path and query as received (the request
/// line's target, e.g. `uri.path_and_query()`); `uri_scheme` is `"https"`
/// or `"http"`, the scheme the sender used, which behind a TLS-terminating
/// proxy is the public one, not the proxy's; the authority is the `Host`
/// header. Pass the request's whole `HeaderMap`: the signature may cover
/// any header, and `Host` must be there (under HTTP/2, insert it from the
/// URI's authority).
pub fn parse(
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
    uri_scheme: &str,
    window: Window,
    now: SystemTime,
) -> Result<Pending, SignatureError> {
    if target.is_empty()
        || target.len() > MAX_HEADER_LEN
        || !target.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(malformed(
            "request target",
            "it is empty, too long, or not visible ASCII",
        ));
    }
    let request = Incoming {
        method,
        target,
        headers,
        body,
        uri_scheme,
        window,
        now: unix_seconds(now)?,
    };
    if let Some(input) = field(headers, "signature-input", "Signature-Input")? {
        let signature = field(headers, "signature", "Signature")?.ok_or_else(|| {
            malformed(
                "Signature",
                "`Signature-Input` came without `Signature`; send both",
            )
        })?;
        return parse_rfc9421(&request, &input, &signature);
    }
    if headers.get_all("signature").iter().count() > 1 {
        return Err(malformed("Signature", "send one `Signature` header"));
    }
    if let Some(signature) = field(headers, "signature", "Signature")? {
        return parse_cavage(&request, &signature, "Signature");
    }
    if let Some(authorization) = field(headers, "authorization", "Authorization")? {
        let mut words = authorization.splitn(2, ' ');
        if words
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("signature"))
        {
            return parse_cavage(&request, words.next().unwrap_or_default(), "Authorization");
        }
    }
    Err(SignatureError::Unsigned)
}

impl Pending {
    /// Step 2: checks the signature under the key the caller fetched for
    /// [`Pending::key_id`]. RSA keys must be 2048 to 8192 bits. A cavage
    /// signature whose `(request-target)` left out the query (as Mastodon
    /// and Fedify have signed) is accepted too, as Mastodon accepts it.
    pub fn verify(self, key: &PublicKey) -> Result<Evidence, SignatureError> {
        self.verify_with(key, &RSA_PKCS1_2048_8192_SHA256)
    }

    /// When the request was signed, unix seconds.
    pub fn created(&self) -> u64 {
        self.created
    }

    /// The signing string (cavage) or signature base (RFC 9421) rebuilt
    /// from the request, for diagnostics when a signature does not verify.
    pub fn signed(&self) -> &str {
        &self.base
    }

    fn verify_with(
        self,
        key: &PublicKey,
        rsa: &'static RsaParameters,
    ) -> Result<Evidence, SignatureError> {
        let candidates = std::iter::once(&self.base).chain(self.alternate.as_ref());
        let verified = match (key, self.alg) {
            (PublicKey::Rsa(spki), Alg::RsaSha256 | Alg::ByKey) => {
                let public = UnparsedPublicKey::new(rsa, spki);
                candidates
                    .into_iter()
                    .find(|base| public.verify(base.as_bytes(), &self.signature).is_ok())
            }
            (PublicKey::Ed25519(bytes), Alg::Ed25519 | Alg::ByKey) => {
                let public = ed25519_dalek::VerifyingKey::from_bytes(bytes)
                    .map_err(|_| SignatureError::BadKey("not a valid Ed25519 public key".into()))?;
                match ed25519_dalek::Signature::from_slice(&self.signature) {
                    Ok(signature) => candidates
                        .into_iter()
                        .find(|base| public.verify_strict(base.as_bytes(), &signature).is_ok()),
                    Err(_) => None,
                }
            }
            (PublicKey::Rsa(_), Alg::Ed25519) | (PublicKey::Ed25519(_), Alg::RsaSha256) => {
                return Err(SignatureError::KeyMismatch {
                    key_id: self.key_id,
                    kind: key.kind(),
                    algorithm: self.alg_name,
                });
            }
        };
        let signed = verified
            .cloned()
            .ok_or_else(|| SignatureError::Invalid(self.key_id.clone()))?;
        Ok(Evidence {
            scheme: self.scheme,
            key_id: self.key_id,
            signed,
            signature: BASE64.encode(&self.signature),
            created: self.created,
        })
    }
}

/// The field lines of header `name` joined by `, `, each trimmed (RFC 9421
/// §2.1, draft-cavage §2.3); `None` if absent.
fn field(headers: &HeaderMap, name: &str, shown: &str) -> Result<Option<String>, SignatureError> {
    let mut values = Vec::new();
    let mut len = 0usize;
    for value in headers.get_all(name) {
        len = len.saturating_add(value.len() + 2);
        if len > MAX_HEADER_LEN + 2 {
            return Err(SignatureError::TooLong {
                header: shown.to_owned(),
                len: headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.len())
                    .fold(0usize, usize::saturating_add),
                limit: MAX_HEADER_LEN,
            });
        }
        let text = value
            .to_str()
            .map_err(|_| malformed(shown, "it has bytes that are not visible ASCII"))?;
        values.push(text.trim_matches([' ', '\t']));
    }
    Ok((!values.is_empty()).then(|| values.join(", ")))
}

/// A signature decoded from base64, within bounds.
fn decode_signature(text: &str) -> Result<Vec<u8>, SignatureError> {
    let bytes = decode_base64(text).ok_or(SignatureError::BadSignatureEncoding)?;
    if bytes.is_empty() || bytes.len() > MAX_SIGNATURE_LEN {
        return Err(SignatureError::BadSignatureEncoding);
    }
    Ok(bytes)
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    BASE64
        .decode(text.as_bytes())
        .ok()
        .or_else(|| BASE64_NOPAD.decode(text.as_bytes()).ok())
}

fn sha256(body: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body)
        .as_ref()
        .to_vec()
}

fn sha512(body: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, body)
        .as_ref()
        .to_vec()
}

/// The body's digests, each computed at most once however often a header
/// names its algorithm.
struct BodyDigests<'a> {
    body: &'a [u8],
    sha256: Option<Vec<u8>>,
    sha512: Option<Vec<u8>>,
}

impl<'a> BodyDigests<'a> {
    fn new(body: &'a [u8]) -> Self {
        Self {
            body,
            sha256: None,
            sha512: None,
        }
    }

    /// The digest for `algorithm` (lowercase), if supported.
    fn get(&mut self, algorithm: &str) -> Option<&[u8]> {
        let body = self.body;
        match algorithm {
            "sha-256" => Some(self.sha256.get_or_insert_with(|| sha256(body))),
            "sha-512" => Some(self.sha512.get_or_insert_with(|| sha512(body))),
            _ => None,
        }
    }
}

/// Which digest headers are present; each present one has been checked.
#[derive(Debug, Clone, Copy)]
struct Digests {
    digest: bool,
    content_digest: bool,
}

/// Checks `Digest` (RFC 3230) and `Content-Digest` (RFC 9530) against the
/// body, when present.
fn check_digests(request: &Incoming<'_>) -> Result<Digests, SignatureError> {
    let mut digests = BodyDigests::new(request.body);
    let digest = field(request.headers, "digest", "Digest")?;
    if let Some(value) = &digest {
        let mut checked = false;
        for part in value.split(',') {
            let Some((algorithm, encoded)) = part.split_once('=') else {
                continue;
            };
            let algorithm = algorithm.trim().to_ascii_lowercase();
            let Some(expected) = digests.get(&algorithm) else {
                continue;
            };
            let got = decode_base64(encoded.trim()).ok_or_else(|| {
                malformed("Digest", format!("the `{algorithm}` value is not base64"))
            })?;
            if got != expected {
                return Err(SignatureError::DigestMismatch("Digest"));
            }
            checked = true;
        }
        if !checked {
            return Err(SignatureError::UnsupportedDigest("Digest"));
        }
    }
    let content_digest = field(request.headers, "content-digest", "Content-Digest")?;
    if let Some(value) = &content_digest {
        let members = sf::parse_dictionary(value).map_err(|e| match e {
            sf::Error::Base64 => malformed("Content-Digest", "a value is not base64"),
            sf::Error::Syntax(reason) => malformed("Content-Digest", reason),
        })?;
        let mut checked = false;
        for (algorithm, member) in &members {
            let Some(expected) = digests.get(algorithm) else {
                continue;
            };
            let sf::Member::Item(sf::Bare::Bytes(got), _) = member else {
                return Err(malformed(
                    "Content-Digest",
                    format!("`{algorithm}` is not a byte sequence (`{algorithm}=:<base64>:`)"),
                ));
            };
            if got.as_slice() != expected {
                return Err(SignatureError::DigestMismatch("Content-Digest"));
            }
            checked = true;
        }
        if !checked {
            return Err(SignatureError::UnsupportedDigest("Content-Digest"));
        }
    }
    Ok(Digests {
        digest: digest.is_some(),
        content_digest: content_digest.is_some(),
    })
}

/// A non-empty body must be bound to the signature by a covered digest.
fn require_covered_digest(
    request: &Incoming<'_>,
    present: Digests,
    covers: impl Fn(&str) -> bool,
    scheme: Scheme,
) -> Result<(), SignatureError> {
    if request.body.is_empty()
        || (present.digest && covers("digest"))
        || (present.content_digest && covers("content-digest"))
    {
        return Ok(());
    }
    Err(match (scheme, present.digest, present.content_digest) {
        (Scheme::Cavage, true, _) | (Scheme::Rfc9421, true, false) => {
            SignatureError::NotCovered("digest")
        }
        (_, _, true) => SignatureError::NotCovered("content-digest"),
        (_, false, false) => SignatureError::NoDigest,
    })
}

/// Checks that `at` (unix seconds) is inside the window around `now`.
fn check_time(what: &'static str, at: u64, request: &Incoming<'_>) -> Result<(), SignatureError> {
    let window = request.window;
    if at > request.now {
        let ahead = Duration::from_secs(at - request.now);
        if ahead > window.max_ahead {
            return Err(SignatureError::TooNew {
                what,
                ahead,
                max: window.max_ahead,
            });
        }
    } else {
        let age = Duration::from_secs(request.now - at);
        if age > window.max_age {
            return Err(SignatureError::TooOld {
                what,
                age,
                max: window.max_age,
            });
        }
    }
    Ok(())
}

/// Checks an `expires` (unix seconds), with the window's clock skew.
fn check_expires(expires: u64, request: &Incoming<'_>) -> Result<(), SignatureError> {
    let skew = request.window.max_ahead.as_secs();
    if expires.saturating_add(skew) < request.now {
        return Err(SignatureError::Expired(Duration::from_secs(
            request.now - expires,
        )));
    }
    Ok(())
}

/// Whether `name` is a lowercase header field name (a token).
fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// The value of a covered header field.
fn covered_field(request: &Incoming<'_>, name: &str) -> Result<String, SignatureError> {
    field(request.headers, name, name)?
        .ok_or_else(|| SignatureError::MissingHeader(name.to_owned()))
}

/// Joins signing-string lines, refusing an absurd total.
fn join_lines(lines: &[String]) -> Result<String, SignatureError> {
    let len: usize = lines.iter().map(|l| l.len() + 1).sum();
    if len > MAX_COMPONENTS * MAX_HEADER_LEN {
        return Err(SignatureError::TooLong {
            header: "signing string".into(),
            len,
            limit: MAX_COMPONENTS * MAX_HEADER_LEN,
        });
    }
    Ok(lines.join("\n"))
}

/// The parameters of a cavage `Signature` (`name="value"` or `name=value`,
/// comma-separated), names as sent.
fn cavage_params(text: &str, header: &str) -> Result<Vec<(String, String)>, SignatureError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut out: Vec<(String, String)> = Vec::new();
    loop {
        while matches!(bytes.get(i), Some(b' ' | b'\t' | b',')) {
            i += 1;
        }
        if i >= bytes.len() {
            return Ok(out);
        }
        let start = i;
        while bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            i += 1;
        }
        let name = text.get(start..i).unwrap_or_default();
        if name.is_empty() {
            return Err(malformed(
                header,
                format!("expected a parameter name at byte {i}"),
            ));
        }
        while matches!(bytes.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            return Err(malformed(
                header,
                format!("parameter `{name}` has no `=value`"),
            ));
        }
        i += 1;
        while matches!(bytes.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        let value = if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut value = String::new();
            loop {
                match bytes.get(i) {
                    None => {
                        return Err(malformed(
                            header,
                            format!("the value of `{name}` has no closing `\"`"),
                        ));
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let escaped = bytes.get(i + 1).ok_or_else(|| {
                            malformed(header, format!("the value of `{name}` ends in `\\`"))
                        })?;
                        value.push(char::from(*escaped));
                        i += 2;
                    }
                    Some(b) => {
                        value.push(char::from(*b));
                        i += 1;
                    }
                }
            }
            value
        } else {
            let start = i;
            while bytes.get(i).is_some_and(|b| *b != b',') {
                i += 1;
            }
            text.get(start..i).unwrap_or_default().trim().to_owned()
        };
        if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(malformed(header, format!("`{name}` is given twice")));
        }
        if out.len() >= MAX_MEMBERS {
            return Err(malformed(header, "it has too many parameters"));
        }
        out.push((name.to_owned(), value));
    }
}

/// An integer timestamp parameter (`created`, `expires`); cavage allows a
/// fraction, which is dropped.
fn cavage_timestamp(value: &str, name: &str, header: &str) -> Result<u64, SignatureError> {
    let whole = value.split_once('.').map_or(value, |(whole, _)| whole);
    if whole.is_empty() || whole.len() > 15 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(
            header,
            format!("`{name}` is not a unix time in seconds"),
        ));
    }
    whole
        .parse()
        .map_err(|_| malformed(header, format!("`{name}` is not a unix time in seconds")))
}

fn parse_cavage(
    request: &Incoming<'_>,
    text: &str,
    header: &str,
) -> Result<Pending, SignatureError> {
    let params = cavage_params(text, header)?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let key_id = param("keyId").ok_or_else(|| {
        malformed(
            header,
            "it has no `keyId`; for an RFC 9421 signature send `Signature-Input` too",
        )
    })?;
    let signature = param("signature").ok_or_else(|| malformed(header, "it has no `signature`"))?;
    let alg_name = param("algorithm").unwrap_or("hs2019").to_ascii_lowercase();
    let alg = match alg_name.as_str() {
        "rsa-sha256" => Alg::RsaSha256,
        "hs2019" => Alg::ByKey,
        "ed25519" => Alg::Ed25519,
        _ => return Err(SignatureError::UnsupportedAlgorithm(alg_name)),
    };
    let created = param("created")
        .map(|v| cavage_timestamp(v, "created", header))
        .transpose()?;
    let expires = param("expires")
        .map(|v| cavage_timestamp(v, "expires", header))
        .transpose()?;
    let covered: Vec<String> = param("headers")
        .unwrap_or(if alg == Alg::RsaSha256 {
            "date"
        } else {
            "(created)"
        })
        .split_ascii_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    if covered.len() > MAX_COMPONENTS {
        return Err(malformed(header, "`headers` names too many headers"));
    }
    let covers = |name: &str| covered.iter().any(|c| c == name);
    if !covers("(request-target)") {
        return Err(SignatureError::NotCovered("(request-target)"));
    }
    if !covers("host") {
        return Err(SignatureError::NotCovered("host"));
    }
    if !covers("date") && !covers("(created)") {
        return Err(SignatureError::NotCovered("date"));
    }
    let signature = decode_signature(signature)?;

    let mut signed_at = None;
    if covers("(created)") {
        let at = created.ok_or_else(|| {
            malformed(
                header,
                "it covers `(created)` but has no `created` parameter",
            )
        })?;
        check_time("created", at, request)?;
        signed_at = Some(at);
    }
    if covers("date") {
        let date = covered_field(request, "date")?;
        let at = parse_http_date(&date).ok_or(SignatureError::BadDate)?;
        check_time("Date", at, request)?;
        signed_at = signed_at.or(Some(at));
    }
    if covers("(expires)") && expires.is_none() {
        return Err(malformed(
            header,
            "it covers `(expires)` but has no `expires` parameter",
        ));
    }
    if let Some(expires) = expires {
        check_expires(expires, request)?;
    }
    let present = check_digests(request)?;
    require_covered_digest(request, present, covers, Scheme::Cavage)?;

    let method = request.method.as_str().to_ascii_lowercase();
    let mut lines = Vec::with_capacity(covered.len());
    let mut target_line = None;
    for name in &covered {
        let value = match name.as_str() {
            "(request-target)" => {
                target_line = Some(lines.len());
                format!("{method} {}", request.target)
            }
            "(created)" => param("created").unwrap_or_default().to_owned(),
            "(expires)" => param("expires").unwrap_or_default().to_owned(),
            other if other.starts_with('(') => {
                return Err(SignatureError::UnsupportedComponent(other.to_owned()));
            }
            other if !is_field_name(other) => {
                return Err(malformed(header, "`headers` names an invalid header"));
            }
            other => covered_field(request, other)?,
        };
        lines.push(format!("{name}: {value}"));
    }
    let base = join_lines(&lines)?;
    let alternate = match (target_line, request.target.split_once('?')) {
        (Some(index), Some((path, _))) => {
            if let Some(line) = lines.get_mut(index) {
                *line = format!("(request-target): {method} {path}");
            }
            Some(join_lines(&lines)?)
        }
        _ => None,
    };
    Ok(Pending {
        key_id: key_id.to_owned(),
        scheme: Scheme::Cavage,
        base,
        alternate,
        signature,
        alg,
        alg_name,
        created: signed_at.unwrap_or(request.now),
    })
}

fn parse_rfc9421(
    request: &Incoming<'_>,
    input: &str,
    signature: &str,
) -> Result<Pending, SignatureError> {
    let inputs = sf::parse_dictionary(input).map_err(|e| match e {
        sf::Error::Base64 => malformed("Signature-Input", "a byte sequence is not base64"),
        sf::Error::Syntax(reason) => malformed("Signature-Input", reason),
    })?;
    let signatures = sf::parse_dictionary(signature).map_err(|e| match e {
        sf::Error::Base64 => SignatureError::BadSignatureEncoding,
        sf::Error::Syntax(reason) => malformed("Signature", reason),
    })?;
    let chosen = inputs.iter().find_map(|(label, member)| {
        let sf::Member::Inner(items, params) = member else {
            return None;
        };
        signatures.iter().find_map(|(l, m)| match m {
            sf::Member::Item(sf::Bare::Bytes(bytes), _) if l == label => {
                Some((items, params, bytes))
            }
            _ => None,
        })
    });
    let Some((items, params, signature)) = chosen else {
        return Err(malformed(
            "Signature",
            "no label in `Signature` (`label=:<base64>:`) matches an inner list in \
             `Signature-Input` (`label=(\"@method\" …);created=…;keyid=\"…\"`)",
        ));
    };
    if signature.is_empty() || signature.len() > MAX_SIGNATURE_LEN {
        return Err(SignatureError::BadSignatureEncoding);
    }

    let mut key_id = None;
    let mut created = None;
    let mut expires = None;
    let mut alg_name = None;
    for (name, value) in params {
        match (name.as_str(), value) {
            ("keyid", sf::Bare::Str(s)) => key_id = Some(s.clone()),
            ("created", sf::Bare::Int(n)) => created = Some(*n),
            ("expires", sf::Bare::Int(n)) => expires = Some(*n),
            ("alg", sf::Bare::Str(s)) => alg_name = Some(s.clone()),
            ("keyid" | "alg", _) => {
                return Err(malformed(
                    "Signature-Input",
                    format!("`{name}` must be a string"),
                ));
            }
            ("created" | "expires", _) => {
                return Err(malformed(
                    "Signature-Input",
                    format!("`{name}` must be an integer"),
                ));
            }
            _ => {}
        }
    }
    let key_id = key_id.ok_or_else(|| {
        malformed(
            "Signature-Input",
            "it has no `keyid`; add `;keyid=\"<key URL>\"`",
        )
    })?;
    let alg = match alg_name.as_deref() {
        None => Alg::ByKey,
        Some("ed25519") => Alg::Ed25519,
        Some("rsa-v1_5-sha256") => Alg::RsaSha256,
        Some(other) => return Err(SignatureError::UnsupportedAlgorithm(other.to_owned())),
    };
    let timestamp = |n: i64, name: &str| {
        u64::try_from(n).map_err(|_| {
            malformed(
                "Signature-Input",
                format!("`{name}` is not a unix time in seconds"),
            )
        })
    };
    let created = timestamp(created.ok_or(SignatureError::NoCreated)?, "created")?;
    let expires = expires.map(|n| timestamp(n, "expires")).transpose()?;

    let mut covered: Vec<&str> = Vec::with_capacity(items.len());
    for (item, item_params) in items {
        let sf::Bare::Str(name) = item else {
            return Err(malformed(
                "Signature-Input",
                "covered components must be strings",
            ));
        };
        if !item_params.is_empty() {
            return Err(SignatureError::UnsupportedComponent(sf::serialize_item(
                item,
                item_params,
            )));
        }
        if covered.contains(&name.as_str()) {
            return Err(malformed(
                "Signature-Input",
                format!("`{name}` is covered twice"),
            ));
        }
        covered.push(name);
    }
    if covered.len() > MAX_COMPONENTS {
        return Err(malformed(
            "Signature-Input",
            "it covers too many components",
        ));
    }
    let covers = |name: &str| covered.contains(&name);
    if !covers("@method") {
        return Err(SignatureError::NotCovered("@method"));
    }
    if !covers("@target-uri")
        && !(covers("@authority") && (covers("@path") || covers("@request-target")))
    {
        return Err(SignatureError::NotCovered("@target-uri"));
    }
    check_time("created", created, request)?;
    if let Some(expires) = expires {
        check_expires(expires, request)?;
    }
    let present = check_digests(request)?;
    require_covered_digest(request, present, covers, Scheme::Rfc9421)?;

    let authority = || -> Result<String, SignatureError> {
        let host = field(request.headers, "host", "Host")?
            .ok_or_else(|| SignatureError::MissingHeader("host".into()))?;
        normalize_authority(&host, request.uri_scheme)
            .ok_or_else(|| malformed("Host", "it is not a host with an optional port"))
    };
    let (path, query) = match request.target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (request.target, None),
    };
    let mut lines = Vec::with_capacity(covered.len() + 1);
    for name in &covered {
        let value = match *name {
            "@method" => request.method.as_str().to_owned(),
            "@target-uri" => {
                if request.target.starts_with('/') {
                    format!(
                        "{}://{}{}",
                        request.uri_scheme.to_ascii_lowercase(),
                        authority()?,
                        request.target
                    )
                } else {
                    request.target.to_owned()
                }
            }
            "@authority" => authority()?,
            "@scheme" => request.uri_scheme.to_ascii_lowercase(),
            "@request-target" => request.target.to_owned(),
            "@path" => {
                if path.is_empty() {
                    "/".to_owned()
                } else {
                    path.to_owned()
                }
            }
            "@query" => format!("?{}", query.unwrap_or_default()),
            other if other.starts_with('@') => {
                return Err(SignatureError::UnsupportedComponent(other.to_owned()));
            }
            other if !is_field_name(other) => {
                return Err(malformed(
                    "Signature-Input",
                    "a covered header name is not a lowercase token",
                ));
            }
            other => covered_field(request, other)?,
        };
        lines.push(format!("\"{name}\": {value}"));
    }
    lines.push(format!(
        "\"@signature-params\": {}",
        sf::serialize_inner_list(items, params)
    ));
    Ok(Pending {
        key_id,
        scheme: Scheme::Rfc9421,
        base: join_lines(&lines)?,
        alternate: None,
        signature: signature.clone(),
        alg,
        alg_name: alg_name.unwrap_or_default(),
        created,
    })
}

// ---------------------------------------------------------------------------
// Time

fn unix_seconds(t: SystemTime) -> Result<u64, SignatureError> {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| SignatureError::Clock)
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day counted from 1970-01-01: (year, month 1–12, day 1–31).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `secs` (unix seconds) as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn format_http_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX / 2));
    let weekday = WEEKDAYS[usize::try_from((days + 4) % 7).unwrap_or(0) % 7];
    let month = MONTHS[usize::try_from(month - 1).unwrap_or(0) % 12];
    format!(
        "{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as unix seconds;
/// `None` for anything else or a time before 1970.
pub fn parse_http_date(text: &str) -> Option<u64> {
    if text.len() != 29 || !text.is_ascii() {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let literal = |range: std::ops::Range<usize>, expected: &str| text.get(range) == Some(expected);
    if !WEEKDAYS.contains(&text.get(0..3)?)
        || !literal(3..5, ", ")
        || !literal(7..8, " ")
        || !literal(11..12, " ")
        || !literal(16..17, " ")
        || !literal(19..20, ":")
        || !literal(22..23, ":")
        || !literal(25..29, " GMT")
    {
        return None;
    }
    let day = number(5..7)?;
    let month_name = text.get(8..11)?;
    let month = i64::try_from(MONTHS.iter().position(|m| *m == month_name)? + 1).ok()?;
    let year = number(12..16)?;
    let (hour, minute, second) = (number(17..19)?, number(20..22)?, number(23..25)?);
    if year < 1970
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

// ---------------------------------------------------------------------------
// Structured fields (RFC 8941), as far as signatures and digests use them.

mod sf {
    use data_encoding::{BASE64, BASE64_NOPAD};

    use super::MAX_MEMBERS;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Bare {
        Int(i64),
        Str(String),
        Token(String),
        Bytes(Vec<u8>),
        Bool(bool),
    }

    pub type Params = Vec<(String, Bare)>;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Member {
        Item(Bare, Params),
        Inner(Vec<(Bare, Params)>, Params),
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Error {
        Syntax(String),
        Base64,
    }

    /// Most items in one inner list.
    const MAX_ITEMS: usize = 64;

    struct Parser<'a> {
        input: &'a [u8],
        at: usize,
    }

    /// Parses a dictionary; a repeated key keeps its first place and its
    /// last value (RFC 8941 §4.2.2).
    pub fn parse_dictionary(text: &str) -> Result<Vec<(String, Member)>, Error> {
        let mut parser = Parser {
            input: text.as_bytes(),
            at: 0,
        };
        let mut out: Vec<(String, Member)> = Vec::new();
        parser.skip_sp();
        if parser.peek().is_none() {
            return Ok(out);
        }
        loop {
            let key = parser.key()?;
            let member = if parser.peek() == Some(b'=') {
                parser.at += 1;
                parser.item_or_inner_list()?
            } else {
                Member::Item(Bare::Bool(true), parser.params()?)
            };
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some(existing) => existing.1 = member,
                None => {
                    if out.len() >= MAX_MEMBERS {
                        return Err(parser.error("too many members"));
                    }
                    out.push((key, member));
                }
            }
            parser.skip_ows();
            if parser.peek().is_none() {
                return Ok(out);
            }
            if parser.peek() != Some(b',') {
                return Err(parser.error("expected `,` between members"));
            }
            parser.at += 1;
            parser.skip_ows();
            if parser.peek().is_none() {
                return Err(parser.error("a trailing `,`"));
            }
        }
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<u8> {
            self.input.get(self.at).copied()
        }

        fn error(&self, what: &str) -> Error {
            Error::Syntax(format!("{what} at byte {}", self.at))
        }

        fn skip_sp(&mut self) {
            while self.peek() == Some(b' ') {
                self.at += 1;
            }
        }

        fn skip_ows(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t')) {
                self.at += 1;
            }
        }

        fn key(&mut self) -> Result<String, Error> {
            match self.peek() {
                Some(b) if b.is_ascii_lowercase() || b == b'*' => {}
                _ => return Err(self.error("expected a lowercase key")),
            }
            let start = self.at;
            while self.peek().is_some_and(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b)
            }) {
                self.at += 1;
            }
            Ok(
                String::from_utf8_lossy(self.input.get(start..self.at).unwrap_or_default())
                    .into_owned(),
            )
        }

        fn item_or_inner_list(&mut self) -> Result<Member, Error> {
            if self.peek() == Some(b'(') {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_sp();
                    if self.peek() == Some(b')') {
                        self.at += 1;
                        return Ok(Member::Inner(items, self.params()?));
                    }
                    if items.len() >= MAX_ITEMS {
                        return Err(self.error("too many items in an inner list"));
                    }
                    let bare = self.bare()?;
                    items.push((bare, self.params()?));
                    if !matches!(self.peek(), Some(b' ' | b')')) {
                        return Err(self.error("expected ` ` or `)` in an inner list"));
                    }
                }
            }
            let bare = self.bare()?;
            Ok(Member::Item(bare, self.params()?))
        }

        fn params(&mut self) -> Result<Params, Error> {
            let mut out: Params = Vec::new();
            while self.peek() == Some(b';') {
                self.at += 1;
                self.skip_sp();
                let key = self.key()?;
                let value = if self.peek() == Some(b'=') {
                    self.at += 1;
                    self.bare()?
                } else {
                    Bare::Bool(true)
                };
                match out.iter_mut().find(|(k, _)| *k == key) {
                    Some(existing) => existing.1 = value,
                    None => {
                        if out.len() >= MAX_MEMBERS {
                            return Err(self.error("too many parameters"));
                        }
                        out.push((key, value));
                    }
                }
            }
            Ok(out)
        }

        fn bare(&mut self) -> Result<Bare, Error> {
            match self.peek() {
                Some(b'-' | b'0'..=b'9') => self.integer(),
                Some(b'"') => self.string(),
                Some(b':') => self.bytes(),
                Some(b'?') => self.boolean(),
                Some(b) if b.is_ascii_alphabetic() || b == b'*' => Ok(self.token()),
                _ => Err(self.error("expected an item")),
            }
        }

        fn integer(&mut self) -> Result<Bare, Error> {
            let negative = self.peek() == Some(b'-');
            if negative {
                self.at += 1;
            }
            let start = self.at;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.at += 1;
            }
            let digits = self.input.get(start..self.at).unwrap_or_default();
            if digits.is_empty() || digits.len() > 15 {
                return Err(self.error("an integer must have 1 to 15 digits"));
            }
            if self.peek() == Some(b'.') {
                return Err(self.error("decimals are not accepted here"));
            }
            let value = digits
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
            Ok(Bare::Int(if negative { -value } else { value }))
        }

        fn string(&mut self) -> Result<Bare, Error> {
            self.at += 1;
            let mut out = String::new();
            loop {
                match self.peek() {
                    None => return Err(self.error("a string has no closing `\"`")),
                    Some(b'"') => {
                        self.at += 1;
                        return Ok(Bare::Str(out));
                    }
                    Some(b'\\') => {
                        self.at += 1;
                        match self.peek() {
                            Some(c @ (b'"' | b'\\')) => {
                                out.push(char::from(c));
                                self.at += 1;
                            }
                            _ => return Err(self.error("a string has a bad escape")),
                        }
                    }
                    Some(c @ 0x20..=0x7e) => {
                        out.push(char::from(c));
                        self.at += 1;
                    }
                    Some(_) => {
                        return Err(
                            self.error("a string has a character that is not visible ASCII")
                        );
                    }
                }
            }
        }

        fn bytes(&mut self) -> Result<Bare, Error> {
            self.at += 1;
            let start = self.at;
            while self
                .peek()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
            {
                self.at += 1;
            }
            let encoded = self.input.get(start..self.at).unwrap_or_default();
            if self.peek() != Some(b':') {
                return Err(match self.peek() {
                    None => self.error("a byte sequence has no closing `:`"),
                    Some(_) => Error::Base64,
                });
            }
            self.at += 1;
            BASE64
                .decode(encoded)
                .or_else(|_| BASE64_NOPAD.decode(encoded))
                .map(Bare::Bytes)
                .map_err(|_| Error::Base64)
        }

        fn boolean(&mut self) -> Result<Bare, Error> {
            self.at += 1;
            let value = match self.peek() {
                Some(b'1') => true,
                Some(b'0') => false,
                _ => return Err(self.error("a boolean must be `?0` or `?1`")),
            };
            self.at += 1;
            Ok(Bare::Bool(value))
        }

        fn token(&mut self) -> Bare {
            let start = self.at;
            self.at += 1;
            while self
                .peek()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b))
            {
                self.at += 1;
            }
            Bare::Token(
                String::from_utf8_lossy(self.input.get(start..self.at).unwrap_or_default())
                    .into_owned(),
            )
        }
    }

    fn serialize_bare(bare: &Bare, out: &mut String) {
        match bare {
            Bare::Int(n) => out.push_str(&n.to_string()),
            Bare::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
            Bare::Token(t) => out.push_str(t),
            Bare::Bytes(b) => {
                out.push(':');
                out.push_str(&BASE64.encode(b));
                out.push(':');
            }
            Bare::Bool(b) => out.push_str(if *b { "?1" } else { "?0" }),
        }
    }

    fn serialize_params(params: &Params, out: &mut String) {
        for (key, value) in params {
            out.push(';');
            out.push_str(key);
            if *value != Bare::Bool(true) {
                out.push('=');
                serialize_bare(value, out);
            }
        }
    }

    /// An item with its parameters, serialized (RFC 8941 §4.1.3).
    pub fn serialize_item(bare: &Bare, params: &Params) -> String {
        let mut out = String::new();
        serialize_bare(bare, &mut out);
        serialize_params(params, &mut out);
        out
    }

    /// An inner list with its parameters, serialized (RFC 8941 §4.1.1.1).
    pub fn serialize_inner_list(items: &[(Bare, Params)], params: &Params) -> String {
        let mut out = String::from("(");
        for (i, (bare, item_params)) in items.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            serialize_bare(bare, &mut out);
            serialize_params(item_params, &mut out);
        }
        out.push(')');
        serialize_params(params, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// A fixed time: Tue, 14 Nov 2023 22:13:20 GMT.
    const NOW: u64 = 1_700_000_000;

    const BODY: &[u8] = br#"{"type":"Follow","actor":"https://a.example/u/alice"}"#;

    fn ed25519_key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[7; 32])
    }

    fn ed25519_public() -> PublicKey {
        PublicKey::Ed25519(ed25519_key().verifying_key().to_bytes())
    }

    fn rsa_key() -> &'static RsaKey {
        static KEY: std::sync::OnceLock<RsaKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| RsaKey::generate().expect("an RSA key"))
    }

    fn other_rsa_key() -> &'static RsaKey {
        static KEY: std::sync::OnceLock<RsaKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| RsaKey::generate().expect("an RSA key"))
    }

    /// The headers a server receives for a request `sign` signed: its
    /// output plus `Host` (as the client adds it) and `Content-Type`.
    fn received(signed: Vec<(HeaderName, HeaderValue)>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        set(&mut headers, "host", host);
        set(&mut headers, "content-type", "application/activity+json");
        for (name, value) in signed {
            headers.append(name, value);
        }
        headers
    }

    fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
        headers.insert(name, HeaderValue::from_str(value).expect("a header value"));
    }

    /// A request to `https://b.example/inbox` signed with key id `k` at
    /// `now`, as b.example receives it.
    fn signed(scheme: Scheme, signer: Signer<'_>, body: Option<&[u8]>, now: u64) -> HeaderMap {
        let url = "https://b.example/inbox";
        let method = if body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let headers = sign(scheme, &method, url, body, "k", signer, at(now)).expect("signed");
        received(headers, "b.example")
    }

    fn cavage_post(now: u64) -> HeaderMap {
        signed(Scheme::Cavage, Signer::Rsa(rsa_key()), Some(BODY), now)
    }

    fn ed25519_post(body: Option<&[u8]>, now: u64) -> HeaderMap {
        signed(Scheme::Rfc9421, Signer::Ed25519(&ed25519_key()), body, now)
    }

    /// `parse` at `NOW` with the default window.
    fn check(
        method: Method,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
        uri_scheme: &str,
    ) -> Result<Pending, SignatureError> {
        parse(
            &method,
            target,
            headers,
            body,
            uri_scheme,
            Window::default(),
            at(NOW),
        )
    }

    fn check_post(headers: &HeaderMap, body: &[u8]) -> Result<Pending, SignatureError> {
        check(Method::POST, "/inbox", headers, body, "https")
    }

    fn round_trip(scheme: Scheme, signer: Signer<'_>, key: &PublicKey, body: Option<&[u8]>) {
        let method = if body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let url = "https://b.example/inbox?x=1";
        let key_id = "https://a.example/u/alice#main-key";
        let headers = sign(scheme, &method, url, body, key_id, signer, at(NOW)).expect("signed");
        let headers = received(headers, "b.example");
        let body = body.unwrap_or_default();
        let pending = parse(
            &method,
            "/inbox?x=1",
            &headers,
            body,
            "https",
            Window::default(),
            at(NOW + 5),
        )
        .expect("parsed");
        assert_eq!(pending.key_id, key_id);
        assert_eq!(pending.scheme, scheme);
        assert_eq!(pending.created(), NOW);
        let evidence = pending.verify(key).expect("verified");
        assert_eq!(
            (evidence.scheme, evidence.key_id.as_str(), evidence.created),
            (scheme, key_id, NOW)
        );
    }

    #[test]
    fn cavage_rsa_round_trips() {
        let key = rsa_key();
        round_trip(
            Scheme::Cavage,
            Signer::Rsa(key),
            &PublicKey::of_rsa(key),
            Some(BODY),
        );
        round_trip(
            Scheme::Cavage,
            Signer::Rsa(key),
            &PublicKey::of_rsa(key),
            None,
        );
    }

    #[test]
    fn rfc9421_rsa_round_trips() {
        let key = rsa_key();
        round_trip(
            Scheme::Rfc9421,
            Signer::Rsa(key),
            &PublicKey::of_rsa(key),
            Some(BODY),
        );
        round_trip(
            Scheme::Rfc9421,
            Signer::Rsa(key),
            &PublicKey::of_rsa(key),
            None,
        );
    }

    #[test]
    fn rfc9421_ed25519_round_trips() {
        let key = ed25519_key();
        round_trip(
            Scheme::Rfc9421,
            Signer::Ed25519(&key),
            &ed25519_public(),
            Some(BODY),
        );
        round_trip(
            Scheme::Rfc9421,
            Signer::Ed25519(&key),
            &ed25519_public(),
            None,
        );
    }

    #[test]
    fn signs_what_the_client_sends() {
        let key = rsa_key();
        let url = "HTTPS://B.Example:443/inbox#fragment";
        let headers = sign(
            Scheme::Cavage,
            &Method::POST,
            url,
            Some(b"{}"),
            "https://a.example/k",
            Signer::Rsa(key),
            at(784_111_777),
        )
        .expect("signed");
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["date", "digest", "signature"]);
        assert_eq!(headers[0].1, "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            headers[1].1,
            "SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
        );
        assert!(headers[2].1.to_str().expect("ascii").starts_with(
            "keyId=\"https://a.example/k\",algorithm=\"rsa-sha256\",\
             headers=\"(request-target) host date digest\",signature=\""
        ));
        // The default port is dropped, a path is always there, the fragment never is.
        let headers = received(headers, "b.example");
        let pending = parse(
            &Method::POST,
            "/inbox",
            &headers,
            b"{}",
            "https",
            Window::default(),
            at(784_111_777),
        )
        .expect("parsed");
        assert_eq!(
            pending.base,
            "(request-target): post /inbox\nhost: b.example\ndate: Sun, 06 Nov 1994 08:49:37 GMT\n\
             digest: SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
        );
        pending.verify(&PublicKey::of_rsa(key)).expect("verified");

        // Another port is kept, in `host` and `@target-uri`.
        let ed = ed25519_key();
        let headers = sign(
            Scheme::Rfc9421,
            &Method::GET,
            "http://b.example:8080",
            None,
            "https://a.example/k",
            Signer::Ed25519(&ed),
            at(NOW),
        )
        .expect("signed");
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["date", "signature-input", "signature"]);
        let params = "(\"@method\" \"@target-uri\" \"@authority\" \"date\");created=1700000000;\
                      keyid=\"https://a.example/k\";alg=\"ed25519\"";
        assert_eq!(headers[1].1, format!("sig1={params}").as_str());
        let headers = received(headers, "b.example:8080");
        let pending = check(Method::GET, "/", &headers, b"", "http").expect("parsed");
        assert_eq!(
            pending.base,
            format!(
                "\"@method\": GET\n\"@target-uri\": http://b.example:8080/\n\"@authority\": b.example:8080\n\
                 \"date\": Tue, 14 Nov 2023 22:13:20 GMT\n\"@signature-params\": {params}"
            )
        );
        pending.verify(&ed25519_public()).expect("verified");

        // With a body, RFC 9421 sends and covers `Content-Digest`.
        let headers = sign(
            Scheme::Rfc9421,
            &Method::POST,
            "https://b.example/inbox",
            Some(b"{}"),
            "k",
            Signer::Ed25519(&ed),
            at(NOW),
        )
        .expect("signed");
        assert_eq!(
            headers[1],
            (
                HeaderName::from_static("content-digest"),
                HeaderValue::from_static("sha-256=:RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=:")
            )
        );
        assert!(headers[2].1.to_str().expect("ascii").starts_with(
            "sig1=(\"@method\" \"@target-uri\" \"@authority\" \"date\" \"content-digest\");"
        ));
    }

    #[test]
    fn refuses_to_sign_what_it_cannot() {
        let key = rsa_key();
        let ed = ed25519_key();
        let sign_to = |url: &str, key_id: &str, signer| {
            sign(
                Scheme::Cavage,
                &Method::GET,
                url,
                None,
                key_id,
                signer,
                at(NOW),
            )
        };
        assert_eq!(
            sign_to("https://b.example/", "k", Signer::Ed25519(&ed)),
            Err(SignatureError::NeedsRsa)
        );
        for url in [
            "b.example/inbox",
            "ftp://b.example/",
            "https:///x",
            "https://u@b.example/",
            "https://b.example/a b",
            "https://b.example:99999/",
            "https://b.example/é",
        ] {
            let result = sign_to(url, "k", Signer::Rsa(key));
            assert!(
                matches!(result, Err(SignatureError::BadUrl { .. })),
                "{url}"
            );
        }
        for key_id in ["", "k\"", "k\\", "k k"] {
            let result = sign_to("https://b.example/", key_id, Signer::Rsa(key));
            assert!(
                matches!(result, Err(SignatureError::BadKeyId(_))),
                "{key_id}"
            );
        }
    }

    #[test]
    fn rsa_keys_round_trip_through_pkcs8_and_pem() {
        let key = rsa_key();
        let again = RsaKey::from_pkcs8_der(&key.to_pkcs8_der()).expect("parsed");
        assert_eq!(again.public_key_der(), key.public_key_der());
        let pem = key.public_key_pem();
        assert!(pem.starts_with(
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
        ));
        assert!(pem.ends_with("\n-----END PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|line| line.len() <= 64));
        assert_eq!(
            PublicKey::from_pem(&pem).expect("read"),
            PublicKey::of_rsa(key)
        );
        assert_eq!(format!("{key:?}"), "RsaKey { bits: 2048, .. }");
        assert!(!format!("{:?}", Signer::Rsa(key)).contains("MII"));
        assert!(matches!(
            RsaKey::from_pkcs8_der(b"not a key"),
            Err(weft_core::identity::rsa::RsaError::Rejected(_))
        ));
    }

    /// draft-cavage-http-signatures-12, Appendix C: the test key.
    const CAVAGE_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3
6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6
Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw
oYi+1hqp1fIekaxsyQIDAQAB
-----END PUBLIC KEY-----
";

    /// The same key as PKCS#1, as some servers publish theirs.
    const CAVAGE_PUBLIC_PKCS1: &str = "-----BEGIN RSA PUBLIC KEY-----
MIGJAoGBAMIUQ0bDffIaKHL3akONlCGXQLfqs8mP4K99ILz6rbyHEDXrVAU1R3Xf
C4JNRyrRB3aqwF7/aEXJzYMIkmDSHUvvz7pnhQxHsQ5yl91QT0d/eb+Gz4VRHjm4
El4MrUdIUcPxscoPqS/wU8Z8lOi1z7bGMnChiL7WGqnV8h6RrGzJAgMBAAE=
-----END RSA PUBLIC KEY-----
";

    /// The Appendix C request, `POST /foo?param=value&pet=dog`, and its body.
    fn cavage_request() -> HeaderMap {
        let mut headers = HeaderMap::new();
        set(&mut headers, "host", "example.com");
        set(&mut headers, "date", "Sun, 05 Jan 2014 21:31:40 GMT");
        set(&mut headers, "content-type", "application/json");
        set(
            &mut headers,
            "digest",
            "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
        );
        set(&mut headers, "content-length", "18");
        headers
    }

    const CAVAGE_BODY: &[u8] = br#"{"hello": "world"}"#;
    const CAVAGE_TARGET: &str = "/foo?param=value&pet=dog";
    /// Sun, 05 Jan 2014 21:31:40 GMT.
    const CAVAGE_NOW: u64 = 1_388_957_500;
    /// The test key is RSA-1024, which only the legacy parameters take.
    const LEGACY: &RsaParameters =
        &aws_lc_rs::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY;

    fn check_cavage(headers: &HeaderMap, body: &[u8]) -> Result<Pending, SignatureError> {
        parse(
            &Method::POST,
            CAVAGE_TARGET,
            headers,
            body,
            "https",
            Window::default(),
            at(CAVAGE_NOW),
        )
    }

    #[test]
    fn reads_pkcs1_and_spki_pems_alike() {
        let spki = PublicKey::from_pem(CAVAGE_PUBLIC).expect("spki");
        assert_eq!(
            PublicKey::from_pem(CAVAGE_PUBLIC_PKCS1).expect("pkcs1"),
            spki
        );
        // A `publicKeyPem` may come with \r\n and odd indentation.
        let crlf = CAVAGE_PUBLIC.replace('\n', "\r\n  ");
        assert_eq!(PublicKey::from_pem(&crlf).expect("crlf"), spki);
        for bad in [
            "",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n",
        ] {
            assert!(
                matches!(PublicKey::from_pem(bad), Err(SignatureError::BadKey(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn cavage_appendix_c2_basic_test() {
        let mut headers = cavage_request();
        set(
            &mut headers,
            "signature",
            "keyId=\"Test\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date\",\
             signature=\"qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2a\
             Ajn7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdD\
             Emn04swr2Os0=\"",
        );
        // The body is not covered, so with it the request is refused…
        let err = check_cavage(&headers, CAVAGE_BODY).expect_err("digest not covered");
        assert_eq!(err, SignatureError::NotCovered("digest"));
        // …and the signing string is checked without it (nor its digest).
        headers.remove("digest");
        let pending = check_cavage(&headers, b"").expect("parsed");
        assert_eq!(
            pending.base,
            "(request-target): post /foo?param=value&pet=dog\nhost: example.com\n\
             date: Sun, 05 Jan 2014 21:31:40 GMT"
        );
        let key = PublicKey::from_pem(CAVAGE_PUBLIC).expect("key");
        let evidence = pending.verify_with(&key, LEGACY).expect("verified");
        assert_eq!(evidence.created, CAVAGE_NOW);
        // RSA-1024 is refused by the real check.
        let pending = check_cavage(&headers, b"").expect("parsed");
        assert!(matches!(
            pending.verify(&key),
            Err(SignatureError::Invalid(_))
        ));
    }

    #[test]
    fn cavage_appendix_c3_all_headers_test() {
        let mut headers = cavage_request();
        // The signature printed for C.3 covers these headers (the
        // `(created) (expires)` in draft 12's text were never signed).
        set(
            &mut headers,
            "authorization",
            "Signature keyId=\"Test\",algorithm=\"rsa-sha256\",\
             headers=\"(request-target) host date content-type digest content-length\",\
             signature=\"vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32Nf\
             pB2bEKBIvB1q52LaEUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zk\
             ly4zKH7s1dE=\"",
        );
        let pending = check_cavage(&headers, CAVAGE_BODY).expect("parsed");
        assert_eq!(pending.key_id, "Test");
        let expected = "(request-target): post /foo?param=value&pet=dog\nhost: example.com\n\
                        date: Sun, 05 Jan 2014 21:31:40 GMT\ncontent-type: application/json\n\
                        digest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\ncontent-length: 18";
        assert_eq!(pending.base, expected);
        let key = PublicKey::from_pem(CAVAGE_PUBLIC_PKCS1).expect("key");
        let evidence = pending.verify_with(&key, LEGACY).expect("verified");
        assert_eq!(evidence.signed, expected);
        assert!(evidence.signature.starts_with("vSdrb+dS3EceC9bc"));
        // The body is bound: another one is refused before any key is fetched.
        let err = check_cavage(&headers, b"{\"hello\": \"there\"}").expect_err("other body");
        assert_eq!(err, SignatureError::DigestMismatch("Digest"));
    }

    /// RFC 9421 Appendix B.1.4, test-key-ed25519 (PKCS#8 and SPKI).
    const RFC_ED25519_PRIVATE: &str =
        "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF";
    const RFC_ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
";
    const RFC_B26_SIGNATURE: &str =
        "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==";

    #[test]
    fn rfc9421_appendix_b26_ed25519() {
        let mut headers = HeaderMap::new();
        set(&mut headers, "host", "example.com");
        set(&mut headers, "date", "Tue, 20 Apr 2021 02:07:55 GMT");
        set(&mut headers, "content-type", "application/json");
        set(&mut headers, "content-length", "18");
        set(
            &mut headers,
            "signature-input",
            "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \
             \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"",
        );
        set(
            &mut headers,
            "signature",
            &format!("sig-b26=:{RFC_B26_SIGNATURE}:"),
        );
        let expected = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\
                        \"@authority\": example.com\n\"content-type\": application/json\n\
                        \"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \"@path\" \
                        \"@authority\" \"content-type\" \"content-length\");created=1618884473;\
                        keyid=\"test-key-ed25519\"";
        let target = "/foo?param=Value&Pet=dog";
        let now = at(1_618_884_473);
        let window = Window::default();
        // With its body the example is refused: nothing binds the body.
        let err = parse(
            &Method::POST,
            target,
            &headers,
            CAVAGE_BODY,
            "https",
            window,
            now,
        )
        .expect_err("no digest");
        assert_eq!(err, SignatureError::NoDigest);
        let pending =
            parse(&Method::POST, target, &headers, b"", "https", window, now).expect("parsed");
        assert_eq!(pending.key_id, "test-key-ed25519");
        assert_eq!(pending.base, expected);

        let public = PublicKey::from_pem(RFC_ED25519_PUBLIC).expect("public key");
        let evidence = pending.verify(&public).expect("verified");
        assert_eq!(evidence.signed, expected);
        assert_eq!(evidence.signature, RFC_B26_SIGNATURE);
        assert_eq!(evidence.created, 1_618_884_473);

        // Ed25519 is deterministic: the RFC's key signs the base to the RFC's value.
        let pkcs8 = BASE64
            .decode(RFC_ED25519_PRIVATE.as_bytes())
            .expect("base64");
        let seed: [u8; 32] = pkcs8[pkcs8.len() - 32..].try_into().expect("32 bytes");
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        assert_eq!(PublicKey::Ed25519(key.verifying_key().to_bytes()), public);
        assert_eq!(
            BASE64.encode(&key.sign(expected.as_bytes()).to_bytes()),
            RFC_B26_SIGNATURE
        );
    }

    /// A request signed as Mastodon signs: `hs2019` over `(request-target)
    /// host date digest content-type`, with `target_signed` as the target.
    fn mastodon_request(target_signed: &str) -> HeaderMap {
        let date = format_http_date(NOW);
        let digest = format!("SHA-256={}", BASE64.encode(&sha256(BODY)));
        let signing = format!(
            "(request-target): post {target_signed}\nhost: b.example\ndate: {date}\n\
             digest: {digest}\ncontent-type: application/activity+json"
        );
        let signature = BASE64.encode(&rsa_key().sign(signing.as_bytes()).expect("signed"));
        let mut headers = HeaderMap::new();
        set(&mut headers, "host", "b.example");
        set(&mut headers, "date", &date);
        set(&mut headers, "digest", &digest);
        set(&mut headers, "content-type", "application/activity+json");
        set(
            &mut headers,
            "signature",
            &format!(
                "keyId=\"https://a.example/users/alice#main-key\",algorithm=\"hs2019\",\
                 headers=\"(request-target) host date digest content-type\",signature=\"{signature}\""
            ),
        );
        headers
    }

    #[test]
    fn mastodon_shaped_request_verifies() {
        let headers = mastodon_request("/users/bob/inbox");
        let pending =
            check(Method::POST, "/users/bob/inbox", &headers, BODY, "https").expect("parsed");
        assert_eq!(pending.key_id, "https://a.example/users/alice#main-key");
        let evidence = pending
            .verify(&PublicKey::of_rsa(rsa_key()))
            .expect("verified");
        assert!(
            evidence
                .signed
                .ends_with("\ncontent-type: application/activity+json")
        );

        // Mastodon and Fedify have signed `(request-target)` without the query.
        let headers = mastodon_request("/inbox");
        let pending = check(Method::POST, "/inbox?a=b", &headers, BODY, "https").expect("parsed");
        let evidence = pending
            .verify(&PublicKey::of_rsa(rsa_key()))
            .expect("verified without the query");
        assert!(
            evidence
                .signed
                .starts_with("(request-target): post /inbox\n")
        );
    }

    #[test]
    fn fedify_shaped_request_verifies() {
        // Fedify's order of parameters, and `host` covered besides `@authority`.
        let digest = format!("sha-256=:{}:", BASE64.encode(&sha256(BODY)));
        let date = format_http_date(NOW);
        let params = "(\"@method\" \"@target-uri\" \"@authority\" \"host\" \"date\" \"content-digest\");\
                      alg=\"rsa-v1_5-sha256\";keyid=\"https://a.example/u/alice#main-key\";created=1700000000";
        let base = format!(
            "\"@method\": POST\n\"@target-uri\": https://b.example/inbox\n\"@authority\": b.example\n\
             \"host\": b.example\n\"date\": {date}\n\"content-digest\": {digest}\n\"@signature-params\": {params}"
        );
        let signature = BASE64.encode(&rsa_key().sign(base.as_bytes()).expect("signed"));
        let mut headers = HeaderMap::new();
        set(&mut headers, "host", "b.example");
        set(&mut headers, "date", &date);
        set(&mut headers, "content-digest", &digest);
        set(&mut headers, "signature-input", &format!("sig1={params}"));
        set(&mut headers, "signature", &format!("sig1=:{signature}:"));
        let pending = check_post(&headers, BODY).expect("parsed");
        assert_eq!(pending.signed(), base);
        let evidence = pending
            .verify(&PublicKey::of_rsa(rsa_key()))
            .expect("verified");
        assert_eq!(evidence.scheme, Scheme::Rfc9421);
        assert_eq!(evidence.key_id, "https://a.example/u/alice#main-key");
    }

    #[test]
    fn refuses_an_unsigned_request() {
        let mut headers = HeaderMap::new();
        set(&mut headers, "host", "b.example");
        assert_eq!(
            check_post(&headers, BODY).expect_err("unsigned"),
            SignatureError::Unsigned
        );
        set(&mut headers, "authorization", "Bearer abc");
        assert_eq!(
            check_post(&headers, BODY).expect_err("unsigned"),
            SignatureError::Unsigned
        );
        assert!(
            SignatureError::Unsigned
                .to_string()
                .contains("`Signature-Input`")
        );
    }

    #[test]
    fn refuses_a_digest_that_does_not_match() {
        let err = check_post(&cavage_post(NOW), b"{\"type\":\"Delete\"}").expect_err("mismatch");
        assert_eq!(err, SignatureError::DigestMismatch("Digest"));
        assert_eq!(err.to_string(), "`Digest` does not match the body");

        let err = check_post(&ed25519_post(Some(BODY), NOW), b"{}").expect_err("mismatch");
        assert_eq!(err, SignatureError::DigestMismatch("Content-Digest"));

        let mut headers = cavage_post(NOW);
        set(&mut headers, "digest", "MD5=Sd/dVLAcvNLSq16eXua5uQ==");
        assert_eq!(
            check_post(&headers, BODY).expect_err("md5"),
            SignatureError::UnsupportedDigest("Digest")
        );
    }

    #[test]
    fn refuses_a_body_whose_digest_is_not_covered() {
        // Signed without a body, then sent with one and its right digest.
        let mut headers = signed(Scheme::Cavage, Signer::Rsa(rsa_key()), None, NOW);
        set(
            &mut headers,
            "digest",
            &format!("SHA-256={}", BASE64.encode(&sha256(BODY))),
        );
        let err = check_post(&headers, BODY).expect_err("not covered");
        assert_eq!(err, SignatureError::NotCovered("digest"));
        assert_eq!(
            err.to_string(),
            "the signature does not cover `digest`; add it to the covered components"
        );

        let mut headers = ed25519_post(None, NOW);
        assert_eq!(
            check_post(&headers, BODY).expect_err("no digest"),
            SignatureError::NoDigest
        );
        set(
            &mut headers,
            "content-digest",
            &format!("sha-256=:{}:", BASE64.encode(&sha256(BODY))),
        );
        assert_eq!(
            check_post(&headers, BODY).expect_err("not covered"),
            SignatureError::NotCovered("content-digest")
        );
    }

    #[test]
    fn refuses_a_date_outside_the_window() {
        let err = check_post(&cavage_post(NOW - 13 * 3600), BODY).expect_err("old");
        assert!(
            matches!(err, SignatureError::TooOld { what: "Date", .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "`Date` is 13 hours old; at most 12 hours are accepted"
        );

        let err = check_post(&cavage_post(NOW + 2 * 3600), BODY).expect_err("ahead");
        assert!(
            matches!(err, SignatureError::TooNew { what: "Date", .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "`Date` is 2 hours in the future; the limit is 1 hour (check the sender's clock)"
        );

        let err = check_post(&ed25519_post(Some(BODY), NOW - 13 * 3600), BODY).expect_err("old");
        assert!(
            matches!(
                err,
                SignatureError::TooOld {
                    what: "created",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = check_post(&ed25519_post(Some(BODY), NOW + 2 * 3600), BODY).expect_err("ahead");
        assert!(
            matches!(
                err,
                SignatureError::TooNew {
                    what: "created",
                    ..
                }
            ),
            "{err:?}"
        );

        // Inside the window, some skew either way is fine.
        assert!(check_post(&cavage_post(NOW + 1800), BODY).is_ok());
        assert!(check_post(&cavage_post(NOW - 11 * 3600), BODY).is_ok());
    }

    #[test]
    fn refuses_the_wrong_key() {
        let pending = check_post(&cavage_post(NOW), BODY).expect("parsed");
        let err = pending
            .verify(&PublicKey::of_rsa(other_rsa_key()))
            .expect_err("wrong key");
        assert_eq!(err, SignatureError::Invalid("k".into()));

        let pending = check_post(&cavage_post(NOW), BODY).expect("parsed");
        let err = pending
            .verify(&ed25519_public())
            .expect_err("wrong kind of key");
        assert!(matches!(err, SignatureError::KeyMismatch { .. }), "{err:?}");

        let pending = check_post(&ed25519_post(Some(BODY), NOW), BODY).expect("parsed");
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let err = pending
            .verify(&PublicKey::Ed25519(other.verifying_key().to_bytes()))
            .expect_err("wrong key");
        assert_eq!(err, SignatureError::Invalid("k".into()));
    }

    #[test]
    fn refuses_a_tampered_request() {
        let rsa = PublicKey::of_rsa(rsa_key());
        let pending =
            check(Method::POST, "/inbox2", &cavage_post(NOW), BODY, "https").expect("parsed");
        assert_eq!(
            pending.verify(&rsa),
            Err(SignatureError::Invalid("k".into()))
        );
        let mut headers = cavage_post(NOW);
        set(&mut headers, "host", "c.example");
        let pending = check_post(&headers, BODY).expect("parsed");
        assert_eq!(
            pending.verify(&rsa),
            Err(SignatureError::Invalid("k".into()))
        );

        let headers = ed25519_post(Some(BODY), NOW);
        for (method, target, uri_scheme) in [
            (Method::POST, "/outbox", "https"),
            (Method::POST, "/inbox?x", "https"),
            (Method::POST, "/inbox", "http"),
            (Method::PUT, "/inbox", "https"),
        ] {
            let pending = check(method, target, &headers, BODY, uri_scheme).expect("parsed");
            assert_eq!(
                pending.verify(&ed25519_public()),
                Err(SignatureError::Invalid("k".into())),
                "{target}"
            );
        }
    }

    #[test]
    fn refuses_garbage_base64() {
        let mut headers = cavage_post(NOW);
        set(
            &mut headers,
            "signature",
            "keyId=\"k\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date digest\",\
             signature=\"%%%not base64%%%\"",
        );
        assert_eq!(
            check_post(&headers, BODY).expect_err("garbage"),
            SignatureError::BadSignatureEncoding
        );

        let mut headers = ed25519_post(Some(BODY), NOW);
        set(&mut headers, "signature", "sig1=:AB$CD:");
        assert_eq!(
            check_post(&headers, BODY).expect_err("garbage"),
            SignatureError::BadSignatureEncoding
        );
        // Base64, but not a signature.
        set(&mut headers, "signature", "sig1=:QUJD:");
        let pending = check_post(&headers, BODY).expect("parsed");
        assert_eq!(
            pending.verify(&ed25519_public()),
            Err(SignatureError::Invalid("k".into()))
        );
    }

    #[test]
    fn refuses_an_absurdly_long_header() {
        let mut headers = cavage_post(NOW);
        let long = format!(
            "keyId=\"{}\",signature=\"AAAA\"",
            "k".repeat(MAX_HEADER_LEN)
        );
        set(&mut headers, "signature", &long);
        let err = check_post(&headers, BODY).expect_err("long");
        assert!(matches!(err, SignatureError::TooLong { .. }), "{err:?}");

        // Many short field lines add up too.
        let mut headers = ed25519_post(Some(BODY), NOW);
        for _ in 0..200 {
            let line = "sig1=(\"@method\" \"@target-uri\");created=1;keyid=\"k\"";
            headers.append("signature-input", HeaderValue::from_static(line));
        }
        let err = check_post(&headers, BODY).expect_err("long");
        assert!(matches!(err, SignatureError::TooLong { .. }), "{err:?}");
    }

    #[test]
    fn refuses_an_unknown_algorithm() {
        let mut headers = cavage_post(NOW);
        set(
            &mut headers,
            "signature",
            "keyId=\"k\",algorithm=\"hmac-sha256\",headers=\"(request-target) host date digest\",\
             signature=\"AAAA\"",
        );
        let err = check_post(&headers, BODY).expect_err("unknown");
        assert_eq!(
            err,
            SignatureError::UnsupportedAlgorithm("hmac-sha256".into())
        );

        let mut headers = ed25519_post(None, NOW);
        set(
            &mut headers,
            "signature-input",
            "sig1=(\"@method\" \"@target-uri\");created=1700000000;keyid=\"k\";alg=\"rsa-pss-sha512\"",
        );
        let err = check(Method::GET, "/inbox", &headers, b"", "https").expect_err("unknown");
        assert_eq!(
            err,
            SignatureError::UnsupportedAlgorithm("rsa-pss-sha512".into())
        );

        // An algorithm that is not the key's.
        let mut headers = ed25519_post(None, NOW);
        let input = headers
            .get("signature-input")
            .expect("input")
            .to_str()
            .expect("ascii")
            .replace("ed25519", "rsa-v1_5-sha256");
        set(&mut headers, "signature-input", &input);
        let pending = check(Method::GET, "/inbox", &headers, b"", "https").expect("parsed");
        assert!(matches!(
            pending.verify(&ed25519_public()),
            Err(SignatureError::KeyMismatch { .. })
        ));
    }

    #[test]
    fn refuses_weak_rfc9421_signatures() {
        let mut headers = ed25519_post(None, NOW);
        let mut with_input = |input: &str| {
            set(&mut headers, "signature-input", input);
            check(Method::GET, "/inbox", &headers, b"", "https")
        };
        let err = with_input("sig1=(\"@method\" \"@target-uri\");keyid=\"k\"");
        assert_eq!(err.expect_err("no created"), SignatureError::NoCreated);
        let err = with_input("sig1=(\"@target-uri\");created=1700000000;keyid=\"k\"");
        assert_eq!(
            err.expect_err("no method"),
            SignatureError::NotCovered("@method")
        );
        let err = with_input("sig1=(\"@method\" \"@path\");created=1700000000;keyid=\"k\"");
        assert_eq!(
            err.expect_err("no target"),
            SignatureError::NotCovered("@target-uri")
        );
        assert!(
            with_input(
                "sig1=(\"@method\" \"@path\" \"@authority\");created=1700000000;keyid=\"k\""
            )
            .is_ok()
        );
        let err = with_input(
            "sig1=(\"@method\" \"@target-uri\" \"@query-param\";name=\"a\");created=1700000000;keyid=\"k\"",
        );
        assert_eq!(
            err.expect_err("parameter"),
            SignatureError::UnsupportedComponent("\"@query-param\";name=\"a\"".into())
        );
        let err = with_input(
            "sig1=(\"@method\" \"@target-uri\" \"x-missing\");created=1700000000;keyid=\"k\"",
        );
        assert_eq!(
            err.expect_err("missing"),
            SignatureError::MissingHeader("x-missing".into())
        );
        let err = with_input(
            "sig1=(\"@method\" \"@target-uri\");created=1700000000;expires=1600000000;keyid=\"k\"",
        );
        assert!(matches!(err, Err(SignatureError::Expired(_))));
        let err = with_input("sig1=(\"@method\" \"@target-uri\");created=1700000000");
        assert!(matches!(err, Err(SignatureError::Malformed { .. })));
        let err = with_input("sig2=(\"@method\" \"@target-uri\");created=1700000000;keyid=\"k\"");
        assert!(matches!(err, Err(SignatureError::Malformed { .. })));
        let err = with_input(
            "sig1=(\"@method\" \"@method\" \"@target-uri\");created=1700000000;keyid=\"k\"",
        );
        assert!(matches!(err, Err(SignatureError::Malformed { .. })));
    }

    #[test]
    fn refuses_weak_cavage_signatures() {
        let mut headers = cavage_post(NOW);
        let mut with_signature = |signature: &str| {
            set(&mut headers, "signature", signature);
            check_post(&headers, BODY)
        };
        let err = with_signature("keyId=\"k\",headers=\"host date digest\",signature=\"AAAA\"");
        assert_eq!(
            err.expect_err("no target"),
            SignatureError::NotCovered("(request-target)")
        );
        let err = with_signature(
            "keyId=\"k\",headers=\"(request-target) date digest\",signature=\"AAAA\"",
        );
        assert_eq!(
            err.expect_err("no host"),
            SignatureError::NotCovered("host")
        );
        let err = with_signature(
            "keyId=\"k\",headers=\"(request-target) host digest\",signature=\"AAAA\"",
        );
        assert_eq!(
            err.expect_err("no date"),
            SignatureError::NotCovered("date")
        );
        let err = with_signature("keyId=\"k\",signature=\"AAAA\"");
        assert_eq!(
            err.expect_err("default"),
            SignatureError::NotCovered("(request-target)")
        );
        let err = with_signature("algorithm=\"rsa-sha256\",signature=\"AAAA\"");
        assert!(matches!(err, Err(SignatureError::Malformed { .. })));
        let err = with_signature("keyId=\"k\",keyId=\"j\",signature=\"AAAA\"");
        assert!(matches!(err, Err(SignatureError::Malformed { .. })));
        let err = with_signature("sig1=:AAAA:");
        assert!(matches!(err, Err(SignatureError::Malformed { .. })));
        // `(created)` stands in for `Date`; a stale one is refused.
        let stale = NOW - 13 * 3600;
        let err = with_signature(&format!(
            "keyId=\"k\",algorithm=\"hs2019\",created={stale},\
             headers=\"(request-target) host (created) digest\",signature=\"AAAA\""
        ));
        assert!(matches!(
            err,
            Err(SignatureError::TooOld {
                what: "created",
                ..
            })
        ));
        let err = with_signature(&format!(
            "keyId=\"k\",expires={stale},headers=\"(request-target) host date digest\",signature=\"AAAA\""
        ));
        assert!(matches!(err, Err(SignatureError::Expired(_))));

        let mut headers = cavage_post(NOW);
        set(&mut headers, "date", "Tuesday, 14-Nov-23 22:13:20 GMT");
        assert_eq!(
            check_post(&headers, BODY).expect_err("date"),
            SignatureError::BadDate
        );
    }

    #[test]
    fn http_dates_round_trip() {
        assert_eq!(
            format_http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            format_http_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            format_http_date(4_107_542_399),
            "Sun, 28 Feb 2100 23:59:59 GMT"
        );
        for secs in (0..5_000_000_000u64).step_by(7_777_777) {
            assert_eq!(parse_http_date(&format_http_date(secs)), Some(secs));
        }
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Mon, 29 Feb 2100 00:00:00 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Xyz 1994 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 0a Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:4é:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn messages_say_what_to_fix() {
        let too_old = SignatureError::TooOld {
            what: "Date",
            age: Duration::from_secs(12 * 3600 + 30 * 60 + 1),
            max: Duration::from_secs(12 * 3600),
        };
        assert_eq!(
            too_old.to_string(),
            "`Date` is 12 hours 30 minutes 1 second old; at most 12 hours are accepted"
        );
        let invalid = SignatureError::Invalid("https://a.example/k".into());
        assert!(
            invalid
                .to_string()
                .starts_with("the signature does not verify under key `https://a.example/k`")
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(
            signature in "[ -~]{0,300}",
            input in "[ -~]{0,300}",
            digest in "[ -~]{0,120}",
            date in "[ -~]{0,40}",
            host in "[ -~]{0,40}",
            target in "[ -~]{0,60}",
            rfc in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut headers = HeaderMap::new();
            let fields = [("signature", &signature), ("digest", &digest), ("content-digest", &digest), ("date", &date), ("host", &host)];
            for (name, value) in fields {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(name, value);
                }
            }
            if rfc && let Ok(value) = HeaderValue::from_str(&input) {
                headers.insert("signature-input", value);
            }
            if let Ok(pending) = parse(&Method::POST, &target, &headers, &body, "https", Window::default(), at(NOW)) {
                let _ = pending.verify(&PublicKey::Ed25519([1; 32]));
            }
        }

        #[test]
        fn structured_headers_never_panic(
            prefix in prop::sample::select(vec![
                "", "sig1=(", "sig1=(\"@method\" \"@target-uri\");created=", "sig1=(\"@method\";",
                "sig1=:", "k=\"", "a=?", "a=-", "a=*", "keyId=\"k\",headers=\"", "signature=\"",
            ]),
            rest in "[ -~]{0,120}",
        ) {
            let text = format!("{prefix}{rest}");
            let _ = sf::parse_dictionary(&text);
            let _ = cavage_params(&text, "Signature");
            let _ = parse_http_date(&text);
            let _ = normalize_authority(&text, "https");
            let _ = PublicKey::from_pem(&text);
            if let Ok(value) = HeaderValue::from_str(&text) {
                let mut headers = HeaderMap::new();
                headers.insert("host", HeaderValue::from_static("b.example"));
                headers.insert("signature", value.clone());
                let _ = parse(&Method::GET, "/", &headers, b"", "https", Window::default(), at(NOW));
                headers.insert("signature-input", value);
                let _ = parse(&Method::GET, "/", &headers, b"", "https", Window::default(), at(NOW));
            }
        }

        #[test]
        fn keys_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PublicKey::from_spki_der(&bytes);
            for label in ["PUBLIC KEY", "RSA PUBLIC KEY"] {
                let _ = PublicKey::from_pem(&weft_core::identity::rsa::pem(label, &bytes));
            }
        }
    }
}
