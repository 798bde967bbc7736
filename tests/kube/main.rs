//! Kubernetes mode end to end: KubeSim API servers play the clusters, `mcwan gateway --kube`
//! runs per cluster with its kubeconfig and its peers', and the tests look at what users see:
//! ServiceImports, EndpointSlices, ServiceExport conditions, Events, DNS answers.

mod cli;
mod conditions;
mod convergence;
mod import;
mod outage;
mod support;
