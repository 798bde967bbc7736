//! A client network namespace behind a veth pair.

use super::{run, run_quiet};

/// A network namespace `name` joined to this one by a veth pair
/// `<prefix>0` (here, `<net>.254/24` plus the VIP `<net>.1/32`) and
/// `<prefix>1` (there, `<net>.2/24`). Removed on drop.
pub struct ClientNamespace {
    name: String,
    host_if: String,
}

impl ClientNamespace {
    pub fn new(name: &str, prefix: &str, net: &str) -> Self {
        let host_if = format!("{prefix}0");
        let peer_if = format!("{prefix}1");
        let _ = run_quiet("ip", &["netns", "del", name]);
        let _ = run_quiet("ip", &["link", "del", &host_if]);
        run("ip", &["netns", "add", name]);
        run(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if,
            ],
        );
        run("ip", &["link", "set", &peer_if, "netns", name]);
        run(
            "ip",
            &["addr", "add", &format!("{net}.254/24"), "dev", &host_if],
        );
        run(
            "ip",
            &["addr", "add", &format!("{net}.1/32"), "dev", &host_if],
        );
        run("ip", &["link", "set", &host_if, "up"]);
        let exec = |args: &[&str]| {
            let mut all = vec!["netns", "exec", name, "ip"];
            all.extend_from_slice(args);
            run("ip", &all);
        };
        exec(&["addr", "add", &format!("{net}.2/24"), "dev", &peer_if]);
        exec(&["link", "set", &peer_if, "up"]);
        exec(&["link", "set", "lo", "up"]);
        ClientNamespace {
            name: name.to_owned(),
            host_if,
        }
    }
}

impl Drop for ClientNamespace {
    fn drop(&mut self) {
        let _ = run_quiet("ip", &["link", "del", &self.host_if]);
        let _ = run_quiet("ip", &["netns", "del", &self.name]);
    }
}
