//! kubeconfig documents pointing at a simulator (plain HTTP, no credentials).

use serde_json::json;

/// A kubeconfig with one cluster, user and context, all named `context`, whose server
/// is `url` and whose default namespace is `default`.
pub fn yaml(url: &str, context: &str) -> String {
    let document = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {}}],
        "contexts": [{
            "name": context,
            "context": {"cluster": context, "user": context, "namespace": "default"},
        }],
        "current-context": context,
    });
    serde_saphyr::to_string(&document).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_parses_with_kube_rs() {
        let text = yaml("http://127.0.0.1:6443", "east");
        let parsed = kube::config::Kubeconfig::from_yaml(&text).expect("valid kubeconfig");
        assert_eq!(parsed.current_context.as_deref(), Some("east"));
        let cluster = parsed.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("http://127.0.0.1:6443"));
    }
}
