//! One cluster's reflector stores, converted into what the catalog holds: its
//! [`ClusterObjects`], the problems of objects that cannot be used (naming cluster, object and
//! field), and the ingress ports its gateway published. Pure: unit tests drive it without a
//! server.

use super::raw::Raw;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};

use crate::convert;
use crate::crd;
use crate::desired::IngressPorts;
use crate::model::{self, ClusterObjects, ExportGroup, ServiceKey};
use crate::problem::{ObjectRef, Problem};

/// The contents of one cluster's stores.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stores<'a> {
    pub namespaces: &'a [Arc<Namespace>],
    pub services: &'a [Arc<Service>],
    /// EndpointSlices of Services (labelled `kubernetes.io/service-name`).
    pub endpoint_slices: &'a [Arc<EndpointSlice>],
    pub exports: &'a [Arc<Raw<crd::ServiceExport>>],
    pub wan_policies: &'a [Arc<Raw<crd::WanPolicy>>],
    /// The ingress slices the cluster's gateway published.
    pub published: &'a [Arc<EndpointSlice>],
    /// WANImports (the gateway's own cluster only).
    pub wan_imports: &'a [Arc<Raw<crd::WanImport>>],
    /// WANRoutes (every cluster: importers read the exporters' rules).
    pub wan_routes: &'a [Arc<Raw<crd::WanRoute>>],
}

/// What one cluster contributes to the catalog. Equal snapshots mean nothing to recompute.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterSnapshot {
    pub objects: ClusterObjects,
    pub problems: Vec<Problem>,
    /// The ingress ports the cluster's gateway published, by service port.
    pub ingress_ports: IngressPorts,
}

/// What the gateway reads back from its own cluster but does not plan from: the conditions its
/// ServiceExports carry now (to keep `lastTransitionTime`), their `metadata.generation` (the
/// conditions' `observedGeneration`), and object UIDs (for Events).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub export_conditions: BTreeMap<ServiceKey, Vec<Condition>>,
    pub export_generations: BTreeMap<ServiceKey, i64>,
    /// Every WANRoute of the cluster (usable or not): its `metadata.generation` and the
    /// conditions it carries now.
    pub wan_routes: BTreeMap<ServiceKey, (Option<i64>, Vec<Condition>)>,
    pub uids: BTreeMap<ObjectRef, String>,
}

fn object_ref(kind: &str, meta: &ObjectMeta) -> ObjectRef {
    let name = meta.name.as_deref().unwrap_or("(unnamed)");
    match &meta.namespace {
        Some(ns) => ObjectRef::namespaced(kind, &ServiceKey::new(ns.clone(), name)),
        None => ObjectRef::cluster_scoped(kind, name),
    }
}

fn sorted<T: kube::Resource>(items: &[Arc<T>]) -> Vec<&Arc<T>> {
    let mut out: Vec<&Arc<T>> = items
        .iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .collect();
    out.sort_by(|a, b| {
        (&a.meta().namespace, &a.meta().name).cmp(&(&b.meta().namespace, &b.meta().name))
    });
    out
}

/// Converts one cluster's stores into its snapshot, store state after store state, converting
/// again only the Services, EndpointSlices and ServiceExports that changed: a reflector store
/// holds an object as the same `Arc` until the object changes, so an object seen at the last
/// build is taken as converted then (a relist, all new `Arc`s, converts everything once). The
/// unchanged objects of the snapshot are then the last snapshot's own, which the planner tells
/// apart from changed ones by pointer.
#[derive(Debug, Default)]
pub struct Builder {
    exports: Memo<Raw<crd::ServiceExport>, ExportConversion>,
    services: Memo<Service, Result<Arc<model::Service>, convert::FieldError>>,
    endpoint_slices: Memo<EndpointSlice, Result<Arc<model::EndpointSlice>, convert::FieldError>>,
}

/// What a ServiceExport converts to, with what the gateway observes of it.
type ExportConversion = Result<ConvertedExport, convert::FieldError>;

#[derive(Clone, Debug)]
struct ConvertedExport {
    export: Arc<model::ServiceExport>,
    warnings: Vec<convert::FieldError>,
    conditions: Option<Vec<Condition>>,
}

