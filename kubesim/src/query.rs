//! Query parameters of API requests.
//!
//! `limit` and `continue` are accepted and ignored: lists always come back whole, with
//! no continue token, which clients handle as the last page. `fieldValidation`,
//! `pretty` and `propagationPolicy` are accepted and ignored too.

use std::time::Duration;

use crate::error::ApiError;

/// The query parameters the simulator understands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// `watch=true` or `watch=1`.
    pub watch: bool,
    /// `resourceVersion`, verbatim (may be empty).
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`: `Exact` or `NotOlderThan`.
    pub resource_version_match: Option<String>,
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `allowWatchBookmarks=true`.
    pub allow_bookmarks: bool,
    /// `timeoutSeconds` for watches.
    pub timeout: Option<Duration>,
    /// `sendInitialEvents=true` for watches.
    pub send_initial_events: bool,
    /// `fieldManager` for writes.
    pub field_manager: Option<String>,
    /// `force=true` for server-side apply.
    pub force: bool,
    /// `dryRun=All`: validate and answer, but do not persist.
    pub dry_run: bool,
}

impl Query {
    /// Parse a raw query string (without the leading `?`).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut query = Query::default();
        let Some(raw) = raw else {
            return Ok(query);
        };
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "watch" => query.watch = flag(&value),
                "resourceVersion" => query.resource_version = Some(value.into_owned()),
                "resourceVersionMatch" => query.resource_version_match = Some(value.into_owned()),
                "labelSelector" => query.label_selector = Some(value.into_owned()),
                "fieldSelector" => query.field_selector = Some(value.into_owned()),
                "allowWatchBookmarks" => query.allow_bookmarks = flag(&value),
                "sendInitialEvents" => query.send_initial_events = flag(&value),
                "fieldManager" => query.field_manager = Some(value.into_owned()),
                "force" => query.force = flag(&value),
                "dryRun" => query.dry_run = value == "All",
                "timeoutSeconds" => {
                    let seconds: u64 = value.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid timeoutSeconds {value:?}"))
                    })?;
                    query.timeout = Some(Duration::from_secs(seconds));
                }
                _ => {}
            }
        }
        Ok(query)
    }

    /// The requested resource version as a number; `None` for absent, empty or `"0"`
    /// (which mean "most recent" or "any").
    pub fn resource_version_number(&self) -> Result<Option<u64>, ApiError> {
        match self.resource_version.as_deref() {
            None | Some("") | Some("0") => Ok(None),
            Some(rv) => rv
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))),
        }
    }
}

fn flag(value: &str) -> bool {
    matches!(value, "true" | "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_watch_parameters() {
        let q = Query::parse(Some(
            "watch=1&resourceVersion=12&allowWatchBookmarks=true&timeoutSeconds=290&labelSelector=app%3Dweb",
        ))
        .expect("valid query");
        assert!(q.watch);
        assert!(q.allow_bookmarks);
        assert_eq!(q.resource_version_number().expect("number"), Some(12));
        assert_eq!(q.timeout, Some(Duration::from_secs(290)));
        assert_eq!(q.label_selector.as_deref(), Some("app=web"));
    }

    #[test]
    fn zero_and_empty_resource_versions_mean_any() {
        for raw in ["resourceVersion=0", "resourceVersion=", ""] {
            let q = Query::parse(Some(raw)).expect("valid query");
            assert_eq!(q.resource_version_number().expect("number"), None);
        }
    }

    #[test]
    fn rejects_garbage_resource_version() {
        let q = Query::parse(Some("resourceVersion=abc")).expect("parses");
        assert_eq!(q.resource_version_number().map_err(|e| e.code), Err(400));
    }
}
