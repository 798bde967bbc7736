//! Small helpers shared by the attribute enums: parsing a nested attribute
//! list, and reading the kernel's integer and string encodings.

use netlink_packet_core::{DecodeError, NlaBuffer, NlasIterator, Parseable};

/// Parses every attribute of a nested attribute payload.
pub(crate) fn parse_nested<A>(payload: &[u8]) -> Result<Vec<A>, DecodeError>
where
    A: for<'a> Parseable<NlaBuffer<&'a [u8]>>,
{
    NlasIterator::new(payload)
        .map(|nla| nla.and_then(|nla| A::parse(&nla)))
        .collect()
}

/// Reads a counter the kernel sends either as `u32` (`*_STATS`) or as
/// `u64` (`*_STATS64`, and the byte counters of `*_STATS`).
pub(crate) fn parse_counter(value: &[u8]) -> Result<u64, DecodeError> {
    match value.len() {
        4 => netlink_packet_core::parse_u32(value).map(u64::from),
        8 => netlink_packet_core::parse_u64(value),
        n => Err(DecodeError::invalid_number(8, n)),
    }
}

/// Reads a NUL-terminated string attribute.
pub(crate) fn parse_cstring(value: &[u8]) -> Result<String, DecodeError> {
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    String::from_utf8(value[..end].to_vec()).map_err(DecodeError::from)
}

/// Writes a string followed by its terminating NUL.
pub(crate) fn emit_cstring(buffer: &mut [u8], value: &str) {
    buffer[..value.len()].copy_from_slice(value.as_bytes());
    buffer[value.len()] = 0;
}

/// Reads a 4-byte (IPv4) or 16-byte (IPv6 or `union nf_inet_addr`)
/// address attribute as raw bytes.
pub(crate) fn parse_addr(value: &[u8]) -> Result<Vec<u8>, DecodeError> {
    match value.len() {
        4 | 16 => Ok(value.to_vec()),
        n => Err(DecodeError::invalid_ip_address(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_reads_both_widths() {
        assert_eq!(parse_counter(&7u32.to_ne_bytes()).ok(), Some(7));
        assert_eq!(
            parse_counter(&(1u64 << 40).to_ne_bytes()).ok(),
            Some(1 << 40)
        );
        assert!(parse_counter(&[1, 2, 3]).is_err());
    }

    #[test]
    fn cstring_stops_at_nul() {
        assert_eq!(parse_cstring(b"rr\0\0").ok().as_deref(), Some("rr"));
        assert_eq!(parse_cstring(b"wlc").ok().as_deref(), Some("wlc"));
    }

    #[test]
    fn cstring_emits_terminator() {
        let mut buf = [0xffu8; 4];
        emit_cstring(&mut buf, "sh");
        assert_eq!(buf, [b's', b'h', 0, 0xff]);
    }
}
