//! The W3C Trace Context `traceparent` header (https://www.w3.org/TR/trace-context/) on
//! requests that cross the WAN: a valid one from the client is kept, so the trace goes on
//! across clusters; a missing or malformed one is replaced by a new trace, sampled.

use hyper::header::{HeaderMap, HeaderValue};

pub const TRACEPARENT: &str = "traceparent";

/// Random 64 bits from the operating system's generator, for trace ids and backend picks.
pub fn random_u64() -> u64 {
    rand::random()
}

/// Whether `value` is a `traceparent` of version 00 with non-zero ids.
pub fn is_valid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match parts.as_slice() {
        [version, trace, parent, flags] => {
            hex(version, 2)
                && *version != "ff"
                && hex(trace, 32)
                && trace.bytes().any(|b| b != b'0')
                && hex(parent, 16)
                && parent.bytes().any(|b| b != b'0')
                && hex(flags, 2)
        }
        // A later version may carry more fields after the four of version 00.
        [version, trace, parent, flags, ..] => {
            hex(version, 2)
                && *version != "00"
                && *version != "ff"
                && hex(trace, 32)
                && hex(parent, 16)
                && hex(flags, 2)
        }
        _ => false,
    }
}

/// A new sampled `traceparent`.
pub fn start() -> String {
    let nonzero = || loop {
        let v = random_u64();
        if v != 0 {
            return v;
        }
    };
    format!(
        "00-{:016x}{:016x}-{:016x}-01",
        nonzero(),
        random_u64(),
        nonzero()
    )
}

/// Keeps the request's `traceparent` when it is valid, sets a new one otherwise.
pub fn stamp(headers: &mut HeaderMap) {
    let valid = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_valid)
        && headers.get_all(TRACEPARENT).iter().count() == 1;
    if !valid {
        if let Ok(v) = HeaderValue::from_str(&start()) {
            headers.insert(TRACEPARENT, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_trace_is_valid_and_new_each_time() {
        let a = start();
        assert!(is_valid(&a), "{a}");
        assert_ne!(a, start());
        assert!(a.ends_with("-01"), "sampled: {a}");
    }

    #[test]
    fn a_valid_traceparent_is_kept_and_a_bad_one_replaced() {
        let kept = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, kept.parse().unwrap());
        stamp(&mut h);
        assert_eq!(h[TRACEPARENT], kept);
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let mut h = HeaderMap::new();
            h.insert(TRACEPARENT, bad.parse().unwrap());
            stamp(&mut h);
            let now = h[TRACEPARENT].to_str().unwrap();
            assert!(now != bad && is_valid(now), "{bad} -> {now}");
        }
        let mut h = HeaderMap::new();
        stamp(&mut h);
        assert!(is_valid(h[TRACEPARENT].to_str().unwrap()));
    }
}
