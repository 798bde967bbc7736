//! boringtun in this process: one device per tunnel on a TUN interface, with boringtun's own
//! worker thread and UAPI socket (`/var/run/wireguard/<ifname>.sock`, which
//! `wg show` reads and through which we configure it).
//!
//! We use boringtun's `device` feature rather than driving its `noise` state machine ourselves:
//! it already has the TUN and UDP handling, the timers, roaming and the standard UAPI, and it
//! keeps all `unsafe` inside boringtun.
//!
//! Each device runs one worker thread. With more, a TCP flow's packets are encrypted by
//! several threads at once and leave out of order: the multi-queue TUN steers a flow to the
//! queue that last carried its replies, and boringtun writes replies to whichever worker's
//! queue received them, so the flow hops between queues. The receiver's TCP takes the
//! reordering for loss and backs off; in the benchmark VM two workers reached less than half
//! the throughput of one, four a third (see docs/benchmarks.md). A single flow never runs on more than one
//! thread anyway: a peer's state is behind one lock and the listening socket is read by one
//! worker at a time. The TUN queue gets [`TUN_QUEUE_LEN`] packets instead of the kernel's 500,
//! so that a burst from the kernel waits for the worker instead of being dropped.
//!
//! Per-peer connected UDP sockets are off: a connected socket keeps the local address chosen
//! when it connected, so after this gateway's WAN address changes the peer would stay
//! unreachable; with every peer on the listening socket, replies follow address changes as
//! the kernel module's do (the namespace tests move an address to prove it).
//!
//! Each device is created on a thread of its own: boringtun blocks SIGINT and SIGTERM on the
//! creating thread (and the workers it spawns) to read them through a signalfd, and confining
//! that to our device threads leaves the process's own signal handling alone. The devices live
//! as long as this process: a restart of the gateway re-creates them (the userspace backend
//! cannot keep established tunnels across restarts, the kernel backend does).

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use boringtun::device::{DeviceConfig, DeviceHandle};

use crate::error::{Error, Result};
use crate::link::{Link, Links};
use crate::wg::{uapi, DeviceState, DeviceUpdate};

/// The transmit queue length of our TUN interfaces: packets the kernel may queue for the worker.
pub(crate) const TUN_QUEUE_LEN: u32 = 2048;

/// Worker threads per device (see the module documentation for why one).
const THREADS: usize = 1;

/// How long a new device may take to bring up its UAPI socket, and an old one to disappear.
const SETTLE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// One running boringtun device: dropping it stops the device.
#[derive(Debug)]
struct Running {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The boringtun devices of this process.
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
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let name = ifname.to_owned();
        let config = DeviceConfig {
            n_threads: THREADS,
            use_connected_socket: false,
            use_multi_queue: false,
            uapi_fd: -1,
        };
        let fail = |message: String| Error::Userspace {
            ifname: ifname.to_owned(),
            message,
        };
        let thread = std::thread::Builder::new()
            .name(format!("wg-{ifname}"))
            .spawn(move || match DeviceHandle::new(&name, config) {
                Ok(handle) => {
                    let _ = ready_tx.send(Ok(()));
                    let _ = stop_rx.recv();
                    drop(handle);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            })
            .map_err(|e| fail(format!("cannot spawn its thread: {e}")))?;
        let ready = tokio::task::spawn_blocking(move || ready_rx.recv_timeout(SETTLE))
            .await
            .map_err(|e| fail(e.to_string()))?;
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                let _ = thread.join();
                return Err(fail(message));
            }
            Err(_) => return Err(fail("did not start in time".into())),
        }
        self.devices.insert(
            ifname.to_owned(),
            Running {
                stop: stop_tx,
                thread: Some(thread),
            },
        );
        wait_for(|| uapi::socket_path(ifname).exists()).await;
        tracing::info!(ifname, "boringtun device started");
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

    pub async fn read(ifname: &str) -> Result<DeviceState> {
        uapi::Client::new(ifname).get().await
    }

    pub async fn write(ifname: &str, update: &DeviceUpdate) -> Result<()> {
        uapi::Client::new(ifname).set(update).await
    }
}

async fn wait_for(mut ok: impl FnMut() -> bool) {
    for _ in 0..(SETTLE.as_millis() / POLL.as_millis()) {
        if ok() {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}
