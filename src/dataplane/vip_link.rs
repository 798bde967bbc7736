//! The ClusterSetIP interface: a dummy interface (`mcwan0`, as kube-proxy's `kube-ipvs0`) that
//! carries every VIP as a host address, so IPVS sees traffic to them as local. mcwan owns the
//! interface by name; it adds and removes only VIPs inside its range.

use std::collections::BTreeSet;
use std::net::IpAddr;

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::AddressAttribute;
use rtnetlink::{Handle, LinkDummy};
use tracing::{debug, info};

pub const VIP_INTERFACE: &str = "mcwan0";

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("rtnetlink: {0}")]
    Io(#[from] std::io::Error),
    #[error("interface {VIP_INTERFACE}: {0}")]
    Netlink(#[from] rtnetlink::Error),
    #[error("interface {VIP_INTERFACE} did not appear after it was created")]
    Missing,
}

#[derive(Debug)]
pub struct VipLink {
    handle: Handle,
    index: u32,
    cidr: IpNet,
}

impl VipLink {
    /// Finds or creates `mcwan0` and brings it up.
    pub async fn ensure(cidr: IpNet) -> Result<Self, LinkError> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        let index = match find(&handle).await? {
            Some(i) => i,
            None => {
                handle
                    .link()
                    .add(LinkDummy::new(VIP_INTERFACE).up().build())
                    .execute()
                    .await?;
                info!(
                    interface = VIP_INTERFACE,
                    "created the ClusterSetIP interface"
                );
                find(&handle).await?.ok_or(LinkError::Missing)?
            }
        };
        handle
            .link()
            .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await?;
        Ok(Self {
            handle,
            index,
            cidr,
        })
    }

    /// Makes the VIPs on the interface (within our range) exactly `vips`.
    pub async fn sync(&self, vips: &BTreeSet<IpAddr>) -> Result<(usize, usize), LinkError> {
        let mut present = BTreeSet::new();
        let mut stale = Vec::new();
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(self.index)
            .execute();
        while let Some(msg) = stream.try_next().await? {
            let addr = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(a) | AddressAttribute::Address(a) => Some(*a),
                _ => None,
            });
            let Some(addr) = addr else { continue };
            if !self.cidr.contains(&addr) {
                continue;
            }
            if vips.contains(&addr) {
                present.insert(addr);
            } else {
                stale.push(msg);
            }
        }
        let removed = stale.len();
        for msg in stale {
            self.handle.address().del(msg).execute().await?;
        }
        let mut added = 0;
        for vip in vips.difference(&present) {
            let prefix = if vip.is_ipv4() { 32 } else { 128 };
            self.handle
                .address()
                .add(self.index, *vip, prefix)
                .execute()
                .await?;
            added += 1;
        }
        debug!(added, removed, "ClusterSetIPs on {VIP_INTERFACE}");
        Ok((added, removed))
    }
}

async fn find(handle: &Handle) -> Result<Option<u32>, LinkError> {
    let mut links = handle
        .link()
        .get()
        .match_name(VIP_INTERFACE.to_owned())
        .execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        // ENODEV: no such interface yet.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -19 => Ok(None),
        Err(e) => Err(e.into()),
    }
}
