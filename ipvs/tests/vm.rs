//! Real-kernel tests: every operation of the crate against Linux IPVS,
//! cross-checked both ways with `ipvsadm`.
//!
//! They need root and the `ip_vs` module, so they are ignored by default
//! and run inside a VM by `tests/vm/run` (one boot, `--test-threads=1`).
//! Each test uses its own addresses (`10.250.<n>.0/24`, `fd00:250:<n>::/48`)
//! and deletes only what it created, even when it fails.

mod vm_cases;
mod vm_support;
