//! Everything the gateway wants written in its own cluster for one desired state: published
//! ingress slices (exporter side), ServiceImports and their EndpointSlices (importer side), and
//! ServiceExport and WANRoute conditions. A pure function of the catalog, the desired state and what the
//! cluster's ServiceExports say now.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use super::object::{Write, Writes};
use super::snapshot::Observed;
use super::{import, publish, status};
use crate::catalog::Catalog;
use crate::desired::{DesiredState, VirtualServer};
use crate::model::ServiceKey;

/// Virtual servers by service, so that each service's are found without a scan.
pub fn by_service(servers: &[VirtualServer]) -> BTreeMap<&ServiceKey, Vec<&VirtualServer>> {
    let mut out: BTreeMap<&ServiceKey, Vec<&VirtualServer>> = BTreeMap::new();
    for vs in servers {
        out.entry(&vs.service).or_default().push(vs);
    }
    out
}

pub fn plan(
    cluster_id: &str,
    catalog: &Catalog,
    state: &DesiredState,
    observed: &Observed,
    now: Timestamp,
) -> Writes {
    let mut out = Writes::new();
    let mut add = |w: Write| {
        out.insert(w.id.clone(), w);
    };
    publish::ingress_slices(cluster_id, catalog, state)
        .into_iter()
        .for_each(&mut add);
    let egress = by_service(&state.ipvs.egress);
    for i in &state.imports {
        import::service_import(i).into_iter().for_each(&mut add);
        let vss = egress.get(&i.key).map(Vec::as_slice).unwrap_or_default();
        import::import_slices(catalog, vss, i)
            .into_iter()
            .for_each(&mut add);
    }
    for export in &state.exports {
        let conditions = observed
            .export_conditions
            .get(&export.key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let generation = observed.export_generations.get(&export.key).copied();
        add(status::export_status(export, conditions, generation, now));
    }
    for (key, (generation, conditions)) in &observed.wan_routes {
        let valid = crate::desired::wan_route_condition(cluster_id, key, &state.problems);
        add(status::wan_route_status(
            key,
            &valid,
            conditions,
            *generation,
            now,
        ));
    }
    out
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
