//! `mcwan import --ingress-gw` and `mcwan unimport`: cluster-2 does not watch cluster-1 (no
//! peer kubeconfig), and imports cluster-1's export with the command `mcwan status` prints
//! there. The WANImport it writes makes cluster-2's gateway import the service as if it had read
//! the export: a ClusterSetIP in DNS, a ServiceImport backed by cluster-1, an import slice
//! towards cluster-1's gateway on the ingress port cluster-1 published.

use serde_json::Value;

use crate::support::*;

crate::on_both_api_servers!(a_wan_import_imports_from_a_cluster_that_is_not_watched);

const MCW: &str = "mcw.l7mp.io/v1alpha1";

async fn a_wan_import_imports_from_a_cluster_that_is_not_watched(backend: Backend) {
    let mut cs = Clusterset::new(backend, 2).await;
    std::fs::remove_file(cs.peers_dir(1).join("cluster-1")).unwrap();
    cs.start_gateway(0).await;
    cs.start_gateway(1).await;
    export_service(cs.api(0), "shop", "cart").await;
    cs.wait_for_object(0, MCS, "serviceexports", Some("shop"), "cart", |e| {
        condition_is(e, "Ready", "True")
    })
    .await;
    let published = cs
        .wait_for_object(
            0,
            "discovery.k8s.io/v1",
            "endpointslices",
            Some("shop"),
            "cart-mcwan-cluster-1",
            |_| true,
        )
        .await;
    let gw = published["endpoints"][0]["addresses"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let ingress_port = published["ports"][0]["port"].as_u64().unwrap();

    // cluster-1's status: the GW_IP_ADDRESS and the command that imports the export.
    let (ok, out, err) = mcwan(&cs.kubeconfig(0), &["status", "cart/shop", "-o", "json"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report[0]["gwIpAddress"], gw.as_str());
    assert_eq!(report[0]["ingress"][0]["servicePort"], 80);
    let (ok, table, err) = mcwan(&cs.kubeconfig(0), &["status", "cart/shop"]);
    assert!(ok, "{err}");
    assert!(
        table.lines().next().unwrap().contains("GW_IP_ADDRESS"),
        "{table}"
    );
    let command = table
        .lines()
        .find_map(|l| l.split_once(": to import it where this cluster is not watched: "))
        .map(|(_, c)| c.to_owned())
        .unwrap_or_else(|| panic!("no import command in:\n{table}"));
    assert_eq!(
        command,
        format!("mcwan import -n shop cart --ingress-gw={gw} --wan-policy=gold --port=http=80:{ingress_port}")
    );

    // cluster-2 knows nothing of it until it imports it, with the printed command.
    cs.wait_for_nxdomain(1, "shop", "cart").await;
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let (ok, out, err) = mcwan(&cs.kubeconfig(1), &args);
    assert!(ok, "{err}");
    assert!(
        out.contains("imported shop/cart from ingress gateway") && out.contains("WANPolicy gold"),
        "{out}"
    );
    let vip = cs.wait_for_a(1, "shop", "cart").await;
    let import = cs
        .wait_for_object(1, MCS, "serviceimports", Some("shop"), "cart", |i| {
            i["status"]["clusters"][0]["cluster"] == "cluster-1"
        })
        .await;
    assert_eq!(import["spec"]["ips"][0], vip[0].to_string());
    assert_eq!(import["spec"]["ports"][0]["port"], 80);
    let slice = cs
        .wait_for_object(
            1,
            "discovery.k8s.io/v1",
            "endpointslices",
            Some("shop"),
            "cart-import-cluster-1",
            |_| true,
        )
        .await;
    assert_eq!(slice["endpoints"][0]["addresses"][0], gw.as_str());
    assert_eq!(slice["ports"][0]["port"], ingress_port);

    // --wan-policy takes a unique prefix; an address of no gateway is refused by the gateway
    // with an Event naming the field, and nothing else moves.
    let (ok, _, err) = mcwan(
        &cs.kubeconfig(1),
        &[
            "import",
            "ghost/shop",
            "--ingress-gw",
            "203.0.113.9",
            "--wan-policy",
            "go",
            "--port",
            "http=80:31005",
        ],
    );
    assert!(ok, "{err}");
    let ghost = cs
        .api(1)
        .get(MCW, "wanimports", Some("shop"), "ghost")
        .await
        .unwrap();
    assert_eq!(ghost["spec"]["wanPolicy"], "gold");
    let event = cs
        .wait_for_event(1, "shop", "ghost", "InvalidWANImport")
        .await;
    assert_eq!(event["regarding"]["kind"], "WANImport");
    let note = event["note"].as_str().unwrap();
    assert!(
        note.contains("spec.ingressGateway")
            && note.contains("203.0.113.9 is the address of no gateway"),
        "{note}"
    );
    cs.wait_for_nxdomain(1, "shop", "ghost").await;
    assert_eq!(cs.wait_for_a(1, "shop", "cart").await, vip);

    // Bad flags are refused before anything is written.
    let (ok, _, err) = mcwan(
        &cs.kubeconfig(1),
        &[
            "import",
            "cart/shop",
            "--ingress-gw",
            gw.as_str(),
            "--wan-policy",
            "platinum",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("\"platinum\" does not exist") && err.contains("gold"),
        "{err}"
    );

    // unimport withdraws it; a second unimport says there is nothing to withdraw.
    let (ok, out, err) = mcwan(&cs.kubeconfig(1), &["unimport", "cart/shop"]);
    assert!(ok, "{err}");
    assert!(out.contains("unimported shop/cart"), "{out}");
    cs.wait_for_nxdomain(1, "shop", "cart").await;
    cs.wait_for_absent(1, MCS, "serviceimports", Some("shop"), "cart")
        .await;
    let (ok, _, err) = mcwan(&cs.kubeconfig(1), &["unimport", "cart/shop"]);
    assert!(!ok);
    assert!(err.contains("has no WANImport"), "{err}");
}
