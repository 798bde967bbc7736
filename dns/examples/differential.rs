//! Differential DNS fuzzing: random valid queries asked of two servers serving the same zone
//! (bench/dns/run: mcwan and Knot), over UDP on loopback; the answers must be the same.
//!
//!   differential A_ADDR B_ADDR NAMES_FILE COUNT [SEED]
//!
//! NAMES_FILE: lines "name type" (the dnsperf query file); the queries are those names,
//! mutated (case, a label added, dropped or replaced, another zone), with random types, RD,
//! and EDNS payload sizes. Compared: rcode, the AA, TC and RD flags, the answer section as a
//! set of records, the types in the authority section; with TC set, only rcode and flags.
//! ANY, zone transfers and meta types are left out: RFC 8482 lets servers answer ANY
//! differently. One difference is the MCS DNS specification's and counted apart: it says
//! `<clusterid>.<svc>.<ns>.svc.<zone>` must not exist (NXDOMAIN), which A answers, while a zone
//! file served by B has that name as an empty non-terminal (NOERROR, no data) above the
//! per-endpoint names. Prints counts and the first differences; exits 1 on any other
//! difference.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::{Name, RecordType};

/// xorshift64*: a reproducible stream from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::A,
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::SOA,
    RecordType::NS,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::PTR,
];

fn label(rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_";
    let len = 1 + rng.below(12);
    (0..len)
        .map(|_| CHARS[rng.below(CHARS.len())] as char)
        .collect()
}

/// A query name: a known name, perhaps mutated.
fn qname(rng: &mut Rng, names: &[String]) -> String {
    let base = &names[rng.below(names.len())];
    let mut labels: Vec<String> = base
        .trim_end_matches('.')
        .split('.')
        .map(str::to_owned)
        .collect();
    match rng.below(10) {
        0 => labels.insert(0, label(rng)),
        1 if labels.len() > 2 => {
            labels.remove(0);
        }
        2 => {
            let i = rng.below(labels.len());
            labels[i] = label(rng);
        }
        3 => labels.push("example".into()),
        _ => {}
    }
    let mut name = labels.join(".") + ".";
    if rng.chance(30) {
        name = name
            .chars()
            .map(|c| match rng.chance(50) {
                true => c.to_ascii_uppercase(),
                false => c,
            })
            .collect();
    }
    name
}

fn query(rng: &mut Rng, names: &[String], id: u16) -> Option<Message> {
    let name = Name::from_ascii(qname(rng, names)).ok()?;
    let qtype = if rng.chance(5) {
        // Any type number but the meta ones (OPT, TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY).
        let n = 1 + rng.below(248) as u16;
        if n == 41 {
            return None;
        }
        RecordType::from(n)
    } else {
        TYPES[rng.below(TYPES.len())]
    };
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = rng.chance(50);
    message.add_query(Query::query(name, qtype));
    if rng.chance(70) {
        let mut edns = Edns::new();
        edns.set_max_payload(512 + rng.below(4096 - 512 + 1) as u16);
        message.set_edns(edns);
    }
    Some(message)
}

/// What is compared of a response.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    rcode: u16,
    flags: (bool, bool, bool),
    answer: BTreeSet<String>,
    authority: BTreeSet<u16>,
}

fn seen(bytes: &[u8], id: u16) -> Result<Seen, String> {
    let m = Message::from_vec(bytes).map_err(|e| format!("unparsable response: {e}"))?;
    if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
        return Err(format!("not the response to {id}: {:?}", m.metadata));
    }
    let md = &m.metadata;
    let flags = (md.authoritative, md.truncation, md.recursion_desired);
    let rcode = u16::from(md.response_code);
    if md.truncation {
        return Ok(Seen {
            rcode,
            flags,
            answer: BTreeSet::new(),
            authority: BTreeSet::new(),
        });
    }
    Ok(Seen {
        rcode,
        flags,
        answer: m
            .answers
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r.name.to_ascii().to_lowercase(),
                    r.ttl,
                    r.record_type(),
                    r.data.to_string().to_lowercase()
                )
            })
            .collect(),
        authority: m
            .authorities
            .iter()
            .map(|r| u16::from(r.record_type()))
            .collect(),
    })
}

fn ask(socket: &UdpSocket, server: SocketAddr, request: &[u8], id: u16) -> Result<Seen, String> {
    let mut buf = [0u8; 65535];
    for _ in 0..3 {
        socket.send_to(request, server).map_err(|e| e.to_string())?;
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) if from == server && n >= 2 && buf[..2] == id.to_be_bytes() => {
                    return seen(&buf[..n], id)
                }
                Ok(_) => continue, // a late answer to an earlier query
                Err(_) => break,   // timed out: ask again
            }
        }
    }
    Err("no answer".into())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: differential A_ADDR B_ADDR NAMES_FILE COUNT [SEED]");
        std::process::exit(2);
    }
    let a: SocketAddr = args[1].parse().expect("A_ADDR");
    let b: SocketAddr = args[2].parse().expect("B_ADDR");
    let names: Vec<String> = std::fs::read_to_string(&args[3])
        .expect("NAMES_FILE")
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // `<clusterid>.<svc>.<ns>.svc.<zone>.`: the parents of per-endpoint names
    // (`<hostname>.<clusterid>.<svc>.<ns>.svc.<zone>.`).
    let hidden: BTreeSet<String> = names
        .iter()
        .filter(|n| n.trim_end_matches('.').split('.').count() >= 7)
        .filter_map(|n| n.split_once('.').map(|(_, parent)| parent.to_lowercase()))
        .collect();
    let count: u64 = args[4].parse().expect("COUNT");
    let seed: u64 = args.get(5).map_or(1, |s| s.parse().expect("SEED"));
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket on loopback");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("a read timeout");
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (mut asked, mut differ, mut truncated, mut spec_hidden) = (0u64, 0u64, 0u64, 0u64);
    let mut rcodes = std::collections::BTreeMap::<u16, u64>::new();
    let started = Instant::now();
    while asked < count {
        let id = (asked % 65536) as u16;
        let Some(message) = query(&mut rng, &names, id) else {
            continue;
        };
        let request = message.to_vec().expect("a query encodes");
        asked += 1;
        let (x, y) = (ask(&socket, a, &request, id), ask(&socket, b, &request, id));
        if let Ok(s) = &x {
            *rcodes.entry(s.rcode).or_default() += 1;
            truncated += u64::from(s.flags.1);
        }
        let name = message.queries[0].name().to_ascii().to_lowercase();
        let is_hidden = |s: &Result<Seen, String>, rcode: u16| {
            s.as_ref()
                .is_ok_and(|s| s.rcode == rcode && s.answer.is_empty())
        };
        if x != y && hidden.contains(&name) && is_hidden(&x, 3) && is_hidden(&y, 0) {
            spec_hidden += 1;
        } else if x != y {
            differ += 1;
            if differ <= 10 {
                println!(
                    "DIFFERENT {}:\n  {}: {x:?}\n  {}: {y:?}",
                    message.queries[0], args[1], args[2]
                );
            }
        }
    }
    println!(
        "differential: {asked} queries (seed {seed}) in {:.1} s, {differ} different, {spec_hidden} <clusterid>.<svc> names NXDOMAIN by the MCS spec, {truncated} truncated, rcodes {rcodes:?}",
        started.elapsed().as_secs_f64()
    );
    if differ > 0 {
        std::process::exit(1);
    }
}
