//! Finding the IPVS family's id: `CTRL_CMD_GETFAMILY` to `nlctrl`.

use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};

use crate::connection::Connection;
use crate::constants::IPVS_GENL_NAME;
use crate::error::ENOENT;
use crate::{Error, Target};

/// The `CTRL_CMD_GETFAMILY` request for `IPVS`.
pub(crate) fn message() -> GenlCtrl {
    GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(IPVS_GENL_NAME.to_owned())],
    }
}

/// Reads the family id out of the reply.
pub(crate) fn parse_reply(reply: &GenlCtrl) -> Result<u16, Error> {
    reply
        .nlas
        .iter()
        .find_map(|nla| match nla {
            GenlCtrlAttrs::FamilyId(id) => Some(*id),
            _ => None,
        })
        .ok_or_else(|| Error::decode("CTRL_CMD_GETFAMILY reply without a family id"))
}

/// Asks the kernel for the id of the `IPVS` family.
pub(crate) async fn resolve(conn: &mut Connection) -> Result<u16, Error> {
    // nlctrl has a fixed id, so no family id is passed here.
    match conn.request(0, message()).await? {
        Ok(reply) => parse_reply(&reply),
        Err(ENOENT) => Err(Error::FamilyNotFound),
        Err(errno) => Err(Error::from_errno(Target::Family, errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;
    use netlink_packet_core::NLM_F_REQUEST;

    #[test]
    fn request_names_the_ipvs_family_to_nlctrl() {
        let mut buf = Vec::new();
        wire::encode(&mut buf, message(), 0, NLM_F_REQUEST, 1);
        // nlmsg_type is GENL_ID_CTRL (16), cmd CTRL_CMD_GETFAMILY (3)
        assert_eq!(&buf[4..6], &16u16.to_ne_bytes());
        assert_eq!(buf[16], 3);
        // CTRL_ATTR_FAMILY_NAME (2) = "IPVS\0"
        assert_eq!(&buf[20..22], &9u16.to_ne_bytes());
        assert_eq!(&buf[22..24], &2u16.to_ne_bytes());
        assert_eq!(&buf[24..29], b"IPVS\0");
    }

    #[test]
    fn reply_gives_the_id() {
        let reply = GenlCtrl {
            cmd: GenlCtrlCmd::NewFamily,
            nlas: vec![
                GenlCtrlAttrs::FamilyName("IPVS".into()),
                GenlCtrlAttrs::FamilyId(0x21),
            ],
        };
        assert_eq!(parse_reply(&reply).ok(), Some(0x21));
        assert!(parse_reply(&GenlCtrl {
            cmd: GenlCtrlCmd::NewFamily,
            nlas: vec![]
        })
        .is_err());
    }
}
