//! The gateway's durable state in static-catalog mode (`--state-dir`): the ClusterSetIPs it
//! handed out, so a restart gives every imported service the VIP it had. Clients hold VIPs
//! (in connections, in caches of DNS answers); a VIP that moved to another service after a
//! restart would send them to the wrong one.
//!
//! What the gateway shares with its peers (ingress ports, inner subnets) is not kept here: in
//! static mode both sides compute those from the catalog alone, so they agree whatever either
//! side's history (see docs/catalog.md, "Allocations"). Kubernetes mode keeps VIPs in the
//! ServiceImports it writes and ingress ports in the EndpointSlices it publishes.
//!
//! The file is replaced atomically (written aside, synced, renamed, directory synced): after
//! a crash it holds either the old allocations or the new ones, never a mix.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::model::ServiceKey;

const FILE: &str = "allocations.json";
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OnDisk {
    version: u32,
    cluster_id: String,
    /// `namespace/name` -> ClusterSetIP.
    vips: BTreeMap<String, IpAddr>,
}

/// The state file of one gateway.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    cluster_id: String,
    saved: BTreeMap<ServiceKey, IpAddr>,
}

impl StateFile {
    /// Opens (creating `dir` if needed) the state of `cluster_id`'s gateway and returns the
    /// VIPs it holds. A file that cannot be read is an error naming it: starting over would
    /// hand out VIPs afresh, which is what the file is there to prevent.
    pub fn open(
        dir: &Path,
        cluster_id: &str,
    ) -> anyhow::Result<(Self, BTreeMap<ServiceKey, IpAddr>)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        let path = dir.join(FILE);
        let vips = match std::fs::read(&path) {
            Ok(bytes) => parse(&bytes, cluster_id)
                .with_context(|| format!("{}: not a usable mcwan state file; move it aside to start with fresh allocations", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let file = Self {
            path,
            cluster_id: cluster_id.to_owned(),
            saved: vips.clone(),
        };
        Ok((file, vips))
    }

    /// Where the state lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves `vips` if they differ from what the file holds.
    pub fn save(&mut self, vips: &BTreeMap<ServiceKey, IpAddr>) -> std::io::Result<()> {
        if *vips == self.saved {
            return Ok(());
        }
        let on_disk = OnDisk {
            version: VERSION,
            cluster_id: self.cluster_id.clone(),
            vips: vips.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        let bytes = serde_json::to_vec_pretty(&on_disk).map_err(std::io::Error::other)?;
        crate::files::replace_atomically(&self.path, &bytes)?;
        self.saved = vips.clone();
        Ok(())
    }
}

fn parse(bytes: &[u8], cluster_id: &str) -> anyhow::Result<BTreeMap<ServiceKey, IpAddr>> {
    let on_disk: OnDisk = serde_json::from_slice(bytes)?;
    anyhow::ensure!(
        on_disk.version == VERSION,
        "version {} (this mcwan reads version {VERSION})",
        on_disk.version
    );
    anyhow::ensure!(
        on_disk.cluster_id == cluster_id,
        "it is the state of cluster {:?}, and this gateway is {cluster_id:?}",
        on_disk.cluster_id
    );
    on_disk
        .vips
        .into_iter()
        .map(|(key, vip)| {
            let (namespace, name) = key
                .split_once('/')
                .with_context(|| format!("vips: {key:?} is not namespace/name"))?;
            Ok((ServiceKey::new(namespace, name), vip))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vips_survive_a_reopen_and_another_cluster_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut file, vips) = StateFile::open(dir.path(), "cluster-2").unwrap();
        assert!(vips.is_empty());
        let vips = BTreeMap::from([
            (
                ServiceKey::new("secure", "payment"),
                "241.64.0.7".parse().unwrap(),
            ),
            (
                ServiceKey::new("insecure", "logging"),
                "241.64.0.9".parse().unwrap(),
            ),
        ]);
        file.save(&vips).unwrap();
        let (_, again) = StateFile::open(dir.path(), "cluster-2").unwrap();
        assert_eq!(again, vips);
        let error = StateFile::open(dir.path(), "cluster-1").unwrap_err();
        assert!(
            format!("{error:#}").contains("state of cluster \"cluster-2\""),
            "{error:#}"
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "{\"version\": 1, \"clusterId\": ").unwrap();
        let error = format!(
            "{:#}",
            StateFile::open(dir.path(), "cluster-2").unwrap_err()
        );
        assert!(error.contains("allocations.json"), "{error}");
        assert!(error.contains("move it aside"), "{error}");
    }
}
