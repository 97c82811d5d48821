//! Outbound-address safety (docs/architecture.md §9): which addresses the node may
//! connect to on a peer's behalf. A peer names URLs (actor documents,
//! inboxes, artifacts, outbox pages); without this check a hostile peer
//! could make the node reach its own loopback services, the private
//! network it sits in, or a cloud provider's metadata endpoint.
//!
//! The check runs after DNS resolution, on every address a name resolves
//! to ([`GuardedResolver`]), and on the literal address of a URL that names
//! one ([`check_url`]), so a name that resolves to a private address is
//! refused as surely as the address itself. It does not decide whom to
//! trust or what to fetch; `fetch` does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address may not be connected to, or `None` when it may.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            forbidden_v6(v6)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("an unspecified address (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("a loopback address (127.0.0.0/8)")
    } else if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("a cloud metadata address")
    } else if ip.is_private() {
        Some("a private address (RFC 1918)")
    } else if ip.is_link_local() {
        Some("a link-local address (169.254.0.0/16)")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("a carrier-grade NAT address (100.64.0.0/10)")
    } else if ip.is_multicast() || a >= 240 {
        Some("a multicast, reserved or broadcast address")
    } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (b & 0xfe) == 18) {
        Some("an IETF protocol or benchmarking address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("an unspecified address (::)")
    } else if ip.is_loopback() {
        Some("a loopback address (::1)")
    } else if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        Some("a cloud metadata address")
    } else if (first & 0xfe00) == 0xfc00 {
        Some("a unique local address (fc00::/7)")
    } else if (first & 0xffc0) == 0xfe80 {
        Some("a link-local address (fe80::/10)")
    } else if ip.is_multicast() {
        Some("a multicast address (ff00::/8)")
    } else if let Some(v4) = ip.to_ipv4() {
        // ::a.b.c.d (deprecated compatible form) and NAT64 are judged by the
        // IPv4 address they carry.
        forbidden_v4(v4)
    } else if first == 0x64 && ip.segments()[1] == 0xff9b {
        let [.., a, b, c, d] = ip.octets();
        forbidden_v4(Ipv4Addr::new(a, b, c, d))
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("a documentation address (2001:db8::/32)")
    } else {
        None
    }
}

/// Why an outbound connection was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "{host} is {why} ({ip}); this node does not connect there unless `[federation] allow_private_addresses = true`"
)]
pub struct Refused {
    pub host: String,
    pub ip: IpAddr,
    pub why: &'static str,
}

/// Refuses `url` when its host is a literal address that may not be
/// reached. A host name passes here; [`GuardedResolver`] checks what it
/// resolves to.
pub fn check_url(url: &reqwest::Url) -> Result<(), Refused> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    match forbidden(ip) {
        Some(why) => Err(Refused {
            host: url.host_str().unwrap_or_default().to_owned(),
            ip,
            why,
        }),
        None => Ok(()),
    }
}

/// A DNS resolver that drops every address [`forbidden`] refuses, and fails
/// a name that resolves to nothing else, saying why.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match forbidden(a.ip()) {
                    Some(why) => {
                        refused.get_or_insert(Refused {
                            host: host.clone(),
                            ip: a.ip(),
                            why,
                        });
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty()
                && let Some(refused) = refused
            {
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn refuses_every_internal_range() {
        for s in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.3.4",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fc12::3",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "fd00:ec2::254",
        ] {
            assert!(forbidden(ip(s)).is_some(), "{s} must be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a01:4f8::1",
            "::ffff:1.1.1.1",
        ] {
            assert_eq!(forbidden(ip(s)), None, "{s} must be allowed");
        }
    }

    #[test]
    fn literal_hosts_are_checked() {
        let url = |s: &str| reqwest::Url::parse(s).expect("a URL");
        let refused = check_url(&url("http://127.0.0.1:8080/actors/a")).expect_err("loopback");
        assert!(refused.to_string().contains("loopback"), "{refused}");
        assert!(refused.to_string().contains("allow_private_addresses"));
        assert!(check_url(&url("https://[::1]/x")).is_err());
        assert!(check_url(&url("https://[fe80::1]/x")).is_err());
        assert!(check_url(&url("https://1.1.1.1/x")).is_ok());
        // Names are the resolver's to check.
        assert!(check_url(&url("https://localhost/x")).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_internal_addresses() {
        let name: Name = "localhost".parse().expect("a name");
        let err = match GuardedResolver.resolve(name).await {
            Ok(addrs) => panic!(
                "localhost resolved to {:?}",
                addrs.collect::<Vec<SocketAddr>>()
            ),
            Err(e) => e,
        };
        assert!(err.to_string().contains("loopback"), "{err}");
    }
}
