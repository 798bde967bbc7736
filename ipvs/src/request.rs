//! A request applying one [`Operation`].

use crate::message::IpvsMessage;
use crate::{Error, Handle, Operation};

/// One change, sent on its own with one acknowledgement: no dump, no
/// look-up, so its cost does not grow with the size of the table.
#[derive(Debug)]
#[must_use = "a request does nothing until executed"]
pub struct OperationRequest {
    handle: Handle,
    operation: Operation,
}

impl OperationRequest {
    pub(crate) fn new(handle: Handle, operation: Operation) -> Self {
        OperationRequest { handle, operation }
    }

    /// The operation.
    pub fn operation(&self) -> &Operation {
        &self.operation
    }

    /// The request message.
    pub fn message(&self) -> IpvsMessage {
        self.operation.message()
    }

    /// Sends the request and waits for the kernel's acknowledgement.
    pub async fn execute(self) -> Result<(), Error> {
        self.handle.apply(self.operation).await
    }
}
