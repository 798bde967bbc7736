//! Manifests as the deployment tests read them (tests/deploy.rs, tests/helm.rs): YAML documents,
//! kustomize builds, strict parsing into the Kubernetes types, and the CRDs' schemas.
//!
//! A test binary that uses it also declares `mod testbed` (support/testbed.rs): kustomize runs
//! the testbed's kubectl.

#![allow(dead_code)] // each test binary uses a part of it
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test on any error

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every document of a multi-document YAML text (empty documents skipped).
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .expect("YAML documents")
        .into_iter()
        .filter(|doc| !doc.is_null())
        .collect()
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (scripts/install-test-deps installs it)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `kubectl kustomize DIR`, as documents.
pub fn kustomize(dir: &Path) -> Vec<Value> {
    let out = run(super::testbed::kubectl().arg("kustomize").arg(dir));
    yaml_docs(&String::from_utf8(out.stdout).expect("UTF-8"))
}

pub fn name_of(doc: &Value) -> String {
    format!(
        "{} {}/{}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["namespace"].as_str().unwrap_or(""),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Deserializes `doc` into `T`, serializes it back and compares: a field the type does not
/// have (unknown, misspelled, misplaced) is lost on the way and reported with its path.
pub fn roundtrip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<(), String> {
    let typed: T = serde_path_to_error::deserialize(doc.clone())
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut diffs = Vec::new();
    compare("", doc, &back, &mut diffs);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

pub fn compare(path: &str, input: &Value, output: &Value, diffs: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let p = format!("{path}.{key}");
                match b.get(key) {
                    None if value.is_null() => {}
                    None => diffs.push(format!("{p}: unknown field")),
                    Some(other) => compare(&p, value, other, diffs),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(&format!("{path}[{i}]"), x, y, diffs);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) if a == b => {}
        (a, b) => diffs.push(format!("{path}: {a} reads back as {b}")),
    }
}

/// Parses a manifest strictly into the Kubernetes type of its apiVersion and kind.
pub fn parse_strictly(doc: &Value) -> Result<(), String> {
    use k8s_openapi::api::apps::v1 as apps;
    use k8s_openapi::api::core::v1 as core;
    use k8s_openapi::api::rbac::v1 as rbac;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api_version = doc["apiVersion"].as_str().unwrap_or("");
    let kind = doc["kind"].as_str().unwrap_or("");
    match (api_version, kind) {
        ("v1", "Namespace") => roundtrip::<core::Namespace>(doc),
        ("v1", "ServiceAccount") => roundtrip::<core::ServiceAccount>(doc),
        ("v1", "Secret") => roundtrip::<core::Secret>(doc),
        ("v1", "ConfigMap") => roundtrip::<core::ConfigMap>(doc),
        ("v1", "Service") => roundtrip::<core::Service>(doc),
        ("apps/v1", "DaemonSet") => roundtrip::<apps::DaemonSet>(doc),
        ("apps/v1", "Deployment") => roundtrip::<apps::Deployment>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => roundtrip::<rbac::ClusterRole>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            roundtrip::<rbac::ClusterRoleBinding>(doc)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => roundtrip::<rbac::Role>(doc),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => roundtrip::<rbac::RoleBinding>(doc),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            roundtrip::<CustomResourceDefinition>(doc)
        }
        ("mcw.l7mp.io/v1alpha1", "WANPolicy") => roundtrip::<mcwan::crd::WanPolicy>(doc),
        ("mcw.l7mp.io/v1alpha1", "WANRoute") => roundtrip::<mcwan::crd::WanRoute>(doc),
        ("about.k8s.io/v1alpha1", "ClusterProperty") => {
            roundtrip::<mcwan::crd::ClusterProperty>(doc)
        }
        ("multicluster.x-k8s.io/v1alpha1", "ServiceExport") => {
            roundtrip::<mcwan::crd::ServiceExport>(doc)
        }
        ("monitoring.coreos.com/v1", "PodMonitor") => roundtrip::<monitoring::PodMonitor>(doc),
        ("monitoring.coreos.com/v1", "PrometheusRule") => {
            roundtrip::<monitoring::PrometheusRule>(doc)
        }
        _ => Err(format!(
            "no Kubernetes type known for {api_version} {kind}: add it to parse_strictly"
        )),
    }
}

/// An OpenAPI v3 structural schema of a CRD as JSON Schema (draft 4, which OpenAPI 3.0's
/// schema object extends): `nullable` becomes a `null` type, `x-kubernetes-int-or-string` an
/// integer-or-string, and objects with `properties` reject other fields (as kube-apiserver does
/// under kubectl's default strict field validation) unless they preserve unknown fields.
pub fn json_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let flag = |key: &str| map.get(key) == Some(&Value::Bool(true));
    let mut out = Map::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "properties" | "patternProperties" | "definitions" => Value::Object(
                value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, s)| (name.clone(), json_schema(s)))
                    .collect(),
            ),
            "items" | "additionalProperties" | "not" => json_schema(value),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(json_schema)
                    .collect(),
            ),
            "nullable" => continue,
            k if k.starts_with("x-kubernetes-") => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if flag("x-kubernetes-int-or-string") {
        out.remove("type");
        out.insert(
            "anyOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    if flag("nullable") {
        if let Some(Value::String(t)) = out.get("type").cloned() {
            out.insert("type".into(), json!([t, "null"]));
        }
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    if out.contains_key("properties")
        && !out.contains_key("additionalProperties")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Validators for every served version of the CRDs, by (apiVersion, kind).
pub fn crd_validators(crds: &[Value]) -> HashMap<(String, String), jsonschema::Validator> {
    let mut validators = HashMap::new();
    for crd in crds
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
    {
        let group = crd["spec"]["group"].as_str().expect("spec.group");
        let kind = crd["spec"]["names"]["kind"].as_str().expect("names.kind");
        for version in crd["spec"]["versions"].as_array().expect("versions") {
            let mut schema = json_schema(&version["schema"]["openAPIV3Schema"]);
            // kube-apiserver validates these itself, for every kind.
            let props = schema["properties"].as_object_mut().expect("properties");
            props.insert("apiVersion".into(), json!({"type": "string"}));
            props.insert("kind".into(), json!({"type": "string"}));
            props.insert("metadata".into(), json!({"type": "object"}));
            let validator = jsonschema::draft4::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("the schema of {kind} is not a valid schema: {e}"));
            let api_version = format!("{group}/{}", version["name"].as_str().expect("name"));
            validators.insert((api_version, kind.to_owned()), validator);
        }
    }
    validators
}

pub fn committed_crds() -> Vec<Value> {
    yaml_docs(&read(&repo().join("deploy/crds/crds.yaml")))
}

/// The schema violations of `object` ("/spec/port: ..."), or an error when no CRD serves it.
pub fn schema_errors(
    validators: &HashMap<(String, String), jsonschema::Validator>,
    object: &Value,
) -> Result<Vec<String>, String> {
    let key = (
        object["apiVersion"].as_str().unwrap_or("").to_owned(),
        object["kind"].as_str().unwrap_or("").to_owned(),
    );
    let validator = validators
        .get(&key)
        .ok_or_else(|| format!("no CRD serves {} {}", key.0, key.1))?;
    Ok(validator
        .iter_errors(object)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect())
}

pub fn is_custom(doc: &Value) -> bool {
    let api_version = doc["apiVersion"].as_str().unwrap_or("");
    ["mcw.l7mp.io/", "about.k8s.io/", "multicluster.x-k8s.io/"]
        .iter()
        .any(|g| api_version.starts_with(g))
}

/// Strict parsing plus, for custom objects, the CRD schema; every problem of every document.
pub fn check_manifests(origin: &str, docs: &[Value], crds: &[Value]) -> Vec<String> {
    let validators = crd_validators(crds);
    let mut problems = Vec::new();
    for doc in docs {
        if let Err(e) = parse_strictly(doc) {
            problems.push(format!("{origin}: {}: {e}", name_of(doc)));
        }
        if is_custom(doc) {
            match schema_errors(&validators, doc) {
                Ok(errors) => problems.extend(
                    errors
                        .into_iter()
                        .map(|e| format!("{origin}: {}: {e}", name_of(doc))),
                ),
                Err(e) => problems.push(format!("{origin}: {}: {e}", name_of(doc))),
            }
        }
    }
    problems
}

pub fn find<'a>(docs: &'a [Value], kind: &str, name_prefix: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name_prefix))
        })
        .unwrap_or_else(|| panic!("no {kind} {name_prefix}"))
}

