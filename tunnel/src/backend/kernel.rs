//! Kernel WireGuard: links over rtnetlink, configuration over the `wireguard` genl family.

use crate::error::Result;
use crate::link::Links;
use crate::wg::{genl, DeviceState, DeviceUpdate};

#[derive(Debug)]
pub struct Kernel {
    links: Links,
    genl: genl::Client,
}

impl Kernel {
    pub fn new(links: Links, genl: genl::Client) -> Self {
        Kernel { links, genl }
    }

    pub async fn create(&self, ifname: &str) -> Result<()> {
        self.links.add_wireguard(ifname).await
    }

    pub async fn read(&self, ifname: &str) -> Result<DeviceState> {
        self.genl.get(ifname).await
    }

    pub async fn write(&self, ifname: &str, update: &DeviceUpdate) -> Result<()> {
        self.genl.set(ifname, update).await
    }
}
