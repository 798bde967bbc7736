//! The hickory-server request handler: answers each request from the zone
//! being served at the moment it arrives.

use hickory_proto::op::{Header, HeaderCounts, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use tracing::debug;

use crate::answer::{respond, Transport};
use crate::{QueryEvent, QueryObserver, ZoneHandle};
use std::sync::Arc;
use std::time::Instant;

/// Answers requests from the zone a [`ZoneHandle`] holds.
#[derive(Debug, Clone)]
pub(crate) struct ZoneRequestHandler {
    zones: ZoneHandle,
    observer: Option<Arc<dyn QueryObserver>>,
}

impl ZoneRequestHandler {
    pub(crate) fn new(zones: ZoneHandle, observer: Option<Arc<dyn QueryObserver>>) -> Self {
        Self { zones, observer }
    }
}

#[async_trait::async_trait]
impl RequestHandler for ZoneRequestHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let zone = self.zones.load();
        let transport = Transport::from_protocol(request.protocol());
        let reply = respond(&zone, request, transport);
        let metadata = *reply.metadata();
        if let Some(observer) = &self.observer {
            observer.observe(&QueryEvent {
                qtype: request
                    .queries
                    .queries()
                    .first()
                    .map(|q| u16::from(q.query_type())),
                rcode: (u16::from(metadata.response_code) & 0x0f) as u8,
                transport,
                elapsed: started.elapsed(),
            });
        }
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
