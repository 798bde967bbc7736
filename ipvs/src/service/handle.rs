//! Entry point for service requests: `handle.services().add(..)`.

use super::{DumpServicesRequest, GetServiceRequest};
use crate::{Handle, Operation, OperationRequest, Service, ServiceKey};

/// Builds requests about virtual services.
#[derive(Debug, Clone)]
pub struct ServiceHandle {
    handle: Handle,
}

impl ServiceHandle {
    pub(crate) fn new(handle: Handle) -> Self {
        ServiceHandle { handle }
    }

    /// Adds a service (`ipvsadm -A`).
    pub fn add(&self, service: Service) -> OperationRequest {
        OperationRequest::new(self.handle.clone(), Operation::AddService(service))
    }

    /// Changes the scheduler, flags, timeout, netmask and persistence
    /// engine of the service `service.key` (`ipvsadm -E`).
    pub fn edit(&self, service: Service) -> OperationRequest {
        OperationRequest::new(self.handle.clone(), Operation::EditService(service))
    }

    /// Deletes a service and its destinations (`ipvsadm -D`).
    pub fn del(&self, key: ServiceKey) -> OperationRequest {
        OperationRequest::new(self.handle.clone(), Operation::DeleteService(key))
    }

    /// Reads one service.
    pub fn get(&self, key: ServiceKey) -> GetServiceRequest {
        GetServiceRequest::new(self.handle.clone(), key)
    }

    /// Lists every service.
    pub fn dump(&self) -> DumpServicesRequest {
        DumpServicesRequest::new(self.handle.clone())
    }
}
