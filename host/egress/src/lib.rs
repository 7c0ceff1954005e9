//! Outbound network policy, shared by every part of the host that opens a connection on behalf
//! of a tenant (a plugin's `wasi:http` requests today; AI providers and escalation webhooks later).
//!
//! Two checks, in this order:
//! 1. the URL's `scheme://host:port` must match a pattern of the run's [`AllowList`];
//! 2. every address the host name resolves to must be a public unicast address, unless the
//!    matching pattern names that very address as an IP literal (an explicit test host such as
//!    `http://127.0.0.1:8080`). Cloud metadata addresses are refused even then.
//!
//! The second check runs after DNS resolution and the connection is then made to the vetted
//! address itself, so a name that resolves to a public address at check time cannot be swapped
//! for a private one at connect time (DNS rebinding).

/// The TLS client settings of every outbound connection the host makes itself (a plugin's
/// requests, escalation email): rustls with the ring provider and the webpki roots, built once.
pub fn tls_client_config() -> std::sync::Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            std::sync::Arc::new(config)
        })
        .clone()
}

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest pattern accepted; anything longer is a mistake, not a host.
const MAX_PATTERN_LEN: usize = 300;

/// Addresses that serve cloud instance metadata (AWS/GCP/Azure/OpenStack, Alibaba, AWS IPv6).
/// Reaching them leaks credentials, so they are refused even when named explicitly.
const METADATA_ADDRS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

/// Why an outbound request was refused or could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The pattern text does not parse.
    #[error(
        "invalid host pattern `{pattern}`: {reason} (expected scheme://host[:port], e.g. https://api.example.com or https://*.example.com:8443)"
    )]
    InvalidPattern { pattern: String, reason: String },
    /// The URL matches no pattern of the allow-list.
    #[error("{origin} is not in this run's allow-list ({allowed})")]
    NotAllowed { origin: String, allowed: String },
    /// The host resolved to an address of a forbidden class.
    #[error("{host} resolves to {addr}, a {class} address, which plugins may not reach")]
    ForbiddenAddress {
        host: String,
        addr: IpAddr,
        class: AddressClass,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Dns { host: String, reason: String },
}

/// URL schemes a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// Parses `http` or `https` (case-insensitive).
    pub fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The host part of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    /// One host name, lower-case.
    Exact(String),
    /// `*.example.com`: any sub-domain of `example.com` (not `example.com` itself).
    Suffix(String),
    /// An IP literal: the pattern names this address explicitly.
    Ip(IpAddr),
}

/// One allow-list entry: `scheme://host[:port]`, where host may be `*.domain` and port may be `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Scheme,
    host: HostMatch,
    /// `None` means any port.
    port: Option<u16>,
    text: String,
}

impl HostPattern {
    /// The address this pattern names, if it is an IP literal of a class plugins may not reach
    /// (loopback, private, metadata ...): such a grant opens a door into the host's own network,
    /// so deployments accept it only for test hosts they configured themselves.
    pub fn forbidden_literal(&self) -> Option<(IpAddr, AddressClass)> {
        match &self.host {
            HostMatch::Ip(ip) => classify(canonical(*ip)).map(|c| (*ip, c)),
            _ => None,
        }
    }

    /// Parses a pattern such as `https://api.example.com`, `http://127.0.0.1:8080` or
    /// `https://*.example.com:*`. Paths, queries and user info are refused: a grant is for an
    /// origin, not part of one.
    pub fn parse(text: &str) -> Result<HostPattern, EgressError> {
        let invalid = |reason: &str| EgressError::InvalidPattern {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        if text.len() > MAX_PATTERN_LEN {
            return Err(invalid("too long"));
        }
        let (scheme, rest) = text.split_once("://").ok_or_else(|| invalid("missing scheme"))?;
        let scheme = Scheme::parse(scheme).ok_or_else(|| invalid("scheme must be http or https"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(invalid("missing host"));
        }
        if rest.contains(['/', '?', '#', '@']) || rest.chars().any(char::is_whitespace) {
            return Err(invalid("only scheme, host and port are allowed"));
        }
        let (host, port) = split_host_port(rest).map_err(|r| invalid(&r))?;
        let port = match port {
            None => Some(scheme.default_port()),
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| invalid("port must be 1-65535 or *"))?,
            ),
        };
        let host = if let Ok(ip) = host.parse::<IpAddr>() {
            if METADATA_ADDRS.contains(&canonical(ip)) {
                return Err(invalid("cloud metadata addresses can never be granted"));
            }
            HostMatch::Ip(canonical(ip))
        } else if let Some(domain) = host.strip_prefix("*.") {
            valid_host_name(domain).map_err(|r| invalid(&r))?;
            HostMatch::Suffix(domain.to_ascii_lowercase())
        } else {
            valid_host_name(host).map_err(|r| invalid(&r))?;
            HostMatch::Exact(host.to_ascii_lowercase())
        };
        Ok(HostPattern {
            scheme,
            host,
            port,
            text: text.to_string(),
        })
    }

