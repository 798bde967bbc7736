//! Checks every constant of `ipvs_netlink::constants` against the kernel
//! UAPI header `linux/ip_vs.h` installed on the build machine (Debian
//! package `linux-libc-dev`). Skips, saying so, when the header is absent.

use std::collections::HashMap;

use ipvs_netlink::constants::*;

const HEADER: &str = "/usr/include/linux/ip_vs.h";

/// Values of the `#define`s and enumerators of a C header (the simple
/// forms `ip_vs.h` uses: numbers, `(1 << n)`, aliases, implicit enums).
fn header_values(text: &str) -> HashMap<String, i64> {
    let text = strip_comments(text);
    let mut values = HashMap::new();
    let mut in_enum = false;
    let mut next = 0i64;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("enum") && line.ends_with('{') {
            in_enum = true;
            next = 0;
            continue;
        }
        if in_enum {
            if line.starts_with('}') {
                in_enum = false;
                continue;
            }
            for item in line.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (name, value) = match item.split_once('=') {
                    Some((name, expr)) => (name.trim(), eval(expr.trim(), &values)),
                    None => (item, Some(next)),
                };
                if let Some(value) = value {
                    values.insert(name.to_owned(), value);
                    next = value + 1;
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("#define") {
            let mut parts = rest.trim().splitn(2, char::is_whitespace);
            let (Some(name), Some(expr)) = (parts.next(), parts.next()) else {
                continue;
            };
            if let Some(value) = eval(expr.trim(), &values) {
                values.insert(name.to_owned(), value);
            }
        }
    }
    values
}

fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start + 2..]
            .split_once("*/")
            .map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out
}

fn eval(expr: &str, known: &HashMap<String, i64>) -> Option<i64> {
    let expr = expr
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    if let Some((a, b)) = expr.split_once("<<") {
        return Some(eval(a, known)? << eval(b, known)?);
    }
    if let Some(hex) = expr.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    expr.parse().ok().or_else(|| known.get(expr).copied())
}

#[test]
fn constants_match_the_installed_linux_ip_vs_h() {
    let Ok(text) = std::fs::read_to_string(HEADER) else {
        eprintln!("SKIPPED: {HEADER} not installed (apt-get install linux-libc-dev)");
        return;
    };
    let header = header_values(&text);
    let mut checked = 0;
    macro_rules! check {
        ($($name:ident),+ $(,)?) => {$(
            let expected = header.get(stringify!($name)).copied();
            assert_eq!(Some($name as i64), expected, "{} differs from {HEADER}", stringify!($name));
            checked += 1;
        )+};
    }
    check!(
        IPVS_GENL_VERSION,
        IPVS_CMD_UNSPEC,
        IPVS_CMD_NEW_SERVICE,
        IPVS_CMD_SET_SERVICE,
        IPVS_CMD_DEL_SERVICE,
        IPVS_CMD_GET_SERVICE,
        IPVS_CMD_NEW_DEST,
        IPVS_CMD_SET_DEST,
        IPVS_CMD_DEL_DEST,
        IPVS_CMD_GET_DEST,
        IPVS_CMD_NEW_DAEMON,
        IPVS_CMD_DEL_DAEMON,
        IPVS_CMD_GET_DAEMON,
        IPVS_CMD_SET_CONFIG,
        IPVS_CMD_GET_CONFIG,
        IPVS_CMD_SET_INFO,
        IPVS_CMD_GET_INFO,
        IPVS_CMD_ZERO,
        IPVS_CMD_FLUSH,
        IPVS_CMD_ATTR_SERVICE,
        IPVS_CMD_ATTR_DEST,
        IPVS_CMD_ATTR_DAEMON,
        IPVS_CMD_ATTR_TIMEOUT_TCP,
        IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
        IPVS_CMD_ATTR_TIMEOUT_UDP,
        IPVS_SVC_ATTR_AF,
        IPVS_SVC_ATTR_PROTOCOL,
        IPVS_SVC_ATTR_ADDR,
        IPVS_SVC_ATTR_PORT,
        IPVS_SVC_ATTR_FWMARK,
        IPVS_SVC_ATTR_SCHED_NAME,
        IPVS_SVC_ATTR_FLAGS,
        IPVS_SVC_ATTR_TIMEOUT,
        IPVS_SVC_ATTR_NETMASK,
        IPVS_SVC_ATTR_STATS,
        IPVS_SVC_ATTR_PE_NAME,
        IPVS_SVC_ATTR_STATS64,
        IPVS_DEST_ATTR_ADDR,
        IPVS_DEST_ATTR_PORT,
        IPVS_DEST_ATTR_FWD_METHOD,
        IPVS_DEST_ATTR_WEIGHT,
        IPVS_DEST_ATTR_U_THRESH,
        IPVS_DEST_ATTR_L_THRESH,
        IPVS_DEST_ATTR_ACTIVE_CONNS,
        IPVS_DEST_ATTR_INACT_CONNS,
        IPVS_DEST_ATTR_PERSIST_CONNS,
        IPVS_DEST_ATTR_STATS,
        IPVS_DEST_ATTR_ADDR_FAMILY,
        IPVS_DEST_ATTR_STATS64,
        IPVS_DEST_ATTR_TUN_TYPE,
        IPVS_DEST_ATTR_TUN_PORT,
        IPVS_DEST_ATTR_TUN_FLAGS,
        IPVS_STATS_ATTR_CONNS,
        IPVS_STATS_ATTR_INPKTS,
        IPVS_STATS_ATTR_OUTPKTS,
        IPVS_STATS_ATTR_INBYTES,
        IPVS_STATS_ATTR_OUTBYTES,
        IPVS_STATS_ATTR_CPS,
        IPVS_STATS_ATTR_INPPS,
        IPVS_STATS_ATTR_OUTPPS,
        IPVS_STATS_ATTR_INBPS,
        IPVS_STATS_ATTR_OUTBPS,
        IPVS_STATS_ATTR_PAD,
        IPVS_INFO_ATTR_VERSION,
        IPVS_INFO_ATTR_CONN_TAB_SIZE,
        IP_VS_SVC_F_PERSISTENT,
        IP_VS_SVC_F_HASHED,
        IP_VS_SVC_F_ONEPACKET,
        IP_VS_SVC_F_SCHED1,
        IP_VS_SVC_F_SCHED2,
        IP_VS_SVC_F_SCHED3,
        IP_VS_SVC_F_SCHED_SH_FALLBACK,
        IP_VS_SVC_F_SCHED_SH_PORT,
        IP_VS_CONN_F_FWD_MASK,
        IP_VS_CONN_F_MASQ,
        IP_VS_CONN_F_LOCALNODE,
        IP_VS_CONN_F_TUNNEL,
        IP_VS_CONN_F_DROUTE,
        IP_VS_CONN_F_BYPASS,
        IP_VS_CONN_F_TUNNEL_TYPE_IPIP,
        IP_VS_CONN_F_TUNNEL_TYPE_GUE,
        IP_VS_CONN_F_TUNNEL_TYPE_GRE,
        IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM,
        IP_VS_TUNNEL_ENCAP_FLAG_CSUM,
        IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
        IP_VS_SCHEDNAME_MAXLEN,
        IP_VS_PENAME_MAXLEN,
    );
    assert!(text.contains(&format!("#define IPVS_GENL_NAME\t\t\"{IPVS_GENL_NAME}\"")));
    assert_eq!(checked, 87);
}
