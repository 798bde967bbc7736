//! Virtual service flags (`IP_VS_SVC_F_*`).

use crate::constants::*;

bitflags::bitflags! {
    /// Flags of a virtual service.
    ///
    /// The kernel-internal `IP_VS_SVC_F_HASHED` bit is never sent and is
    /// removed from dumps: it describes the kernel's table, not the
    /// service.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct ServiceFlags: u32 {
        /// Persistent service: a client sticks to its real server for the
        /// service's timeout (`ipvsadm -p`).
        const PERSISTENT = IP_VS_SVC_F_PERSISTENT;
        /// One-packet scheduling, for UDP (`ipvsadm -o`).
        const ONE_PACKET = IP_VS_SVC_F_ONEPACKET;
        /// Scheduler flag 1; `sh-fallback` for the `sh` scheduler.
        const SCHED1 = IP_VS_SVC_F_SCHED1;
        /// Scheduler flag 2; `sh-port` for the `sh` scheduler.
        const SCHED2 = IP_VS_SVC_F_SCHED2;
        /// Scheduler flag 3.
        const SCHED3 = IP_VS_SVC_F_SCHED3;
        /// `sh` scheduler: fall back to another server when the hashed one
        /// is unavailable.
        const SH_FALLBACK = IP_VS_SVC_F_SCHED_SH_FALLBACK;
        /// `sh` scheduler: hash the source port too.
        const SH_PORT = IP_VS_SVC_F_SCHED_SH_PORT;
    }
}

impl ServiceFlags {
    /// Flags as read from the kernel, without the internal `HASHED` bit.
    /// Unknown bits are kept.
    pub fn from_kernel(bits: u32) -> Self {
        ServiceFlags::from_bits_retain(bits & !IP_VS_SVC_F_HASHED)
    }

    /// Flags as sent to the kernel: never the internal `HASHED` bit, which
    /// would keep a new service out of the lookup table.
    pub fn to_kernel(self) -> u32 {
        self.bits() & !IP_VS_SVC_F_HASHED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_ip_vs_h() {
        assert_eq!(ServiceFlags::PERSISTENT.bits(), 0x1);
        assert_eq!(ServiceFlags::ONE_PACKET.bits(), 0x4);
        assert_eq!(ServiceFlags::SH_FALLBACK.bits(), 0x8);
        assert_eq!(ServiceFlags::SH_PORT.bits(), 0x10);
        assert_eq!(ServiceFlags::SCHED3.bits(), 0x20);
    }

    #[test]
    fn hashed_bit_never_crosses_the_api() {
        let read = ServiceFlags::from_kernel(IP_VS_SVC_F_HASHED | IP_VS_SVC_F_PERSISTENT);
        assert_eq!(read, ServiceFlags::PERSISTENT);
        assert_eq!(ServiceFlags::from_bits_retain(0x3).to_kernel(), 0x1);
    }
}
