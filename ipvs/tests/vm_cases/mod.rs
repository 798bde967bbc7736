//! The real-kernel test cases, by behaviour.

mod batch;
mod counters;
mod errors;
mod flush;
mod read_from_ipvsadm;
mod shown_by_ipvsadm;
