// The Gateway API CRDs (config/crd/standard) that `mcwan plan -o gateway-api`'s output is
// applied against in tests/gateway_api.rs. Nothing is built from this module: testbed/build
// downloads it and copies the CRD manifests into target/testbed/gateway-api.
module mcwan.test/testbed/gateway-api

go 1.26.0

require sigs.k8s.io/gateway-api v1.6.3