/// The conversions of the objects one build saw, by the address of each object's `Arc` (held
/// here, so no other object can have that address while its entry lasts).
#[derive(Debug)]
struct Memo<T, C> {
    last: HashMap<usize, (Arc<T>, C)>,
    next: HashMap<usize, (Arc<T>, C)>,
}

impl<T, C> Default for Memo<T, C> {
    fn default() -> Self {
        Self {
            last: HashMap::new(),
            next: HashMap::new(),
        }
    }
}

impl<T, C: Clone> Memo<T, C> {
    /// `convert(object)`, or what it gave at the last build for this very `Arc`.
    fn get(&mut self, object: &Arc<T>, convert: impl FnOnce(&T) -> C) -> C {
        let id = Arc::as_ptr(object) as usize;
        let converted = match self.last.remove(&id) {
            Some((_, converted)) => converted,
            None => convert(object),
        };
        self.next.insert(id, (object.clone(), converted.clone()));
        converted
    }

    /// Ends a build: the objects it did not see are forgotten.
    fn finish(&mut self) {
        self.last = std::mem::take(&mut self.next);
    }
}

impl Builder {
    /// Converts `cluster`'s stores as they are now. Objects being deleted count as gone.
    pub fn build(&mut self, cluster: &str, stores: &Stores<'_>) -> (ClusterSnapshot, Observed) {
        let built = self.convert(cluster, stores);
        self.exports.finish();
        self.services.finish();
        self.endpoint_slices.finish();
        built
    }