    fn matches(&self, scheme: Scheme, host: &Host, port: u16) -> bool {
        if self.scheme != scheme || self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (&self.host, host) {
            (HostMatch::Exact(a), Host::Name(b)) => a == b,
            (HostMatch::Suffix(d), Host::Name(b)) => {
                b.len() > d.len() + 1 && b.ends_with(d.as_str()) && b[..b.len() - d.len()].ends_with('.')
            }
            (HostMatch::Ip(a), Host::Ip(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed [ in IPv6 address")?;
        return match after {
            "" => Ok((host, None)),
            p => Ok((host, Some(p.strip_prefix(':').ok_or("expected : after ]")?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, _)) if h.contains(':') => Err("IPv6 addresses must be written in brackets".into()),
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((s, None)),
    }
}

fn valid_host_name(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("`{host}` is not a valid host name"))
    }
}

/// The host of a request, as the allow-list sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    fn parse(host: &str) -> Host {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(canonical(ip)),
            Err(_) => Host::Name(bare.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

/// The set of origins one run may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    patterns: Vec<HostPattern>,
}

/// An outbound request that passed the allow-list: connect to `addrs` (already vetted), present
/// `host` for TLS and the `Host` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vetted {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    pub addrs: Vec<SocketAddr>,
}

impl AllowList {
    /// An allow-list that refuses everything.
    pub fn deny_all() -> AllowList {
        AllowList::default()
    }

    /// Parses every pattern; the first that does not parse is the error.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<AllowList, EgressError> {
        let patterns = patterns
            .iter()
            .map(|p| HostPattern::parse(p.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(AllowList { patterns })
    }

    /// The patterns, as written.
    pub fn patterns(&self) -> &[HostPattern] {
        &self.patterns
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    fn describe(&self) -> String {
        if self.patterns.is_empty() {
            "no hosts are granted".to_string()
        } else {
            let list: Vec<_> = self.patterns.iter().map(|p| p.text.as_str()).collect();
            format!("granted: {}", list.join(", "))
        }
    }

    /// Checks `scheme://host:port` against the patterns (step 1), without resolving anything.
    fn matching(&self, scheme: Scheme, host: &Host, port: u16) -> Option<&HostPattern> {
        self.patterns.iter().find(|p| p.matches(scheme, host, port))
    }

    /// Both checks: the allow-list, then DNS resolution with every address vetted. `host` may be a
    /// name, an IPv4 literal or a bracketed IPv6 literal; `port` is the effective port.
    pub async fn vet(&self, scheme: Scheme, host: &str, port: u16) -> Result<Vetted, EgressError> {
        let parsed = Host::parse(host);
        let origin = format!("{}://{}:{}", scheme.as_str(), host, port);
        let pattern = self
            .matching(scheme, &parsed, port)
            .ok_or_else(|| EgressError::NotAllowed {
                origin: origin.clone(),
                allowed: self.describe(),
            })?;
        let explicit = match &pattern.host {
            HostMatch::Ip(ip) => Some(*ip),
            _ => None,
        };
        let addrs: Vec<SocketAddr> = match &parsed {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
            Host::Name(name) => tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|e| EgressError::Dns {
                    host: name.clone(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(EgressError::Dns {
                host: host.to_string(),
                reason: "no addresses".to_string(),
            });
        }
        // Every address must pass, not just one: otherwise a name with one public and one private
        // record would let the connection land on the private one.
        for addr in &addrs {
            let ip = canonical(addr.ip());
            if explicit == Some(ip) && !METADATA_ADDRS.contains(&ip) {
                continue;
            }
            if let Some(class) = classify(ip) {
                return Err(EgressError::ForbiddenAddress {
                    host: host.to_string(),
                    addr: ip,
                    class,
                });
            }
        }
        Ok(Vetted {
            scheme,
            host: parsed_host_text(&parsed),
            port,
            addrs,
        })
    }
}

fn parsed_host_text(h: &Host) -> String {
    match h {
        Host::Name(n) => n.clone(),
        Host::Ip(ip) => ip.to_string(),
    }
}

/// Kinds of address a plugin may not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    Private,
    LinkLocal,
    Metadata,
    /// Unspecified, broadcast, multicast, documentation, benchmarking and reserved ranges.
    NonRoutable,
    /// Carrier-grade NAT (100.64.0.0/10): shared address space inside a provider's network.
    SharedAddressSpace,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Metadata => "cloud metadata",
            AddressClass::NonRoutable => "non-routable",
            AddressClass::SharedAddressSpace => "shared (carrier-grade NAT)",
        })
    }
}

/// Maps IPv4-mapped and IPv4-compatible IPv6 addresses to the IPv4 address they carry, so that
/// `::ffff:127.0.0.1` is judged as `127.0.0.1`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The forbidden class of `ip`, or `None` for a public unicast address.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    let ip = canonical(ip);
    if METADATA_ADDRS.contains(&ip) {
        return Some(AddressClass::Metadata);
    }
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if ip.is_private() {
        Some(AddressClass::Private)
    } else if ip.is_link_local() {
        Some(AddressClass::LinkLocal)
    } else if a == 100 && (64..128).contains(&b) {
        Some(AddressClass::SharedAddressSpace)
    } else if a == 0
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a >= 240
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && c == 0)
    {
        Some(AddressClass::NonRoutable)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let seg = ip.segments();
    if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if ip.is_unspecified() || ip.is_multicast() || seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Some(AddressClass::NonRoutable)
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Some(AddressClass::LinkLocal)
    } else if seg[0] & 0xfe00 == 0xfc00 {
        Some(AddressClass::Private)
    } else if seg[0] == 0x0064 && seg[1] == 0xff9b || seg[0] == 0x2002 || seg[..6] == [0; 6] {
        // NAT64, 6to4 and IPv4-compatible addresses embed an IPv4 address: judge by it.
        let v4 = Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
        let embedded = if seg[0] == 0x2002 {
            Ipv4Addr::new((seg[1] >> 8) as u8, seg[1] as u8, (seg[2] >> 8) as u8, seg[2] as u8)
        } else {
            v4
        };
        classify(IpAddr::V4(embedded))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_forbidden_ranges() {
        for (addr, class) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.8.9.1", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("10.0.0.1", AddressClass::Private),
            ("172.16.4.4", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("fd12::1", AddressClass::Private),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::Metadata),
            ("::ffff:169.254.169.254", AddressClass::Metadata),
            ("100.100.100.200", AddressClass::Metadata),
            ("100.64.0.1", AddressClass::SharedAddressSpace),
            ("0.0.0.0", AddressClass::NonRoutable),
            ("255.255.255.255", AddressClass::NonRoutable),
            ("224.0.0.1", AddressClass::NonRoutable),
            ("::", AddressClass::NonRoutable),
            ("64:ff9b::a00:1", AddressClass::Private),
            ("2002:7f00:1::", AddressClass::Loopback),
        ] {
            assert_eq!(classify(ip(addr)), Some(class), "{addr}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "172.32.0.1"] {
            assert_eq!(classify(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn parses_patterns_and_refuses_bad_ones() {
        assert!(HostPattern::parse("https://api.example.com").is_ok());
        assert!(HostPattern::parse("http://127.0.0.1:8080").is_ok());
        assert!(HostPattern::parse("https://*.example.com:*").is_ok());
        assert!(HostPattern::parse("http://[::1]:9000").is_ok());
        for (bad, why) in [
            ("api.example.com", "missing scheme"),
            ("ftp://example.com", "scheme must be http or https"),
            ("https://", "missing host"),
            ("https://example.com/path", "only scheme, host and port"),
            ("https://user@example.com", "only scheme, host and port"),
            ("https://example.com:0", "port must be"),
            ("https://example.com:99999", "port must be"),
            ("https://exa mple.com", "only scheme, host and port"),
            ("https://ex_ample.com", "not a valid host name"),
            ("http://169.254.169.254", "metadata"),
            ("http://::1:80", "brackets"),
        ] {
            let err = HostPattern::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains(bad), "the error names the pattern: {err}");
        }
    }

    #[test]
    fn matches_scheme_host_and_port() {
        let list = AllowList::parse(&["https://api.example.com", "https://*.cdn.example.org:*"]).unwrap();
        let name = |s: &str| Host::Name(s.into());
        assert!(list.matching(Scheme::Https, &name("api.example.com"), 443).is_some());
        assert!(list.matching(Scheme::Http, &name("api.example.com"), 443).is_none());
        assert!(list.matching(Scheme::Https, &name("api.example.com"), 8443).is_none());
        assert!(
            list.matching(Scheme::Https, &name("evil-api.example.com"), 443)
                .is_none()
        );
        assert!(list.matching(Scheme::Https, &name("a.cdn.example.org"), 8443).is_some());
        assert!(list.matching(Scheme::Https, &name("cdn.example.org"), 443).is_none());
        assert!(list.matching(Scheme::Https, &name("xcdn.example.org"), 443).is_none());
    }

    #[tokio::test]
    async fn refuses_loopback_unless_named_explicitly() {
        let open = AllowList::parse(&["http://localhost:8080"]).unwrap();
        let err = open.vet(Scheme::Http, "localhost", 8080).await.unwrap_err();
        assert!(
            matches!(
                err,
                EgressError::ForbiddenAddress {
                    class: AddressClass::Loopback,
                    ..
                }
            ),
            "{err}"
        );

        let explicit = AllowList::parse(&["http://127.0.0.1:8080"]).unwrap();
        let ok = explicit.vet(Scheme::Http, "127.0.0.1", 8080).await.unwrap();
        assert_eq!(ok.addrs, vec!["127.0.0.1:8080".parse().unwrap()]);

        let err = explicit.vet(Scheme::Http, "127.0.0.1", 8081).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "http://127.0.0.1:8081 is not in this run's allow-list (granted: http://127.0.0.1:8080)"
        );
        let err = AllowList::deny_all()
            .vet(Scheme::Https, "example.com", 443)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "https://example.com:443 is not in this run's allow-list (no hosts are granted)"
        );
    }
}
