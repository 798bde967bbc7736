//! Everything the gateway wants written in its own cluster for one desired state: published
//! ingress slices (exporter side), ServiceImports and their EndpointSlices (importer side), and
//! ServiceExport and WANRoute conditions. A pure function of the catalog, the desired state and what the
//! cluster's ServiceExports say now ([`plan`]); [`WritePlanner`] gives the same, plan after
//! plan, planning again only the services a plan changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use super::object::{ObjectId, Write, Writes};
use super::snapshot::Observed;
use super::{import, publish, status};
use crate::catalog::Catalog;
use crate::desired::{DesiredState, Planned, VirtualServer};
use crate::model::ServiceKey;

/// Virtual servers by service, so that each service's are found without a scan.
pub fn by_service<'a>(
    servers: impl IntoIterator<Item = &'a VirtualServer>,
) -> BTreeMap<&'a ServiceKey, Vec<&'a VirtualServer>> {
    let mut out: BTreeMap<&ServiceKey, Vec<&VirtualServer>> = BTreeMap::new();
    for vs in servers {
        out.entry(&vs.service).or_default().push(vs);
    }
    out
}

/// Every write of `state`.
pub fn plan(
    cluster_id: &str,
    catalog: &Catalog,
    state: &DesiredState,
    observed: &Observed,
    now: Timestamp,
) -> Writes {
    let mut planner = WritePlanner::default();
    let full = Planned::Full { why: "one plan" };
    let observed = Arc::new(observed.clone());
    let (writes, _) = planner.plan(cluster_id, catalog, state, &full, &observed, now);
    drop(planner);
    Arc::unwrap_or_clone(writes)
}

/// What the writes of a plan are made from.
struct PlanInputs<'a> {
    cluster_id: &'a str,
    catalog: &'a Catalog,
    state: &'a DesiredState,
    observed: &'a Observed,
    now: Timestamp,
}

/// The writes of the services `only` names (every service's when `None`), each with the
/// service it belongs to: ingress slices and export status (exporter side), ServiceImport and
/// its EndpointSlices (importer side).
fn service_writes(
    inputs: &PlanInputs<'_>,
    only: Option<&BTreeSet<ServiceKey>>,
    add: &mut impl FnMut(&ServiceKey, Write),
) {
    let PlanInputs {
        cluster_id,
        catalog,
        state,
        observed,
        now,
    } = *inputs;
    let wanted = |key: &ServiceKey| only.is_none_or(|only| only.contains(key));
    let ingress = by_service(state.ipvs.ingress.iter().filter(|vs| wanted(&vs.service)));
    let egress = by_service(state.ipvs.egress.iter().filter(|vs| wanted(&vs.service)));
    let local = catalog.clusters.get(cluster_id);
    for export in state.exports.iter().filter(|e| wanted(&e.key)) {
        if let Some(local) = local {
            let vss = servers(&ingress, &export.key);
            for w in publish::export_slices(cluster_id, local, vss, export) {
                add(&export.key, w);
            }
        }
        let conditions = observed
            .export_conditions
            .get(&export.key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let generation = observed.export_generations.get(&export.key).copied();
        add(
            &export.key,
            status::export_status(export, conditions, generation, now),
        );
    }
    for i in state.imports.iter().filter(|i| wanted(&i.key)) {
        for w in import::service_import(i) {
            add(&i.key, w);
        }
        for w in import::import_slices(catalog, servers(&egress, &i.key), i) {
            add(&i.key, w);
        }
    }
}

fn servers<'a, 'm>(
    map: &'m BTreeMap<&ServiceKey, Vec<&'a VirtualServer>>,
    key: &ServiceKey,
) -> &'m [&'a VirtualServer] {
    map.get(key).map(Vec::as_slice).unwrap_or_default()
}

/// The status write of every WANRoute of the cluster.
fn wan_route_writes(inputs: &PlanInputs<'_>) -> Vec<Write> {
    inputs
        .observed
        .wan_routes
        .iter()
        .map(|(key, (generation, conditions))| {
            let valid =
                crate::desired::wan_route_condition(inputs.cluster_id, key, &inputs.state.problems);
            status::wan_route_status(key, &valid, conditions, *generation, inputs.now)
        })
        .collect()
}

