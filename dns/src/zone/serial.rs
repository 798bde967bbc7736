//! The SOA serial: a digest of the zone content.
//!
//! Equal content gives an equal serial on every gateway and across restarts;
//! any change of content gives another serial (up to 32-bit collisions).

/// FNV-1a, 64 bits, folded to the 32 bits of an SOA serial.
#[derive(Debug, Clone)]
pub(crate) struct SerialDigest(u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl SerialDigest {
    pub(crate) fn new() -> Self {
        Self(FNV_OFFSET)
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// Feeds a length-prefixed field, so that `("ab", "c")` and `("a", "bc")` differ.
    pub(crate) fn field(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u64).to_be_bytes());
        self.bytes(bytes);
    }

    pub(crate) fn number(&mut self, value: u64) {
        self.bytes(&value.to_be_bytes());
    }

    #[cfg(test)]
    pub(crate) fn finish(&self) -> u32 {
        Self::fold(self.0)
    }

    /// The 64 bits so far, to combine digests of parts (by wrapping addition, which does not
    /// depend on the order of the parts).
    pub(crate) fn value(&self) -> u64 {
        self.0
    }

    /// 64 bits folded to an SOA serial.
    pub(crate) fn fold(value: u64) -> u32 {
        // Truncation is the point: fold the high half into the low half.
        ((value >> 32) ^ (value & 0xffff_ffff)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_change_the_digest() {
        let mut one = SerialDigest::new();
        one.field(b"ab");
        one.field(b"c");
        let mut two = SerialDigest::new();
        two.field(b"a");
        two.field(b"bc");
        assert_ne!(one.finish(), two.finish());
    }

    #[test]
    fn equal_input_gives_equal_serial() {
        let digest = |text: &[u8]| {
            let mut d = SerialDigest::new();
            d.field(text);
            d.number(7);
            d.finish()
        };
        assert_eq!(digest(b"zone"), digest(b"zone"));
        assert_ne!(digest(b"zone"), digest(b"zona"));
    }
}