    fn convert(&mut self, cluster: &str, stores: &Stores<'_>) -> (ClusterSnapshot, Observed) {
        let mut objects = ClusterObjects::default();
        let mut problems = Vec::new();
        let mut observed = Observed::default();
        let uid = |uids: &mut BTreeMap<ObjectRef, String>, kind: &str, meta: &ObjectMeta| {
            if let Some(u) = &meta.uid {
                uids.insert(object_ref(kind, meta), u.clone());
            }
        };
        let fail =
            |problems: &mut Vec<Problem>, kind: &str, meta: &ObjectMeta, e: convert::FieldError| {
                problems.push(Problem::error(
                    Some(cluster),
                    object_ref(kind, meta),
                    Some(&e.field),
                    e.message,
                ));
            };

        for ns in sorted(stores.namespaces) {
            if let Some(name) = &ns.metadata.name {
                objects.namespaces.insert(name.clone());
            }
        }
        for raw in sorted(stores.exports) {
            uid(&mut observed.uids, "ServiceExport", &raw.metadata);
            let converted = self.exports.get(raw, |raw| {
                let export = raw.decode()?;
                let (e, warnings) = convert::service_export(&export, ExportGroup::Mcs)?;
                Ok(ConvertedExport {
                    export: Arc::new(e),
                    warnings,
                    conditions: export.status.map(|s| s.conditions),
                })
            });
            match converted {
                Ok(ConvertedExport {
                    export: e,
                    warnings,
                    conditions,
                }) => {
                    for w in warnings {
                        problems.push(Problem::warning(
                            Some(cluster),
                            object_ref("ServiceExport", &raw.metadata),
                            Some(&w.field),
                            w.message,
                        ));
                    }
                    if let Some(generation) = raw.metadata.generation {
                        observed
                            .export_generations
                            .insert(e.key.clone(), generation);
                    }
                    if let Some(conditions) = conditions {
                        observed.export_conditions.insert(e.key.clone(), conditions);
                    }
                    objects.exports.insert(e.key.clone(), e);
                }
                Err(e) => fail(&mut problems, "ServiceExport", &raw.metadata, e),
            }
        }
        // Services and their slices matter only where the same cluster exports them.
        let exported = |meta: &ObjectMeta, name: Option<&String>| {
            let namespace = meta
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned());
            name.is_some_and(|n| {
                objects
                    .exports
                    .contains_key(&ServiceKey::new(namespace, n.clone()))
            })
        };
        for svc in sorted(stores.services) {
            if !exported(&svc.metadata, svc.metadata.name.as_ref()) {
                continue;
            }
            uid(&mut observed.uids, "Service", &svc.metadata);
            match self
                .services
                .get(svc, |svc| convert::service(svc).map(Arc::new))
            {
                Ok(s) => {
                    objects.services.insert(s.key.clone(), s);
                }
                Err(e) => fail(&mut problems, "Service", &svc.metadata, e),
            }
        }
        for slice in sorted(stores.endpoint_slices) {
            let service = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(convert::LABEL_K8S_SERVICE_NAME));
            if !exported(&slice.metadata, service) {
                continue;
            }
            uid(&mut observed.uids, "EndpointSlice", &slice.metadata);
            match self
                .endpoint_slices
                .get(slice, |slice| convert::endpoint_slice(slice).map(Arc::new))
            {
                Ok(s) => objects
                    .endpoint_slices
                    .entry(s.service.clone())
                    .or_default()
                    .push(s),
                Err(e) => fail(&mut problems, "EndpointSlice", &slice.metadata, e),
            }
        }
        for raw in sorted(stores.wan_policies) {
            uid(&mut observed.uids, "WANPolicy", &raw.metadata);
            let policy = match raw.decode() {
                Ok(policy) => policy,
                Err(e) => {
                    fail(&mut problems, "WANPolicy", &raw.metadata, e);
                    continue;
                }
            };
            match convert::wan_policy(&policy) {
                Ok(p) => {
                    objects.wan_policies.insert(p.name.clone(), p);
                }
                Err(e) => fail(&mut problems, "WANPolicy", &policy.metadata, e),
            }
        }
        for raw in sorted(stores.wan_imports) {
            uid(&mut observed.uids, "WANImport", &raw.metadata);
            match raw.decode().and_then(|i| convert::wan_import(&i)) {
                Ok(i) => {
                    objects.wan_imports.insert(i.key.clone(), i);
                }
                Err(e) => fail(&mut problems, "WANImport", &raw.metadata, e),
            }
        }
        for raw in sorted(stores.wan_routes) {
            uid(&mut observed.uids, "WANRoute", &raw.metadata);
            if let Some(name) = &raw.metadata.name {
                let namespace = raw.metadata.namespace.as_deref().unwrap_or("default");
                let conditions = raw
                    .decode()
                    .ok()
                    .and_then(|r| r.status)
                    .map(|s| s.conditions)
                    .unwrap_or_default();
                observed.wan_routes.insert(
                    ServiceKey::new(namespace, name.clone()),
                    (raw.metadata.generation, conditions),
                );
            }
            match raw.decode().and_then(|r| convert::wan_route(&r)) {
                Ok(r) => {
                    objects.wan_routes.insert(r.key.clone(), r);
                }
                Err(e) => fail(&mut problems, "WANRoute", &raw.metadata, e),
            }
        }
        let published: Vec<&EndpointSlice> =
            sorted(stores.published).into_iter().map(|s| &**s).collect();
        let ingress_ports = super::publish::decode(cluster, &published, &objects, &mut problems);
        (
            ClusterSnapshot {
                objects,
                problems,
                ingress_ports,
            },
            observed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One build from scratch.
    fn build(cluster: &str, stores: &Stores<'_>) -> (ClusterSnapshot, Observed) {
        Builder::default().build(cluster, stores)
    }

    fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<T> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn export(ns: &str, name: &str) -> Arc<Raw<crd::ServiceExport>> {
        parse(json!({"metadata": {"name": name, "namespace": ns}, "spec": {}}))
    }

    #[test]
    fn services_and_slices_not_exported_by_their_cluster_are_left_out() {
        let services = [
            parse::<Service>(json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {}})),
            parse::<Service>(json!({"metadata": {"name": "b", "namespace": "ns"}, "spec": {}})),
        ];
        let exports = [export("ns", "a")];
        let (snap, _) = build(
            "c",
            &Stores {
                services: &services,
                exports: &exports,
                ..Default::default()
            },
        );
        let keys: Vec<_> = snap.objects.services.keys().cloned().collect();
        assert_eq!(keys, [ServiceKey::new("ns", "a")]);
    }

    #[test]
    fn a_build_converts_again_only_the_objects_that_changed() {
        let service = |name: &str, port: u16| {
            parse::<Service>(json!({"metadata": {"name": name, "namespace": "ns"},
                "spec": {"ports": [{"port": port}]}}))
        };
        let exports = [export("ns", "a"), export("ns", "b")];
        let before = [service("a", 80), service("b", 80)];
        let mut builder = Builder::default();
        let stores = |services| Stores {
            services,
            exports: &exports,
            ..Default::default()
        };
        let (one, _) = builder.build("c", &stores(&before));
        // The store holds a new object for b, the same for a.
        let after = [before[0].clone(), service("b", 81)];
        let (two, observed) = builder.build("c", &stores(&after));
        let (a, b) = (ServiceKey::new("ns", "a"), ServiceKey::new("ns", "b"));
        assert!(Arc::ptr_eq(
            &one.objects.services[&a],
            &two.objects.services[&a]
        ));
        assert!(Arc::ptr_eq(
            &one.objects.exports[&b],
            &two.objects.exports[&b]
        ));
        assert_eq!(two.objects.services[&b].ports[0].port, 81);
        // What a build from scratch gives.
        assert_eq!((two, observed), build("c", &stores(&after)));
    }

    #[test]
    fn a_bad_object_is_a_problem_naming_cluster_object_and_field_and_the_rest_loads() {
        let services = [
            parse::<Service>(json!({"metadata": {"name": "ok", "namespace": "ns"},
                "spec": {"ports": [{"port": 80}]}})),
            parse::<Service>(json!({"metadata": {"name": "bad", "namespace": "ns"},
                "spec": {"ports": [{"port": 70000}]}})),
        ];
        let exports = [export("ns", "ok"), export("ns", "bad")];
        let (snap, _) = build(
            "cluster-1",
            &Stores {
                services: &services,
                exports: &exports,
                ..Default::default()
            },
        );
        assert!(snap
            .objects
            .services
            .contains_key(&ServiceKey::new("ns", "ok")));
        assert_eq!(snap.problems.len(), 1);
        assert_eq!(
            snap.problems[0].to_string(),
            "cluster cluster-1: Service ns/bad: field spec.ports[0].port: 70000 is not a port in 1..=65535"
        );
    }

    #[test]
    fn objects_being_deleted_count_as_gone() {
        let exports = [parse::<Raw<crd::ServiceExport>>(json!({
            "metadata": {"name": "a", "namespace": "ns", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {}}))];
        let (snap, _) = build(
            "c",
            &Stores {
                exports: &exports,
                ..Default::default()
            },
        );
        assert!(snap.objects.exports.is_empty());
    }

    #[test]
    fn the_order_of_the_stores_does_not_matter() {
        let slice = |name: &str| {
            parse::<EndpointSlice>(json!({
                "metadata": {"name": name, "namespace": "ns",
                    "labels": {"kubernetes.io/service-name": "svc"}},
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]}))
        };
        let a = [slice("a"), slice("b")];
        let b = [slice("b"), slice("a")];
        let exports = [export("ns", "svc")];
        let one = build(
            "c",
            &Stores {
                endpoint_slices: &a,
                exports: &exports,
                ..Default::default()
            },
        )
        .0;
        let two = build(
            "c",
            &Stores {
                endpoint_slices: &b,
                exports: &exports,
                ..Default::default()
            },
        )
        .0;
        assert_eq!(one.objects.endpoint_slices.len(), 1);
        assert_eq!(one, two);
    }

    #[test]
    fn a_wan_policy_that_does_not_decode_is_a_problem_naming_it_and_the_others_load() {
        let policies = [
            parse::<Raw<crd::WanPolicy>>(json!({"metadata": {"name": "high", "uid": "u-1"},
                "spec": {"tunnel": "business", "port": 31111, "sla": {"latency-ms": -1}}})),
            parse::<Raw<crd::WanPolicy>>(json!({"metadata": {"name": "low"},
                "spec": {"tunnel": "default", "port": 31112}})),
        ];
        let (snap, observed) = build(
            "cluster-1",
            &Stores {
                wan_policies: &policies,
                ..Default::default()
            },
        );
        assert_eq!(
            snap.objects.wan_policies.keys().collect::<Vec<_>>(),
            ["low"]
        );
        assert_eq!(snap.problems.len(), 1, "{:#?}", snap.problems);
        let p = &snap.problems[0];
        assert_eq!(p.object.to_string(), "WANPolicy high");
        assert_eq!(p.field.as_deref(), Some("spec.sla.latency-ms"));
        // Its UID is known, so the Event can name the object.
        assert!(observed.uids.contains_key(&p.object));
    }
}
