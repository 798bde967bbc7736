//! DNS label checks for the names Kubernetes hands us.

use thiserror::Error;

/// The longest label DNS allows.
const MAX_LABEL_LEN: usize = 63;

/// Why a string is not an RFC 1123 DNS label.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LabelError {
    /// The label is empty.
    #[error("it is empty")]
    Empty,
    /// The label is longer than 63 characters.
    #[error("it has {len} characters, more than {MAX_LABEL_LEN}")]
    TooLong {
        /// The label's length.
        len: usize,
    },
    /// The label holds a character other than `a-z`, `0-9` and `-`.
    #[error("it contains {character:?}; only a-z, 0-9 and '-' are allowed")]
    InvalidCharacter {
        /// The first offending character.
        character: char,
    },
    /// The label starts or ends with `-`.
    #[error("it starts or ends with '-'")]
    EdgeHyphen,
}

/// Checks that `value` is an RFC 1123 label in the lower case Kubernetes uses.
pub(crate) fn check_label(value: &str) -> Result<(), LabelError> {
    if value.is_empty() {
        return Err(LabelError::Empty);
    }
    if value.len() > MAX_LABEL_LEN {
        return Err(LabelError::TooLong { len: value.len() });
    }
    if let Some(character) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(LabelError::InvalidCharacter { character });
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(LabelError::EdgeHyphen);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names_are_valid_labels() {
        for name in [
            "payment",
            "a",
            "web-0",
            "721ab723-13bc-11e5-aec2-42010af0021e",
        ] {
            assert_eq!(check_label(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn malformed_labels_are_rejected_with_the_reason() {
        assert_eq!(check_label(""), Err(LabelError::Empty));
        assert_eq!(
            check_label(&"a".repeat(64)),
            Err(LabelError::TooLong { len: 64 })
        );
        assert_eq!(
            check_label("Payment"),
            Err(LabelError::InvalidCharacter { character: 'P' })
        );
        assert_eq!(
            check_label("a.b"),
            Err(LabelError::InvalidCharacter { character: '.' })
        );
        assert_eq!(
            check_label("_http"),
            Err(LabelError::InvalidCharacter { character: '_' })
        );
        assert_eq!(check_label("-web"), Err(LabelError::EdgeHyphen));
        assert_eq!(check_label("web-"), Err(LabelError::EdgeHyphen));
    }
}
