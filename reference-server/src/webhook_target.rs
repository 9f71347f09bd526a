//! Where webhooks may go: the URL rule (absolute `http`/`https` with a host,
//! SG-HOOK-2), the address rule (never a link-local or cloud-metadata
//! address: `169.254.0.0/16`, `fe80::/10`, `fd00:ec2::254`, also written as
//! IPv4-mapped IPv6), checked at registration on an address written in the
//! URL and again at delivery on every address a host name resolves to
//! ([`GuardedResolver`]), and how a URL is shown in logs ([`for_logs`]: no
//! userinfo, no query, no fragment, since they may carry credentials).
//!
//! Loopback stays allowed: local test receivers listen on `127.0.0.1`.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("url must be an absolute http:// or https:// URL with a host")]
    NotHttp,
    #[error("url points at {0}, a link-local or cloud-metadata address, which webhooks may not reach")]
    Forbidden(IpAddr),
}

/// The AWS IPv6 instance-metadata address.
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Whether webhooks must never reach `ip`: IPv4 link-local `169.254.0.0/16`
/// (cloud metadata at `169.254.169.254`), IPv6 link-local `fe80::/10`, AWS's
/// `fd00:ec2::254`, and the IPv4 ones written as `::ffff:a.b.c.d`.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.is_link_local();
            }
            (v6.segments()[0] & 0xffc0) == 0xfe80 || v6 == AWS_METADATA_V6
        }
    }
}

/// Parses a webhook URL and applies both rules to an address written in it.
pub fn check(url: &str) -> Result<Url, UrlRefused> {
    // The text itself first: `http:///x` would otherwise be "fixed" by the parser.
    let written = url.split_once("://").is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if !written || url.contains(' ') {
        return Err(UrlRefused::NotHttp);
    }
    let parsed = Url::parse(url).map_err(|_| UrlRefused::NotHttp)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlRefused::NotHttp);
    }
    let ip = match parsed.host() {
        None => return Err(UrlRefused::NotHttp),
        Some(Host::Domain("")) => return Err(UrlRefused::NotHttp),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    match ip {
        Some(ip) if is_forbidden(ip) => Err(UrlRefused::Forbidden(ip)),
        _ => Ok(parsed),
    }
}

/// A URL as logs show it: scheme, host, port and path only.
pub fn for_logs(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "<unparsable url>".into(),
    }
}

/// The DNS resolver of the webhook client: the system resolver, with every
/// forbidden address removed; a name that resolves only to forbidden
/// addresses fails the delivery attempt.
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all.iter().copied().filter(|a| !is_forbidden(a.ip())).collect();
            if allowed.is_empty() {
                let why = format!("{host} resolves only to link-local or metadata addresses ({all:?})");
                return Err(why.into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_and_metadata_addresses_are_refused_and_loopback_is_not() {
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.0.1:8080/x",
            "http://[fe80::1]/hook",
            "http://[febf::1]/hook",
            "http://[fd00:ec2::254]/latest",
            "http://[::ffff:169.254.169.254]/",
            "https://user:pw@169.254.169.254/",
        ] {
            assert!(matches!(check(url), Err(UrlRefused::Forbidden(_))), "{url}");
        }
        for url in ["http://127.0.0.1:9/h", "http://[::1]:9/h", "https://example.com/h", "http://[fec0::1]/h"] {
            assert!(check(url).is_ok(), "{url}");
        }
        for bad in ["ftp://x/", "http:///x", "relative/path", "http://a b/", ""] {
            assert_eq!(check(bad), Err(UrlRefused::NotHttp), "{bad}");
        }
    }

    #[test]
    fn logs_show_no_credentials_or_query() {
        let shown = for_logs("https://bob:hunter2@hooks.example.com:8443/in?token=s3cret#frag");
        assert_eq!(shown, "https://hooks.example.com:8443/in");
    }
}
