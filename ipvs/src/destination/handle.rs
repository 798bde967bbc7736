//! Entry point for destination requests:
//! `handle.destinations(service).add(..)`.

use std::net::SocketAddr;

use super::DumpDestinationsRequest;
use crate::{Destination, Handle, Operation, OperationRequest, ServiceKey};

/// Builds requests about the destinations of one service.
#[derive(Debug, Clone)]
pub struct DestinationHandle {
    handle: Handle,
    service: ServiceKey,
}

impl DestinationHandle {
    pub(crate) fn new(handle: Handle, service: ServiceKey) -> Self {
        DestinationHandle { handle, service }
    }

    /// Adds a destination (`ipvsadm -a`).
    pub fn add(&self, destination: Destination) -> OperationRequest {
        let op = Operation::AddDestination {
            service: self.service,
            destination,
        };
        OperationRequest::new(self.handle.clone(), op)
    }

    /// Changes the forwarding, weight and thresholds of the destination
    /// at `destination.key()` (`ipvsadm -e`).
    pub fn edit(&self, destination: Destination) -> OperationRequest {
        let op = Operation::EditDestination {
            service: self.service,
            destination,
        };
        OperationRequest::new(self.handle.clone(), op)
    }

    /// Removes the destination at `destination` (`ipvsadm -d`).
    pub fn del(&self, destination: SocketAddr) -> OperationRequest {
        let op = Operation::DeleteDestination {
            service: self.service,
            destination,
        };
        OperationRequest::new(self.handle.clone(), op)
    }

    /// Lists the destinations.
    pub fn dump(&self) -> DumpDestinationsRequest {
        DumpDestinationsRequest::new(self.handle.clone(), self.service)
    }
}
