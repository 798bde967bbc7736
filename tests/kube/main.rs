//! Kubernetes mode end to end: API servers play the clusters, `mcwan gateway --kube`
//! runs per cluster with its kubeconfig and its peers', and the tests look at what users see:
//! ServiceImports, EndpointSlices, ServiceExport conditions, Events, DNS answers.
//!
//! Each scenario runs twice (`support::on_both_api_servers!`): against kube-apiserver and etcd
//! (`testbed/apiserver`, built from the Kubernetes release's modules) and against KubeSim, so
//! that a difference between them fails a test. KubeSim stays for what it does better: it
//! starts in milliseconds and injects faults a real server cannot be asked for.

// The scenarios are plain async functions (the macro makes the tests): they fail the test on
// any error, as tests do.
#![allow(clippy::unwrap_used)]

mod agreement;
mod cli;
mod conditions;
mod convergence;
mod diagnose;
mod gather;
mod import;
mod join;
mod outage;
mod peer_dns;
mod support;
mod wan_import;
mod wan_route;
