//! Patch formats: JSON merge patch (RFC 7386) and JSON patch (RFC 6902) by the `json-patch`
//! crate, a strategic-merge-patch subset, and server-side apply with field ownership.

pub mod apply;
pub mod fields;
pub mod merge;

use crate::error::ApiError;

/// The patch formats a `PATCH` request may carry, chosen by its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/json-patch+json`
    Json,
    /// `application/apply-patch+yaml`
    Apply,
}

impl PatchKind {
    /// The patch kind for a `Content-Type` header value (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            _ => Err(ApiError::unsupported_media_type(content_type)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_select_patch_kinds() {
        let kind = |ct| PatchKind::from_content_type(ct).map_err(|e| e.code);
        assert_eq!(kind("application/merge-patch+json"), Ok(PatchKind::Merge));
        assert_eq!(
            kind("application/apply-patch+yaml; charset=utf-8"),
            Ok(PatchKind::Apply)
        );
        assert_eq!(kind("text/plain"), Err(415));
    }
}
