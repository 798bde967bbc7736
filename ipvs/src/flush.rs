//! Deleting every service: `IPVS_CMD_FLUSH`. Exposed only as
//! [`Handle::flush_all_dangerous`](crate::Handle::flush_all_dangerous).

use crate::message::{IpvsCmd, IpvsMessage};

/// The `IPVS_CMD_FLUSH` request.
pub(crate) fn message() -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::Flush, vec![])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::IPVS_CMD_FLUSH;

    #[test]
    fn is_a_bare_flush() {
        let msg = message();
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_FLUSH);
        assert!(msg.attrs.is_empty());
    }
}
