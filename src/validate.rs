//! Name rules shared by every source: Kubernetes' DNS-1123 labels, which are also what the
//! clusterset.local zone can carry.

/// A DNS-1123 label: 1 to 63 lower-case alphanumerics or '-', starting and ending alphanumeric.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_label_shaped(s)
}

/// Lower-case alphanumerics or '-', at least one, starting and ending alphanumeric.
fn is_label_shaped(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 subdomain (what Kubernetes requires of most object names, EndpointSlices' among
/// them): at most 253 characters, dot-separated parts of lower-case alphanumerics and '-',
/// each starting and ending alphanumeric. (Kubernetes bounds only the whole, not each part.)
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label_shaped)
}

/// A port name as Kubernetes allows it (IANA_SVC_NAME: at most 15 characters, a letter among
/// them, no leading, trailing or double '-').
pub fn is_port_name(s: &str) -> bool {
    is_dns_label(s)
        && s.len() <= 15
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subdomains() {
        // Kubernetes' EndpointSlice controller names slices <service>-<5 random>: over 63
        // characters for long Service names.
        let long = format!("{}-x7k2p", "a".repeat(62));
        assert!(!is_dns_label(&long));
        assert!(is_dns_subdomain(&long));
        assert!(is_dns_subdomain("web.v2"));
        assert!(!is_dns_subdomain("web..v2"));
        assert!(!is_dns_subdomain(".web"));
        assert!(!is_dns_subdomain("Web"));
        assert!(!is_dns_subdomain(&"a".repeat(254)));
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("payment"));
        assert!(is_dns_label("cluster-1"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label("Payment"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }

    #[test]
    fn port_names() {
        assert!(is_port_name("http"));
        assert!(is_port_name("grpc-web"));
        assert!(!is_port_name("8080"));
        assert!(!is_port_name("a--b"));
        assert!(!is_port_name("a-very-long-port-name"));
    }
}
