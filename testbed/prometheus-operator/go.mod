// The prometheus-operator CRDs (example/prometheus-operator-crd) that deploy/monitoring's
// PodMonitor and PrometheusRule are applied against in tests/monitoring.rs. Nothing is built
// from this module: testbed/build downloads it and copies the two CRD manifests into
// target/testbed/prometheus-operator.
module mcwan.test/testbed/prometheus-operator

go 1.26.0

require github.com/prometheus-operator/prometheus-operator v0.90.1
