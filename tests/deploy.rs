//! The manifests in deploy/ stay in step with the Rust types they come from.

#[test]
fn committed_crds_match_the_rust_types() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/crds/crds.yaml"
    ))
    .expect("deploy/crds/crds.yaml");
    let generated = mcwan::render::crds_yaml().expect("CRDs render");
    assert!(
        committed == generated,
        "deploy/crds/crds.yaml is stale: regenerate it with `cargo run -- crds > deploy/crds/crds.yaml`"
    );
}

#[test]
fn crds_carry_printer_columns_for_kubectl_get() {
    let generated = mcwan::render::crds_yaml().expect("CRDs render");
    for column in ["WAN-Policy", "Valid", "Ready", "Conflict", "Tunnel", "Port"] {
        assert!(generated.contains(&format!("name: {column}\n")), "{column}");
    }
}
