//! Kernel refusals surface as typed errors naming the object.

use ipvs_netlink::{
    Destination, Error, ForwardMethod, Netmask, Service, ServiceKey, TunnelChecksum, TunnelEncap,
};

use crate::vm_support::*;

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn adding_a_service_twice_is_service_exists() {
    let _guard = Cleanup::services(&[&["-t", "10.250.12.1:80"]]);
    let ipvs = handle().await;
    let svc = Service::new(ServiceKey::tcp(v4(12, 1), 80), "rr");
    ipvs.services()
        .add(svc.clone())
        .execute()
        .await
        .expect("first add");
    let err = ipvs
        .services()
        .add(svc)
        .execute()
        .await
        .expect_err("second add");
    assert!(
        matches!(err, Error::ServiceExists { service } if service == ServiceKey::tcp(v4(12, 1), 80))
    );
    assert_eq!(
        err.to_string(),
        "IPVS service TCP 10.250.12.1:80 already exists"
    );
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn adding_a_destination_twice_is_destination_exists() {
    let _guard = Cleanup::services(&[&["-t", "10.250.13.1:80"]]);
    let ipvs = handle().await;
    let key = ServiceKey::tcp(v4(13, 1), 80);
    ipvs.services()
        .add(Service::new(key, "rr"))
        .execute()
        .await
        .expect("add");
    let dest = Destination::new(v4(13, 11), 80);
    ipvs.destinations(key)
        .add(dest.clone())
        .execute()
        .await
        .expect("first");
    let err = ipvs
        .destinations(key)
        .add(dest)
        .execute()
        .await
        .expect_err("second");
    assert_eq!(
        err.to_string(),
        "IPVS destination 10.250.13.11:80 of service TCP 10.250.13.1:80 already exists"
    );
    assert!(err.is_exists());
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn missing_services_and_destinations_are_not_found() {
    let _guard = Cleanup::services(&[&["-t", "10.250.14.1:80"]]);
    let ipvs = handle().await;
    let missing = ServiceKey::tcp(v4(14, 99), 80);
    let err = ipvs
        .services()
        .del(missing)
        .execute()
        .await
        .expect_err("delete missing");
    assert!(
        matches!(err, Error::ServiceNotFound { service } if service == missing),
        "{err}"
    );
    let err = ipvs
        .services()
        .get(missing)
        .execute()
        .await
        .expect_err("get missing");
    assert!(matches!(err, Error::ServiceNotFound { .. }), "{err}");
    let err = ipvs
        .services()
        .edit(Service::new(missing, "rr"))
        .execute()
        .await
        .expect_err("edit");
    assert!(matches!(err, Error::ServiceNotFound { .. }), "{err}");
    let err = ipvs
        .destinations(missing)
        .add(Destination::new(v4(14, 11), 80))
        .execute()
        .await
        .expect_err("destination of a missing service");
    assert!(matches!(err, Error::ServiceNotFound { .. }), "{err}");
    assert!(ipvs
        .destinations(missing)
        .dump()
        .execute()
        .await
        .expect("dump")
        .is_empty());

    let key = ServiceKey::tcp(v4(14, 1), 80);
    ipvs.services()
        .add(Service::new(key, "rr"))
        .execute()
        .await
        .expect("add");
    let err = ipvs
        .destinations(key)
        .del(sock(v4(14, 11), 80))
        .execute()
        .await
        .expect_err("del");
    assert!(matches!(err, Error::DestinationNotFound { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "IPVS destination 10.250.14.11:80 of service TCP 10.250.14.1:80 not found"
    );
    let err = ipvs
        .destinations(key)
        .edit(Destination::new(v4(14, 12), 80))
        .execute()
        .await
        .expect_err("edit missing destination");
    assert!(matches!(err, Error::DestinationNotFound { .. }), "{err}");
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn unknown_scheduler_is_an_error_naming_it() {
    let _guard = Cleanup::services(&[&["-t", "10.250.15.1:80"]]);
    let ipvs = handle().await;
    let key = ServiceKey::tcp(v4(15, 1), 80);
    let err = ipvs
        .services()
        .add(Service::new(key, "nosuchsched"))
        .execute()
        .await
        .expect_err("unknown scheduler");
    assert!(
        matches!(&err, Error::UnknownScheduler { scheduler, .. } if scheduler == "nosuchsched")
    );
    assert!(
        err.to_string().contains("nosuchsched") && err.to_string().contains("TCP 10.250.15.1:80")
    );
    ipvs.services()
        .add(Service::new(key, "rr"))
        .execute()
        .await
        .expect("add");
    let err = ipvs
        .services()
        .edit(Service::new(key, "nosuchsched"))
        .execute()
        .await
        .expect_err("edit to unknown scheduler");
    assert!(matches!(err, Error::UnknownScheduler { .. }), "{err}");
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn invalid_values_are_typed_errors() {
    let _guard = Cleanup::services(&[&["-t", "[fd00:250:16::1]:80"], &["-t", "10.250.16.1:80"]]);
    let ipvs = handle().await;
    let key6 = ServiceKey::tcp(v6(16, 1), 80);
    ipvs.services()
        .add(Service::new(key6, "rr"))
        .execute()
        .await
        .expect("add v6");
    let err = ipvs
        .destinations(key6)
        .add(Destination::new(v4(16, 11), 80))
        .execute()
        .await
        .expect_err("IPv4 masq destination of an IPv6 service");
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    let key = ServiceKey::tcp(v4(16, 1), 80);
    ipvs.services()
        .add(Service::new(key, "rr"))
        .execute()
        .await
        .expect("add v4");
    let err = ipvs
        .destinations(key)
        .add(Destination::new(v4(16, 12), 80).with_thresholds(1, 5))
        .execute()
        .await
        .expect_err("lower threshold above upper");
    assert!(matches!(err, Error::OutOfRange { .. }), "{err}");
    let err = ipvs
        .destinations(key)
        .add(Destination::new(v4(16, 13), 80).with_weight(u32::MAX))
        .execute()
        .await
        .expect_err("negative weight on the kernel side");
    assert!(matches!(err, Error::OutOfRange { .. }), "{err}");
    let gue_without_port = TunnelEncap::Gue {
        port: 0,
        checksum: TunnelChecksum::None,
    };
    let err = ipvs
        .destinations(key)
        .add(Destination::new(v4(16, 14), 80).with_forward(ForwardMethod::Tunnel(gue_without_port)))
        .execute()
        .await
        .expect_err("GUE without port");
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    let err = ipvs
        .services()
        .add(
            Service::new(ServiceKey::tcp(v6(16, 2), 80), "rr")
                .with_netmask(Netmask::ipv6_prefix(0)),
        )
        .execute()
        .await
        .expect_err("IPv6 netmask 0");
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}
