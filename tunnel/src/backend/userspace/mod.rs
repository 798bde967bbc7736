//! WireGuard in this process: mcwan's own device on a TUN interface, with boringtun's noise
//! protocol (handshakes, sessions, timers, cookies) and the standard UAPI socket
//! (`/var/run/wireguard/<ifname>.sock`) so that `wg show` and `wg set` work on it.
//!
//! The device is ours rather than boringtun's packaged one for throughput: boringtun's device
//! creates its UDP socket with the kernel's default receive buffer (208 KiB), which overflows
//! under a fast sender, and TCP takes the drops for congestion; it also moves one packet per
//! system call. Ours forces a large socket buffer, reads and writes the TUN in batches with
//! the kernel's offloads (TSO in, GRO out) and the socket in batches too (`recvmmsg` with UDP
//! GRO, `UDP_SEGMENT`), on one packet thread per device (see [`datapath`]). All `unsafe` stays in
//! boringtun, tun-rs, nix and socket2.
//!
//! [`Tunnels`](crate::Tunnels) configures a device directly (no socket round trip) with the
//! same [`SetRequest`](crate::wg::uapi::SetRequest) a `wg set` produces. Sockets do not follow
//! the peer's connection: every peer is served from the listening socket, so after this
//! gateway's WAN address changes replies leave from the new address, as the kernel module's
//! do (the namespace tests move an address to prove it).
//!
//! Devices live as long as this process: a restart of the gateway re-creates them (the
//! userspace backend cannot keep established tunnels across restarts, the kernel backend does).

mod control;
mod datapath;
mod device;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::link::{Link, Links};
use crate::wg::uapi::SetRequest;
use crate::wg::{DeviceState, DeviceUpdate};

use device::Shared;

/// The transmit queue length of our TUN interfaces: packets the kernel may queue for the
/// device (the kernel's default of 500 drops bursts).
pub(crate) const TUN_QUEUE_LEN: u32 = 2048;

/// How long a stopped device's interface may take to disappear.
const SETTLE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// One running device: dropping it stops its threads, removes its UAPI socket and (with the
/// last reference to the TUN) its interface.
struct Running {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("ifname", &self.shared.ifname)
            .finish()
    }
}

impl Running {
    /// Creates the TUN `ifname` and the device's socket in this thread's network namespace,
    /// and starts its threads (which inherit the namespace).
    fn start(ifname: &str) -> std::io::Result<Self> {
        let tun = tun_rs::DeviceBuilder::new()
            .name(ifname)
            .offload(true)
            .build_sync()
            .or_else(|e| {
                tracing::info!(ifname, error = %e, "TUN offloads unavailable: one packet per read");
                tun_rs::DeviceBuilder::new().name(ifname).build_sync()
            })?;
        tun.set_nonblocking(true)?;
        let shared = Arc::new(Shared::new(ifname, tun)?);
        let listener = control::bind(ifname)?;
        let mut running = Running {
            shared: shared.clone(),
            threads: Vec::new(),
        };
        let spawn = |role: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("wg-{role}-{ifname}"))
                .spawn(body)
        };
        let s = shared.clone();
        running
            .threads
            .push(spawn("io", Box::new(move || datapath::packets(s)))?);
        let s = shared.clone();
        running
            .threads
            .push(spawn("timers", Box::new(move || datapath::timers(s)))?);
        let s = shared;
        running.threads.push(spawn(
            "uapi",
            Box::new(move || control::serve(s, listener)),
        )?);
        Ok(running)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shared.stop.write(1);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        control::unlink(&self.shared.ifname);
    }
}

/// The userspace devices of this process.
#[derive(Debug, Default)]
pub struct Userspace {
    devices: BTreeMap<String, Running>,
}

impl Userspace {
    pub fn new() -> Self {
        Userspace::default()
    }

    pub fn holds(&self, ifname: &str) -> bool {
        self.devices.contains_key(ifname)
    }

    pub async fn create(&mut self, ifname: &str) -> Result<()> {
        let running = Running::start(ifname).map_err(|e| Error::Userspace {
            ifname: ifname.to_owned(),
            message: e.to_string(),
        })?;
        self.devices.insert(ifname.to_owned(), running);
        tracing::info!(ifname, "userspace WireGuard device started");
        Ok(())
    }

    /// Stops our device (or deletes a foreign leftover link) and waits for the link to go.
    pub async fn remove(&mut self, links: &Links, link: &Link) -> Result<()> {
        match self.devices.remove(&link.name) {
            Some(running) => {
                tokio::task::spawn_blocking(move || drop(running))
                    .await
                    .map_err(|e| Error::Userspace {
                        ifname: link.name.clone(),
                        message: e.to_string(),
                    })?;
            }
            None => links.delete(link).await?,
        }
        for _ in 0..(SETTLE.as_millis() / POLL.as_millis()) {
            if links.by_name(&link.name).await?.is_none() {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    fn device(&self, ifname: &str) -> Result<&Arc<Shared>> {
        self.devices
            .get(ifname)
            .map(|r| &r.shared)
            .ok_or_else(|| Error::Userspace {
                ifname: ifname.to_owned(),
                message: "no such device in this process".into(),
            })
    }

    pub fn read(&self, ifname: &str) -> Result<DeviceState> {
        Ok(self.device(ifname)?.state().1)
    }

    pub fn write(&self, ifname: &str, update: &DeviceUpdate) -> Result<()> {
        self.device(ifname)?
            .apply(&SetRequest::from(update))
            .map_err(|e| Error::Userspace {
                ifname: ifname.to_owned(),
                message: e.message,
            })
    }
}
