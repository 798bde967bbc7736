//! Readiness as a set of named checks, each passing or failing with a reason. The gateway is
//! ready when every check passes: an orchestrator can route DNS to it and trust its dataplane.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum Check {
    Passing,
    Failing(String),
}

#[derive(Debug, Default)]
pub struct Health {
    checks: Mutex<BTreeMap<&'static str, Check>>,
}

impl Health {
    /// A check that starts failing with `reason` until it is first passed.
    pub fn register(&self, name: &'static str, reason: &str) {
        self.set(name, Check::Failing(reason.to_owned()));
    }

    pub fn pass(&self, name: &'static str) {
        self.set(name, Check::Passing);
    }

    pub fn fail(&self, name: &'static str, reason: impl Into<String>) {
        self.set(name, Check::Failing(reason.into()));
    }

    fn set(&self, name: &'static str, check: Check) {
        let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        checks.insert(name, check);
    }

    /// Every check, by name.
    pub fn checks(&self) -> BTreeMap<&'static str, Check> {
        self.checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn ready(&self) -> bool {
        self.checks().values().all(|c| *c == Check::Passing)
    }

    /// The readiness report as kube-apiserver's `/readyz?verbose` writes it.
    pub fn report(&self) -> String {
        let checks = self.checks();
        let mut out = String::new();
        for (name, check) in &checks {
            match check {
                Check::Passing => out.push_str(&format!("[+]{name} ok\n")),
                Check::Failing(why) => out.push_str(&format!("[-]{name} failed: {why}\n")),
            }
        }
        out.push_str(if checks.values().all(|c| *c == Check::Passing) {
            "readyz check passed\n"
        } else {
            "readyz check failed\n"
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes() {
        let h = Health::default();
        h.register("reconcile", "no reconcile applied yet");
        h.register("dns", "not bound yet");
        assert!(!h.ready());
        h.pass("reconcile");
        assert!(!h.ready());
        h.pass("dns");
        assert!(h.ready());
        h.fail("dns", "listener failed");
        assert!(!h.ready());
        assert!(h.report().contains("[-]dns failed: listener failed"));
    }
}
