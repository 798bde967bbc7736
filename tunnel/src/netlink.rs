//! The one thin I/O path for route netlink: every request is a pure message built elsewhere,
//! sent here with its flags, with kernel errors turned into [`Error::Kernel`] naming the object.

use futures::StreamExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{Error, Result};

/// A route netlink connection (its driver task runs on the current tokio runtime).
#[derive(Debug, Clone)]
pub struct Rtnl {
    handle: rtnetlink::Handle,
}

impl Rtnl {
    /// Opens a connection in the calling thread's network namespace.
    pub fn connect() -> Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(Error::Socket)?;
        tokio::spawn(connection);
        Ok(Rtnl { handle })
    }

    /// Sends `message` with `flags` (NLM_F_REQUEST is added) and collects the answers.
    pub async fn execute(
        &self,
        object: &str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut request = NetlinkMessage::from(message);
        request.header.flags = NLM_F_REQUEST | flags;
        request.finalize();
        let mut handle = self.handle.clone();
        let mut answers = handle.request(request).map_err(|e| Error::Netlink {
            object: object.to_owned(),
            message: e.to_string(),
        })?;
        let mut out = Vec::new();
        while let Some(answer) = answers.next().await {
            match answer.payload {
                NetlinkPayload::InnerMessage(m) => out.push(m),
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(Error::kernel(object, -e.raw_code()));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// A dump request.
    pub async fn dump(
        &self,
        object: &str,
        message: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.execute(object, message, NLM_F_DUMP).await
    }
}

/// The errno values this crate reacts to.
pub mod errno {
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const EEXIST: i32 = 17;
    pub const ENODEV: i32 = 19;
    pub const EADDRNOTAVAIL: i32 = 99;
    pub const EOPNOTSUPP: i32 = 95;
}
