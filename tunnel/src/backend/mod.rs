//! The two WireGuard engines behind [`Tunnels`](crate::Tunnels): the kernel module, driven over
//! generic netlink, and mcwan's userspace device (boringtun's noise protocol) in this process.
//! Both read and write the same [`DeviceState`]/[`DeviceUpdate`] model.

pub mod kernel;
pub mod userspace;

use crate::error::{Error, Result};
use crate::link::{Link, Links};
use crate::wg::{genl, DeviceState, DeviceUpdate};

/// Which WireGuard implementation to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The kernel module when it exists (loading it if the kernel can), else boringtun.
    #[default]
    Auto,
    /// The kernel module; an error if it is missing.
    Kernel,
    /// boringtun in this process, on TUN devices.
    Userspace,
}

/// The interface name used to probe (and so autoload) the kernel module.
const PROBE_IFNAME: &str = "mcw-wgprobe";

/// Whether kernel WireGuard can be used: the genl family exists, or creating a WireGuard link
/// (which makes the kernel load the module) works.
pub async fn kernel_available(links: &Links, genl: &genl::Client) -> Result<(), String> {
    if genl.family_exists().await {
        return Ok(());
    }
    match links.add_wireguard(PROBE_IFNAME).await {
        Ok(()) => {
            if let Ok(Some(link)) = links.by_name(PROBE_IFNAME).await {
                let _ = links.delete(&link).await;
            }
            if genl.family_exists().await {
                Ok(())
            } else {
                Err("a WireGuard link was created but the genl family is missing".into())
            }
        }
        Err(e) => Err(format!("no `wireguard` genl family and {e}")),
    }
}

/// A resolved engine.
#[derive(Debug)]
pub(crate) enum Engine {
    Kernel(kernel::Kernel),
    Userspace(userspace::Userspace),
}

impl Engine {
    pub(crate) async fn new(backend: Backend, links: &Links) -> Result<Self> {
        match backend {
            Backend::Userspace => Ok(Engine::Userspace(userspace::Userspace::new())),
            Backend::Kernel => {
                let genl = genl::Client::connect()?;
                kernel_available(links, &genl)
                    .await
                    .map_err(Error::KernelUnavailable)?;
                Ok(Engine::Kernel(kernel::Kernel::new(links.clone(), genl)))
            }
            Backend::Auto => {
                let genl = genl::Client::connect()?;
                match kernel_available(links, &genl).await {
                    Ok(()) => Ok(Engine::Kernel(kernel::Kernel::new(links.clone(), genl))),
                    Err(why) => {
                        tracing::info!(%why, "kernel WireGuard unavailable: using boringtun");
                        Ok(Engine::Userspace(userspace::Userspace::new()))
                    }
                }
            }
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Engine::Kernel(_) => Backend::Kernel,
            Engine::Userspace(_) => Backend::Userspace,
        }
    }

    /// Whether `link` is a device this engine can drive (else it is re-created).
    pub(crate) fn drives(&self, link: &Link) -> bool {
        match self {
            Engine::Kernel(_) => link.kind.as_deref() == Some("wireguard"),
            Engine::Userspace(u) => u.holds(&link.name),
        }
    }

    pub(crate) async fn create(&mut self, ifname: &str) -> Result<()> {
        match self {
            Engine::Kernel(k) => k.create(ifname).await,
            Engine::Userspace(u) => u.create(ifname).await,
        }
    }

    pub(crate) async fn remove(&mut self, links: &Links, link: &Link) -> Result<()> {
        match self {
            Engine::Kernel(_) => links.delete(link).await,
            Engine::Userspace(u) => u.remove(links, link).await,
        }
    }

    /// The transmit queue length the engine wants on its interfaces (None: the kernel's).
    pub(crate) fn tx_queue_len(&self) -> Option<u32> {
        match self {
            Engine::Kernel(_) => None,
            Engine::Userspace(_) => Some(userspace::TUN_QUEUE_LEN),
        }
    }

    pub(crate) async fn read(&self, ifname: &str) -> Result<DeviceState> {
        match self {
            Engine::Kernel(k) => k.read(ifname).await,
            Engine::Userspace(u) => u.read(ifname),
        }
    }

    pub(crate) async fn write(&self, ifname: &str, update: &DeviceUpdate) -> Result<()> {
        match self {
            Engine::Kernel(k) => k.write(ifname, update).await,
            Engine::Userspace(u) => u.write(ifname, update),
        }
    }
}
