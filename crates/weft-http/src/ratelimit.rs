//! Token buckets on the endpoints that write: `POST` to an inbox (an
//! actor's or the shared one), `POST /activity` and `POST
//! /actors/{name}/outbox`. Two kinds of bucket, each a GCRA token bucket of
//! the `governor` crate, keyed:
//!
//! - **per client IP** (an IPv6 client by its /64, which is what one host
//!   usually holds), checked before the body is read or anything else is
//!   done, so a flood costs the node next to nothing;
//! - **per peer origin** (`scheme://host[:port]` of the actor whose key
//!   signed the request, or of a weft envelope's author once its proof is
//!   verified), checked only after that verification, so nobody can spend
//!   another origin's budget by claiming to be it.
//!
//! Past a bucket the answer is 429 with `Retry-After` (whole seconds until
//! a token is back) and a problem document. Loopback clients are not
//! limited per IP unless `limit_loopback` is set: they are the operator's
//! own tools or a reverse proxy on the same machine, behind which every
//! client shares one address (the proxy should limit per client).
//!
//! This decides whether a request may go on; it does not queue or delay
//! requests, and it knows nothing of what they carry.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};

use super::Problem;

/// The limits (`[server.rate_limit]` in `weft.toml`). A rate of 0 turns
/// that bucket off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Requests per second one client IP may make to the limited
    /// endpoints, sustained.
    pub per_ip_per_second: u32,
    /// How many it may make at once before the rate applies.
    pub per_ip_burst: u32,
    /// Inbox requests per second one peer origin may make, sustained.
    pub per_origin_per_second: u32,
    /// How many it may make at once.
    pub per_origin_burst: u32,
    /// Limit loopback clients per IP too (tests do; a node behind a proxy
    /// on the same machine should not).
    pub limit_loopback: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_ip_per_second: 500,
            per_ip_burst: 2000,
            per_origin_per_second: 200,
            per_origin_burst: 1000,
            limit_loopback: false,
        }
    }
}

impl RateLimits {
    /// No limits at all (`WEFT_RATE_LIMIT=off`), as a benchmark wants.
    pub fn off() -> Self {
        Self {
            per_ip_per_second: 0,
            per_origin_per_second: 0,
            ..Self::default()
        }
    }

    /// Checks that every bucket that is on can hold a request.
    pub fn check(&self) -> Result<(), String> {
        if self.per_ip_per_second > 0 && self.per_ip_burst == 0
            || self.per_origin_per_second > 0 && self.per_origin_burst == 0
        {
            return Err(
                "server.rate_limit: a burst of 0 would refuse everything; set the rate to 0 to turn a limit off"
                    .into(),
            );
        }
        Ok(())
    }
}

/// How often (in checks) buckets that have filled up again are dropped,
/// so the memory held follows the clients seen lately, not ever.
const SWEEP_EVERY: u64 = 4096;

/// The node's buckets.
#[derive(Debug)]
pub struct Limiter {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_origin: Option<DefaultKeyedRateLimiter<String>>,
    limit_loopback: bool,
    clock: DefaultClock,
    checks: AtomicU64,
}

/// The address of the client at the other end of a request's connection,
/// put into each request's extensions by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// A bucket was empty: come back after `retry_after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

fn keyed<K: std::hash::Hash + Eq + Clone>(
    per_second: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(governor::RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl Limiter {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            per_ip: keyed(limits.per_ip_per_second, limits.per_ip_burst),
            per_origin: keyed(limits.per_origin_per_second, limits.per_origin_burst),
            limit_loopback: limits.limit_loopback,
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes a token from `ip`'s bucket.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Limited> {
        let Some(buckets) = &self.per_ip else {
            return Ok(());
        };
        let ip = client_key(ip);
        if ip.is_loopback() && !self.limit_loopback {
            return Ok(());
        }
        self.sweep();
        buckets.check_key(&ip).map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// Takes a token from `origin`'s bucket (`scheme://host[:port]`).
    pub fn check_origin(&self, origin: &str) -> Result<(), Limited> {
        let Some(buckets) = &self.per_origin else {
            return Ok(());
        };
        self.sweep();
        buckets
            .check_key(&origin.to_owned())
            .map_err(|not_until| Limited {
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            if let Some(b) = &self.per_ip {
                b.retain_recent();
                b.shrink_to_fit();
            }
            if let Some(b) = &self.per_origin {
                b.retain_recent();
                b.shrink_to_fit();
            }
        }
    }
}

/// The key of a client address: an IPv4 address (also when mapped into
/// IPv6) as it is, an IPv6 address by its /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.is_loopback() => ip,
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// A 429 problem saying who is limited and when to come back.
pub fn too_many(detail: String, limited: &Limited) -> Response {
    // Whole seconds, rounded up: a client that waits that long gets a token.
    let seconds = limited.retry_after.as_secs()
        + u64::from(limited.retry_after.subsec_nanos() > 0 || limited.retry_after.is_zero());
    let mut response = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("{detail}; retry after {seconds} s"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Middleware for the limited routes: a `POST` takes a token from its
/// client's bucket before anything else happens.
pub async fn per_ip(
    State(limiter): State<std::sync::Arc<Limiter>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::POST
        && let Some(ClientAddr(addr)) = request.extensions().get::<ClientAddr>().copied()
        && let Err(limited) = limiter.check_ip(addr.ip())
    {
        return too_many(
            format!(
                "too many requests from {}: this node takes at most its `[server.rate_limit] per_ip_per_second` from one address",
                client_key(addr.ip())
            ),
            &limited,
        );
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_second: u32, burst: u32) -> RateLimits {
        RateLimits {
            per_ip_per_second: per_second,
            per_ip_burst: burst,
            per_origin_per_second: per_second,
            per_origin_burst: burst,
            limit_loopback: true,
        }
    }

    #[test]
    fn a_burst_is_taken_then_refused_with_a_wait_and_others_keep_theirs() {
        let limiter = Limiter::new(&limits(1, 3));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(limiter.check_ip(a), Ok(()));
        }
        let refused = limiter.check_ip(a).expect_err("past the burst");
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert_eq!(limiter.check_ip(b), Ok(()));
        for _ in 0..3 {
            assert_eq!(limiter.check_origin("https://a.example"), Ok(()));
        }
        assert!(limiter.check_origin("https://a.example").is_err());
        assert_eq!(limiter.check_origin("https://b.example"), Ok(()));
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_v4_is_v4() {
        let limiter = Limiter::new(&limits(1, 1));
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other_64: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(limiter.check_ip(one), Ok(()));
        assert!(limiter.check_ip(same_64).is_err());
        assert_eq!(limiter.check_ip(other_64), Ok(()));
        let v4: IpAddr = "198.51.100.7".parse().expect("ip");
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().expect("ip");
        assert_eq!(limiter.check_ip(v4), Ok(()));
        assert!(limiter.check_ip(mapped).is_err());
    }

    #[test]
    fn loopback_is_limited_only_when_asked_and_zero_is_off() {
        let mut l = limits(1, 1);
        l.limit_loopback = false;
        let limiter = Limiter::new(&l);
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        for _ in 0..10 {
            assert_eq!(limiter.check_ip(lo), Ok(()));
        }
        let off = Limiter::new(&RateLimits::off());
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..10_000 {
            assert_eq!(off.check_ip(ip), Ok(()));
            assert_eq!(off.check_origin("https://a.example"), Ok(()));
        }
        assert!(limits(5, 0).check().is_err());
        assert!(RateLimits::off().check().is_ok());
        assert!(RateLimits::default().check().is_ok());
    }
}
