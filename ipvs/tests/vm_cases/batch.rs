//! Batches spanning several datagrams, with refusals in the middle.

use std::net::Ipv4Addr;

use ipvs_netlink::{Destination, Error, Service, ServiceKey};

use crate::vm_support::*;

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn batch_programs_many_chunks_and_reports_each_failure() {
    let selectors: Vec<Vec<String>> = (0..130u16)
        .map(|i| {
            vec![
                "-t".to_owned(),
                format!("10.250.17.{}:{}", i % 250, 1000 + i),
            ]
        })
        .collect();
    let selector_refs: Vec<Vec<&str>> = selectors
        .iter()
        .map(|s| s.iter().map(String::as_str).collect())
        .collect();
    let selector_slices: Vec<&[&str]> = selector_refs.iter().map(Vec::as_slice).collect();
    let _guard = Cleanup::services(&selector_slices);
    let ipvs = handle().await;
    let key = |i: u16| ServiceKey::tcp(v4(17, (i % 250) as u8), 1000 + i);
    let mut batch = ipvs.batch();
    for i in 0..120u16 {
        batch.add_service(Service::new(key(i), "rr"));
        for d in 0..10u8 {
            batch.add_destination(
                key(i),
                Destination::new(Ipv4Addr::new(10, 251, (i % 250) as u8, d), 80),
            );
        }
    }
    // Two refusals in the middle: a duplicate destination, a missing service.
    batch.add_destination(key(5), Destination::new(Ipv4Addr::new(10, 251, 5, 0), 80));
    batch.add_destination(
        ServiceKey::tcp(v4(17, 251), 1),
        Destination::new(v4(17, 9), 80),
    );
    for i in 120..130u16 {
        batch.add_service(Service::new(key(i), "rr"));
    }
    assert_eq!(batch.len(), 1332);
    let report = batch.execute().await.expect("batch sent");
    assert_eq!(report.attempted, 1332);
    assert_eq!(report.failures.len(), 2, "{:?}", report.failures);
    assert_eq!(report.failures[0].index, 1320);
    assert!(matches!(
        report.failures[0].error,
        Error::DestinationExists { .. }
    ));
    assert_eq!(report.failures[1].index, 1321);
    assert!(matches!(
        report.failures[1].error,
        Error::ServiceNotFound { .. }
    ));

    let saved = ipvsadm(&["-S", "-n"]);
    assert_eq!(
        saved
            .lines()
            .filter(|l| l.starts_with("-A -t 10.250.17."))
            .count(),
        130
    );
    assert_eq!(
        saved
            .lines()
            .filter(|l| l.starts_with("-a -t 10.250.17."))
            .count(),
        1200
    );

    let mut cleanup = ipvs.batch();
    for i in 0..130u16 {
        cleanup.delete_service(key(i));
    }
    cleanup
        .execute()
        .await
        .expect("cleanup")
        .into_result()
        .expect("all deleted");
    assert!(!ipvsadm(&["-S", "-n"]).contains("10.250.17."));
}
