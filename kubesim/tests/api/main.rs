//! The simulator driven by the real kube-rs client and by `kubectl`.

mod apply;
mod binary;
mod crd;
mod crud;
mod finalizers;
mod gone;
mod kubectl;
mod patch;
mod restart;
mod selectors;
mod status;
mod support;
mod watch;
