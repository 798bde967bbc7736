//! The IPVS generic netlink commands (`IPVS_CMD_*`).

use crate::constants::*;

/// A command of the IPVS generic netlink family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IpvsCmd {
    /// Add a virtual service; also the command of service dump entries.
    NewService,
    /// Modify a virtual service.
    SetService,
    /// Delete a virtual service.
    DelService,
    /// Get one service (request) or dump all services.
    GetService,
    /// Add a destination; also the command of destination dump entries.
    NewDest,
    /// Modify a destination.
    SetDest,
    /// Delete a destination.
    DelDest,
    /// Dump the destinations of one service.
    GetDest,
    /// Start a sync daemon.
    NewDaemon,
    /// Stop a sync daemon.
    DelDaemon,
    /// Dump sync daemons.
    GetDaemon,
    /// Set the protocol timeouts.
    SetConfig,
    /// Get the protocol timeouts.
    GetConfig,
    /// Reply to [`IpvsCmd::GetInfo`].
    SetInfo,
    /// Get the IPVS version and connection table size.
    GetInfo,
    /// Zero the counters of one service or of all.
    Zero,
    /// Delete every service and destination.
    Flush,
    /// A command this crate does not know.
    Other(u8),
}

impl From<IpvsCmd> for u8 {
    fn from(cmd: IpvsCmd) -> u8 {
        match cmd {
            IpvsCmd::NewService => IPVS_CMD_NEW_SERVICE,
            IpvsCmd::SetService => IPVS_CMD_SET_SERVICE,
            IpvsCmd::DelService => IPVS_CMD_DEL_SERVICE,
            IpvsCmd::GetService => IPVS_CMD_GET_SERVICE,
            IpvsCmd::NewDest => IPVS_CMD_NEW_DEST,
            IpvsCmd::SetDest => IPVS_CMD_SET_DEST,
            IpvsCmd::DelDest => IPVS_CMD_DEL_DEST,
            IpvsCmd::GetDest => IPVS_CMD_GET_DEST,
            IpvsCmd::NewDaemon => IPVS_CMD_NEW_DAEMON,
            IpvsCmd::DelDaemon => IPVS_CMD_DEL_DAEMON,
            IpvsCmd::GetDaemon => IPVS_CMD_GET_DAEMON,
            IpvsCmd::SetConfig => IPVS_CMD_SET_CONFIG,
            IpvsCmd::GetConfig => IPVS_CMD_GET_CONFIG,
            IpvsCmd::SetInfo => IPVS_CMD_SET_INFO,
            IpvsCmd::GetInfo => IPVS_CMD_GET_INFO,
            IpvsCmd::Zero => IPVS_CMD_ZERO,
            IpvsCmd::Flush => IPVS_CMD_FLUSH,
            IpvsCmd::Other(n) => n,
        }
    }
}

impl From<u8> for IpvsCmd {
    fn from(n: u8) -> IpvsCmd {
        match n {
            IPVS_CMD_NEW_SERVICE => IpvsCmd::NewService,
            IPVS_CMD_SET_SERVICE => IpvsCmd::SetService,
            IPVS_CMD_DEL_SERVICE => IpvsCmd::DelService,
            IPVS_CMD_GET_SERVICE => IpvsCmd::GetService,
            IPVS_CMD_NEW_DEST => IpvsCmd::NewDest,
            IPVS_CMD_SET_DEST => IpvsCmd::SetDest,
            IPVS_CMD_DEL_DEST => IpvsCmd::DelDest,
            IPVS_CMD_GET_DEST => IpvsCmd::GetDest,
            IPVS_CMD_NEW_DAEMON => IpvsCmd::NewDaemon,
            IPVS_CMD_DEL_DAEMON => IpvsCmd::DelDaemon,
            IPVS_CMD_GET_DAEMON => IpvsCmd::GetDaemon,
            IPVS_CMD_SET_CONFIG => IpvsCmd::SetConfig,
            IPVS_CMD_GET_CONFIG => IpvsCmd::GetConfig,
            IPVS_CMD_SET_INFO => IpvsCmd::SetInfo,
            IPVS_CMD_GET_INFO => IpvsCmd::GetInfo,
            IPVS_CMD_ZERO => IpvsCmd::Zero,
            IPVS_CMD_FLUSH => IpvsCmd::Flush,
            other => IpvsCmd::Other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_matches_ip_vs_h() {
        let expected = [
            (IpvsCmd::NewService, 1),
            (IpvsCmd::SetService, 2),
            (IpvsCmd::DelService, 3),
            (IpvsCmd::GetService, 4),
            (IpvsCmd::NewDest, 5),
            (IpvsCmd::SetDest, 6),
            (IpvsCmd::DelDest, 7),
            (IpvsCmd::GetDest, 8),
            (IpvsCmd::NewDaemon, 9),
            (IpvsCmd::DelDaemon, 10),
            (IpvsCmd::GetDaemon, 11),
            (IpvsCmd::SetConfig, 12),
            (IpvsCmd::GetConfig, 13),
            (IpvsCmd::SetInfo, 14),
            (IpvsCmd::GetInfo, 15),
            (IpvsCmd::Zero, 16),
            (IpvsCmd::Flush, 17),
        ];
        for (cmd, n) in expected {
            assert_eq!(u8::from(cmd), n, "{cmd:?}");
            assert_eq!(IpvsCmd::from(n), cmd);
        }
        assert_eq!(IpvsCmd::from(99), IpvsCmd::Other(99));
        assert_eq!(u8::from(IpvsCmd::Other(99)), 99);
    }
}