/// The writes of desired state after desired state, remembering the last: after a plan of
/// some services ([`Planned::Services`]), only their writes, those of the exports whose
/// observed conditions or generation changed and the WANRoutes' statuses are planned again;
/// every other write is the last plan's (shared, not copied). The result is exactly
/// [`plan`]'s, but for the transition times of conditions, which are the ones of the plan
/// that first wrote them (the writer leaves times out of what it compares).
///
/// It must see every plan of the [`crate::desired::Planner`] whose results it is given, in
/// order: a partial plan names what changed since the one before.
#[derive(Debug, Default)]
pub struct WritePlanner {
    last: Option<LastWrites>,
}

#[derive(Debug)]
struct LastWrites {
    cluster_id: String,
    writes: Arc<Writes>,
    /// The writes of each service, as [`service_writes`] gave them.
    by_service: BTreeMap<ServiceKey, Vec<ObjectId>>,
    /// The WANRoute status writes.
    routes: Vec<ObjectId>,
    observed: Arc<Observed>,
}

/// How the last [`WritePlanner::plan`] was made, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritesPlanned {
    /// Every write planned.
    Full,
    /// The writes of this many services planned again.
    Services(usize),
}

impl WritePlanner {
    pub fn plan(
        &mut self,
        cluster_id: &str,
        catalog: &Catalog,
        state: &DesiredState,
        planned: &Planned,
        observed: &Arc<Observed>,
        now: Timestamp,
    ) -> (Arc<Writes>, WritesPlanned) {
        let inputs = PlanInputs {
            cluster_id,
            catalog,
            state,
            observed,
            now,
        };
        if let (Some(last), Planned::Services { changed }) = (&mut self.last, planned) {
            if last.cluster_id == cluster_id {
                let mut services = changed.clone();
                if !Arc::ptr_eq(&last.observed, observed) {
                    observed_changes(&last.observed, observed, &mut services);
                }
                let n = services.len();
                last.update(&inputs, &services, observed.clone());
                return (last.writes.clone(), WritesPlanned::Services(n));
            }
        }
        let mut writes = Writes::new();
        let mut by_service: BTreeMap<ServiceKey, Vec<ObjectId>> = BTreeMap::new();
        service_writes(&inputs, None, &mut |key, w| {
            by_service
                .entry(key.clone())
                .or_default()
                .push(w.id.clone());
            writes.insert(w.id.clone(), Arc::new(w));
        });
        let mut routes = Vec::new();
        for w in wan_route_writes(&inputs) {
            routes.push(w.id.clone());
            writes.insert(w.id.clone(), Arc::new(w));
        }
        let writes = Arc::new(writes);
        self.last = Some(LastWrites {
            cluster_id: cluster_id.to_owned(),
            writes: writes.clone(),
            by_service,
            routes,
            observed: observed.clone(),
        });
        (writes, WritesPlanned::Full)
    }
}

impl LastWrites {
    /// Plans the writes of `services` and the WANRoutes again; keeps every other.
    fn update(
        &mut self,
        inputs: &PlanInputs<'_>,
        services: &BTreeSet<ServiceKey>,
        observed: Arc<Observed>,
    ) {
        let mut writes = (*self.writes).clone();
        for id in self.routes.drain(..) {
            writes.remove(&id);
        }
        for key in services {
            for id in self.by_service.remove(key).unwrap_or_default() {
                writes.remove(&id);
            }
        }
        service_writes(inputs, Some(services), &mut |key, w| {
            self.by_service
                .entry(key.clone())
                .or_default()
                .push(w.id.clone());
            writes.insert(w.id.clone(), Arc::new(w));
        });
        for w in wan_route_writes(inputs) {
            self.routes.push(w.id.clone());
            writes.insert(w.id.clone(), Arc::new(w));
        }
        self.writes = Arc::new(writes);
        self.observed = observed;
    }
}

