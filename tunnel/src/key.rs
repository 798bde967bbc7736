//! WireGuard keys: 32 bytes, written as standard base64 (as `wg genkey` / `wg pubkey` do).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use boringtun::x25519::{PublicKey, StaticSecret};

use crate::error::{Error, Result};

/// Length of a WireGuard (Curve25519) key in bytes.
pub const KEY_LEN: usize = 32;

/// A WireGuard key, private or public.
///
/// `Debug` never prints the bytes (the same type holds private keys); `Display` and
/// [`Key::to_base64`] do, so only call them on public keys.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A key from its raw bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Key(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A fresh private key from the operating system's random source (clamped as
    /// `wg genkey` does).
    pub fn generate() -> Self {
        let secret = StaticSecret::random_from_rng(rand_core::OsRng);
        let mut bytes = secret.to_bytes();
        clamp(&mut bytes);
        Key(bytes)
    }

    /// The public key of this private key.
    pub fn public_key(&self) -> Key {
        Key(PublicKey::from(&StaticSecret::from(self.0)).to_bytes())
    }

    /// Parses standard base64 (44 characters with one `=`).
    pub fn from_base64(text: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .map_err(|e| Error::InvalidKey(format!("not base64 ({e})")))?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
            Error::InvalidKey(format!("{} bytes, expected {KEY_LEN}", b.len()))
        })?;
        Ok(Key(bytes))
    }

    /// Parses lowercase or uppercase hex (the UAPI's encoding).
    pub fn from_hex(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.len() != KEY_LEN * 2 || !text.is_ascii() {
            return Err(Error::InvalidKey(format!(
                "hex key of {} characters, expected {}",
                text.len(),
                KEY_LEN * 2
            )));
        }
        let mut bytes = [0u8; KEY_LEN];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| Error::InvalidKey("not hex".into()))?;
        }
        Ok(Key(bytes))
    }

    /// Standard base64 of the key.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Lowercase hex of the key (the UAPI's encoding).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a base64 key from a file (a mounted Secret or a `wg genkey` output).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::KeyFile {
            path: path.to_owned(),
            source,
        })?;
        Key::from_base64(&text).map_err(|e| match e {
            Error::InvalidKey(reason) => {
                Error::InvalidKey(format!("{reason} in {}", path.display()))
            }
            other => other,
        })
    }
}

/// What `wg` warns about a key file: access by group or others. `None` when the file is private
/// (or cannot be looked at: reading it reports that).
pub fn key_file_exposure(path: impl AsRef<Path>) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = path.as_ref();
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} is accessible to others than its owner (mode {mode:04o}): a WireGuard private key should be 0600 or 0400",
            path.display()
        )
    })
}

fn clamp(bytes: &mut [u8; KEY_LEN]) {
    bytes[0] &= 248;
    bytes[31] = (bytes[31] & 127) | 64;
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl fmt::Display for Key {
    /// Base64: only for public keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl FromStr for Key {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Key::from_base64(s)
    }
}

/// A public key printed in full by `Debug` (public keys are not secret).
pub(crate) struct ShowPublic<'a>(pub &'a Key);

impl fmt::Debug for ShowPublic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_base64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7748 section 6.1 test vector (Alice).
    const ALICE_PRIVATE_HEX: &str =
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const ALICE_PUBLIC_HEX: &str =
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

    #[test]
    fn public_key_matches_rfc7748_vector() {
        let private = Key::from_hex(ALICE_PRIVATE_HEX).unwrap();
        assert_eq!(private.public_key().to_hex(), ALICE_PUBLIC_HEX);
    }

    #[test]
    fn base64_round_trips() {
        let key = Key::generate();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        assert!(text.ends_with('='));
        assert_eq!(Key::from_base64(&text).unwrap(), key);
        assert_eq!(text.parse::<Key>().unwrap(), key);
    }

    #[test]
    fn hex_round_trips() {
        let key = Key::generate();
        assert_eq!(Key::from_hex(&key.to_hex()).unwrap(), key);
    }

    #[test]
    fn generated_keys_are_clamped_and_distinct() {
        let a = Key::generate();
        let b = Key::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes()[0] & 7, 0);
        assert_eq!(a.as_bytes()[31] & 0xc0, 0x40);
    }

    #[test]
    fn rejects_wrong_length_and_garbage() {
        assert!(Key::from_base64("AAAA").is_err());
        assert!(Key::from_base64("not base64 at all!").is_err());
        assert!(Key::from_hex("zz").is_err());
    }

    #[test]
    fn debug_redacts_the_bytes() {
        let key = Key::generate();
        let shown = format!("{key:?}");
        assert_eq!(shown, "Key(<redacted>)");
        assert!(!shown.contains(&key.to_base64()));
    }

    #[test]
    fn a_key_file_readable_by_others_is_named() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = std::env::temp_dir().join(format!("mcwan-key-mode-{}", std::process::id()));
        std::fs::write(&path, format!("{}\n", Key::generate().to_base64())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = key_file_exposure(&path).expect("a warning");
        assert!(warning.contains("mode 0644"), "{warning}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(key_file_exposure(&path), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(key_file_exposure(&path), None);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn reads_a_key_file_with_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("mcwan-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("private");
        let key = Key::generate();
        std::fs::write(&path, format!("{}\n", key.to_base64())).unwrap();
        assert_eq!(Key::from_file(&path).unwrap(), key);
        std::fs::write(&path, "short\n").unwrap();
        let err = Key::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("private"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
