use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `WANRoute` gives an exported service per-request WAN classes: HTTP requests matched by
/// method, path and headers (as Gateway API's `HTTPRouteMatch`) are carried over the WANPolicy a
/// rule names, or denied; requests no rule matches take `spec.http.default`. Its name and
/// namespace are the exported service's; it lives next to the ServiceExport in the exporting
/// cluster. A plain ServiceExport without a WANRoute is carried whole over its one WANPolicy.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "mcw.l7mp.io",
    version = "v1alpha1",
    kind = "WANRoute",
    root = "WanRoute",
    doc = "WANRoute gives the exported service of the same namespace and name per-request WAN classes: HTTP requests matched by method, path and headers (as Gateway API HTTPRouteMatch) are carried over the WANPolicy a rule names, or denied; requests that no rule matches take spec.http.default. It lives next to the ServiceExport in the exporting cluster; mcwan reports the Valid condition.",
    plural = "wanroutes",
    namespaced,
    status = "WanRouteStatus",
    shortname = "wanrt",
    printcolumn = r#"{"name":"Default","type":"string","jsonPath":".spec.http.default.wanPolicy"}"#,
    printcolumn = r#"{"name":"Valid","type":"string","jsonPath":".status.conditions[?(@.type==\"Valid\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WanRouteSpec {
    /// The HTTP rules of the service.
    pub http: HttpWanRoute,
}

/// HTTP rules, tried in order: the first rule with a fitting match decides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpWanRoute {
    /// The rules, tried in order; the first rule one of whose matches fits the request decides.
    /// At most 15 (with at most 8 matches each), so that the Gateway API HTTPRoute mcwan renders
    /// (the rules and a catch-all for the default) stays within HTTPRoute's limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 15))]
    pub rules: Vec<HttpWanRule>,
    /// What happens to a request that no rule matches.
    pub default: WanAction,
}

/// One rule: its matches and its action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.wanPolicy) != has(self.deny)", "message": "name a wanPolicy or set deny: true (one of the two)"},
    {"rule": "!has(self.deny) || self.deny", "message": "deny can only be true"},
]))]
pub struct HttpWanRule {
    /// The rule applies to a request that any of these matches fits (at least one).
    #[schemars(length(min = 1, max = 8))]
    pub matches: Vec<HttpWanMatch>,
    /// What happens to a request the rule applies to.
    #[serde(flatten)]
    pub action: WanAction,
}

/// Where a request goes: over a WANPolicy's tunnel class, or nowhere (answered 403 by the
/// importing gateway). Exactly one of the two.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.wanPolicy) != has(self.deny)", "message": "name a wanPolicy or set deny: true (one of the two)"},
    {"rule": "!has(self.deny) || self.deny", "message": "deny can only be true"},
]))]
pub struct WanAction {
    /// The WANPolicy whose tunnel class carries the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wan_policy: Option<String>,
    /// True: the request is denied (403) by the importing gateway and never crosses the WAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<bool>,
}

/// Conditions on a request, as Gateway API's HTTPRouteMatch; every condition stated must hold,
/// and at least one must be stated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpWanMatch {
    /// The request's method (GET, POST, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The request's path (without the query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
    /// Headers the request must carry, each with a fitting value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub headers: Vec<HttpHeaderMatch>,
}

/// A path condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpPathMatch {
    /// Exact, PathPrefix (whole path elements; the default) or RegularExpression (the whole path).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<PathMatchType>,
    /// The path, prefix or regular expression (an absolute path for Exact and PathPrefix).
    pub value: String,
}

/// How a path is matched (Gateway API's PathMatchType).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PathMatchType {
    /// The whole path, exactly.
    Exact,
    /// Whole path elements: `/payment` matches `/payment` and `/payment/1`, not `/payments`.
    PathPrefix,
    /// A regular expression (Rust `regex` syntax) that must match the whole path.
    RegularExpression,
}

/// How a header value is matched (Gateway API's HeaderMatchType).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HeaderMatchType {
    /// The whole value, exactly.
    Exact,
    /// A regular expression (Rust `regex` syntax) that must match the whole value.
    RegularExpression,
}

/// A header condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpHeaderMatch {
    /// The header's name (case-insensitive).
    pub name: String,
    /// Exact (the default) or RegularExpression (the whole value).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<HeaderMatchType>,
    /// The value or the regular expression.
    pub value: String,
}

/// What mcwan reports about the WANRoute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WanRouteStatus {
    /// Valid: the rules are usable (their WANPolicies exist, their regular expressions
    /// compile, the service is exported). Conditions of other types are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
