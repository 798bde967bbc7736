//! The hickory-server request handler: answers each request from the zone
//! being served at the moment it arrives.

use hickory_proto::op::{Header, HeaderCounts, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use tracing::debug;

use crate::answer::{respond, Transport};
use crate::ZoneHandle;

/// Answers requests from the zone a [`ZoneHandle`] holds.
#[derive(Debug, Clone)]
pub(crate) struct ZoneRequestHandler {
    zones: ZoneHandle,
}

impl ZoneRequestHandler {
    pub(crate) fn new(zones: ZoneHandle) -> Self {
        Self { zones }
    }
}

#[async_trait::async_trait]
impl RequestHandler for ZoneRequestHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let zone = self.zones.load();
        let reply = respond(&zone, request, Transport::from_protocol(request.protocol()));
        let metadata = *reply.metadata();
        match response_handle
            .send_response(reply.message(&request.queries))
            .await
        {
            Ok(info) => info,
            Err(error) => {
                debug!(%error, src = %request.src(), "could not send DNS response");
                let mut failed = metadata;
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: failed,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