/// Adds to `out` the exports whose observed conditions or generation differ.
fn observed_changes(before: &Observed, now: &Observed, out: &mut BTreeSet<ServiceKey>) {
    crate::desired::differing(&before.export_conditions, &now.export_conditions, out);
    crate::desired::differing(&before.export_generations, &now.export_generations, out);
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    use super::*;
    use crate::desired::{self, Allocations, PlanConfig};
    use crate::kube::object::{Kind, Part};
    use crate::model::ServiceKey;

    fn state_of(catalog: &Catalog, cluster: &str) -> DesiredState {
        desired::compute(desired::Inputs {
            catalog,
            cluster_id: cluster,
            config: &PlanConfig::default(),
            previous: &Allocations::default(),
            down: &Default::default(),
        })
    }

    fn writes_of(catalog: &Catalog, cluster: &str) -> Writes {
        let state = state_of(catalog, cluster);
        plan(
            cluster,
            catalog,
            &state,
            &Observed::default(),
            Timestamp::UNIX_EPOCH,
        )
    }

    fn find<'a>(writes: &'a Writes, kind: Kind, part: Part, ns: &str, name: &str) -> &'a Write {
        writes
            .values()
            .find(|w| {
                w.id.kind == kind && w.id.part == part && w.id.namespace == ns && w.id.name == name
            })
            .unwrap_or_else(|| panic!("no {kind:?} {ns}/{name} in {:#?}", writes.keys()))
    }

    #[test]
    fn the_exporter_publishes_its_ingress_address_and_ports_without_the_kube_proxy_label() {
        let catalog = crate::catalog::embedded_example();
        let state = state_of(&catalog, "cluster-1");
        let writes = writes_of(&catalog, "cluster-1");
        let slice = find(
            &writes,
            Kind::EndpointSlice,
            Part::Object,
            "secure",
            "payment-mcwan-cluster-1",
        );
        let labels = &slice.body["metadata"]["labels"];
        assert_eq!(labels["multicluster.kubernetes.io/service-name"], "payment");
        assert_eq!(
            labels["multicluster.kubernetes.io/source-cluster"],
            "cluster-1"
        );
        assert_eq!(
            labels["endpointslice.kubernetes.io/managed-by"],
            "mcwan.l7mp.io"
        );
        assert_eq!(labels["mcw.l7mp.io/slice"], "ingress");
        assert!(labels.get("kubernetes.io/service-name").is_none());
        let ingress = state
            .ipvs
            .ingress
            .iter()
            .find(|vs| vs.service == ServiceKey::new("secure", "payment"))
            .unwrap();
        assert_eq!(
            slice.body["endpoints"][0]["addresses"][0],
            ingress.address.to_string()
        );
        assert_eq!(slice.body["ports"][0]["name"], "http");
        assert_eq!(slice.body["ports"][0]["port"], ingress.port);
        assert!(slice.body["ports"][0].get("appProtocol").is_none());
    }

    #[test]
    fn published_ingress_ports_read_back_as_the_exporters_allocation() {
        let catalog = crate::catalog::embedded_example();
        let state = state_of(&catalog, "cluster-1");
        let writes = writes_of(&catalog, "cluster-1");
        let slices: Vec<&Write> = writes
            .values()
            .map(|w| &**w)
            .filter(|w| w.body["metadata"]["labels"]["mcw.l7mp.io/slice"] == "ingress")
            .collect();
        assert!(!slices.is_empty());
        let decoded = read_back(&catalog, &slices);
        assert_eq!(&decoded, &state.allocations.ingress_ports["cluster-1"]);
    }

    /// The ingress ports cluster-1's published `slices` say, as an importer reads them.
    fn read_back(catalog: &Catalog, slices: &[&Write]) -> crate::desired::IngressPorts {
        let slices: Vec<EndpointSlice> = slices
            .iter()
            .map(|w| serde_json::from_value(w.body.clone()).unwrap())
            .collect();
        let refs: Vec<&EndpointSlice> = slices.iter().collect();
        let mut problems = Vec::new();
        let decoded = crate::kube::publish::decode(
            "cluster-1",
            &refs,
            &catalog.clusters["cluster-1"],
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        decoded
    }

    #[test]
    fn each_routed_class_is_published_in_a_slice_of_its_own_and_read_back() {
        let catalog = crate::l7::fixtures::example_with_seed_route();
        let state = state_of(&catalog, "cluster-1");
        let writes = writes_of(&catalog, "cluster-1");
        let own = find(
            &writes,
            Kind::EndpointSlice,
            Part::Object,
            "secure",
            "payment-mcwan-cluster-1",
        );
        let routed = find(
            &writes,
            Kind::EndpointSlice,
            Part::Object,
            "secure",
            "payment-mcwan-cluster-1-default",
        );
        assert_eq!(
            own.body["metadata"]["annotations"]["mcw.l7mp.io/tunnel-class"],
            "business"
        );
        assert!(own.body["metadata"]["annotations"]
            .get("mcw.l7mp.io/route-class")
            .is_none());
        let annotations = &routed.body["metadata"]["annotations"];
        assert_eq!(annotations["mcw.l7mp.io/tunnel-class"], "default");
        assert_eq!(annotations["mcw.l7mp.io/route-class"], "default");
        // Each slice's endpoint is the gateway's address on its class.
        assert_ne!(
            own.body["endpoints"][0]["addresses"][0],
            routed.body["endpoints"][0]["addresses"][0]
        );
        let decoded = read_back(&catalog, &[own, routed]);
        let payment: BTreeMap<_, _> = state.allocations.ingress_ports["cluster-1"]
            .iter()
            .filter(|(k, _)| k.service.name == "payment")
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        assert_eq!(payment.len(), 2);
        assert_eq!(*decoded, payment);
    }

    #[test]
    fn the_importer_writes_a_service_import_with_the_vip_and_a_slice_per_source_cluster() {
        let catalog = crate::catalog::embedded_example();
        let state = state_of(&catalog, "cluster-2");
        let writes = writes_of(&catalog, "cluster-2");
        let import = state
            .imports
            .iter()
            .find(|i| i.key == ServiceKey::new("secure", "payment"))
            .unwrap();
        let si = find(
            &writes,
            Kind::ServiceImport,
            Part::Object,
            "secure",
            "payment",
        );
        assert_eq!(si.body["spec"]["type"], "ClusterSetIP");
        assert_eq!(si.body["spec"]["ips"][0], import.vip.unwrap().to_string());
        let status = find(
            &writes,
            Kind::ServiceImport,
            Part::Status,
            "secure",
            "payment",
        );
        assert_eq!(status.body["status"]["clusters"][0]["cluster"], "cluster-1");
        let slice = find(
            &writes,
            Kind::EndpointSlice,
            Part::Object,
            "secure",
            "payment-import-cluster-1",
        );
        let egress = state
            .ipvs
            .egress
            .iter()
            .find(|vs| vs.service == import.key)
            .unwrap();
        assert_eq!(
            slice.body["endpoints"][0]["addresses"][0],
            egress.reals[0].address.to_string()
        );
        assert_eq!(slice.body["ports"][0]["port"], egress.reals[0].port);
        assert_eq!(
            slice.body["metadata"]["labels"]["mcw.l7mp.io/slice"],
            "import"
        );
    }

    #[test]
    fn every_own_export_gets_a_status_write_and_nothing_else_is_written_for_other_clusters() {
        let catalog = crate::catalog::embedded_example();
        let writes = writes_of(&catalog, "cluster-1");
        let statuses = writes
            .keys()
            .filter(|id| id.kind == Kind::ServiceExport)
            .count();
        assert_eq!(statuses, catalog.clusters["cluster-1"].exports.len());
        assert!(writes_of(&catalog, "cluster-2")
            .keys()
            .all(|id| id.kind != Kind::ServiceExport));
    }
}