/// Loads a clusterset file as the gateway does, failing on any problem it reports.
pub fn assert_clusterset_loads(origin: &str, text: &str) -> mcwan::catalog::ClusterSet {
    let file = mcwan::catalog::parse_clusterset(text).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let mut problems = Vec::new();
    let set = mcwan::catalog::ClusterSet::from_file(file, &mut problems);
    assert!(problems.is_empty(), "{origin}: {problems:?}");
    set
}

/// The prometheus-operator kinds (`monitoring.coreos.com/v1`) the deployment renders, with the
/// fields of its API reference that mcwan's objects may use; anything else is an unknown field.
pub mod monitoring {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PodMonitor {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: PodMonitorSpec,
    }

    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PodMonitorSpec {
        pub selector: LabelSelector,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub namespace_selector: Option<NamespaceSelector>,
        pub pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub job_label: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub pod_target_labels: Option<Vec<String>>,
    }

    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct NamespaceSelector {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub any: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub match_names: Option<Vec<String>>,
    }

    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PodMetricsEndpoint {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub port: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scheme: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrape_timeout: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub honor_labels: Option<bool>,
    }

    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PrometheusRule {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: PrometheusRuleSpec,
    }

    #[derive(Deserialize, Serialize)]
    pub struct PrometheusRuleSpec {
        pub groups: Vec<RuleGroup>,
    }

    #[derive(Deserialize, Serialize)]
    pub struct RuleGroup {
        pub name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<String>,
        pub rules: Vec<Rule>,
    }

    #[derive(Deserialize, Serialize)]
    pub struct Rule {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub alert: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub record: Option<String>,
        pub expr: String,
        #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
        pub for_: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub labels: Option<BTreeMap<String, String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub annotations: Option<BTreeMap<String, String>>,
    }
}
