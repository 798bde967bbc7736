//! One change to the IPVS table: the unit of [`Batch`](crate::Batch) and of
//! the single-change requests.

use std::net::SocketAddr;

use crate::message::IpvsMessage;
use crate::{destination, service, Destination, Error, Service, ServiceKey, Target};

/// A change to the IPVS table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Add a service.
    AddService(Service),
    /// Change a service's configuration.
    EditService(Service),
    /// Delete a service and its destinations.
    DeleteService(ServiceKey),
    /// Add a destination to a service.
    AddDestination {
        /// The service.
        service: ServiceKey,
        /// The destination.
        destination: Destination,
    },
    /// Change a destination's forwarding, weight or thresholds.
    EditDestination {
        /// The service.
        service: ServiceKey,
        /// The destination.
        destination: Destination,
    },
    /// Remove a destination from a service.
    DeleteDestination {
        /// The service.
        service: ServiceKey,
        /// The destination's address and port.
        destination: SocketAddr,
    },
}

impl Operation {
    /// The request message: a pure function of the operation.
    pub fn message(&self) -> IpvsMessage {
        match self {
            Operation::AddService(svc) => service::add::message(svc),
            Operation::EditService(svc) => service::edit::message(svc),
            Operation::DeleteService(key) => service::del::message(key),
            Operation::AddDestination {
                service,
                destination,
            } => destination::add::message(service, destination),
            Operation::EditDestination {
                service,
                destination,
            } => destination::edit::message(service, destination),
            Operation::DeleteDestination {
                service,
                destination,
            } => destination::del::message(service, *destination),
        }
    }

    /// What the operation is about.
    pub fn target(&self) -> Target {
        match self {
            Operation::AddService(svc) | Operation::EditService(svc) => Target::Service(svc.key),
            Operation::DeleteService(key) => Target::Service(*key),
            Operation::AddDestination {
                service,
                destination,
            }
            | Operation::EditDestination {
                service,
                destination,
            } => Target::Destination {
                service: *service,
                destination: destination.key(),
            },
            Operation::DeleteDestination {
                service,
                destination,
            } => Target::Destination {
                service: *service,
                destination: *destination,
            },
        }
    }

    /// The typed error for a kernel errno answering this operation.
    pub fn error(&self, errno: i32) -> Error {
        match self {
            Operation::AddService(svc) => service::add::error(svc, errno),
            Operation::EditService(svc) => service::edit::error(svc, errno),
            Operation::DeleteService(key) => service::del::error(key, errno),
            Operation::AddDestination {
                service,
                destination,
            } => destination::add::error(service, destination, errno),
            Operation::EditDestination {
                service,
                destination,
            } => destination::edit::error(service, destination, errno),
            Operation::DeleteDestination {
                service,
                destination,
            } => destination::del::error(service, *destination, errno),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{EEXIST, ENOENT, ESRCH};
    use crate::message::IpvsCmd;
    use std::net::Ipv4Addr;

    fn key() -> ServiceKey {
        ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80)
    }

    fn ops() -> Vec<Operation> {
        let dest = Destination::new(Ipv4Addr::new(10, 1, 1, 1), 80);
        vec![
            Operation::AddService(Service::new(key(), "rr")),
            Operation::EditService(Service::new(key(), "wrr")),
            Operation::DeleteService(key()),
            Operation::AddDestination {
                service: key(),
                destination: dest.clone(),
            },
            Operation::EditDestination {
                service: key(),
                destination: dest.clone(),
            },
            Operation::DeleteDestination {
                service: key(),
                destination: dest.key(),
            },
        ]
    }

    #[test]
    fn each_operation_has_its_command() {
        let cmds: Vec<IpvsCmd> = ops().iter().map(|op| op.message().cmd).collect();
        assert_eq!(
            cmds,
            [
                IpvsCmd::NewService,
                IpvsCmd::SetService,
                IpvsCmd::DelService,
                IpvsCmd::NewDest,
                IpvsCmd::SetDest,
                IpvsCmd::DelDest
            ]
        );
    }

    #[test]
    fn errno_mapping_per_operation() {
        let ops = ops();
        assert!(matches!(ops[0].error(EEXIST), Error::ServiceExists { .. }));
        assert!(matches!(
            ops[0].error(ENOENT),
            Error::UnknownScheduler { .. }
        ));
        assert!(matches!(ops[1].error(ESRCH), Error::ServiceNotFound { .. }));
        assert!(matches!(ops[2].error(ESRCH), Error::ServiceNotFound { .. }));
        assert!(matches!(
            ops[3].error(EEXIST),
            Error::DestinationExists { .. }
        ));
        assert!(matches!(ops[3].error(ESRCH), Error::ServiceNotFound { .. }));
        assert!(matches!(
            ops[4].error(ENOENT),
            Error::DestinationNotFound { .. }
        ));
        assert!(matches!(
            ops[5].error(ENOENT),
            Error::DestinationNotFound { .. }
        ));
    }

    #[test]
    fn target_names_the_destination() {
        assert_eq!(
            ops()[5].target().to_string(),
            "destination 10.1.1.1:80 of service TCP 10.0.0.1:80"
        );
    }
}
