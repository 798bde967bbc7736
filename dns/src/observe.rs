//! Observing answered queries (for metrics): the server reports each one, with its type, its
//! response code and how long answering took, to a [`QueryObserver`] given in the
//! [`ServerOptions`](crate::ServerOptions).

use std::time::Duration;

use crate::Transport;

/// One answered query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryEvent {
    /// The question's type (`1` for A, `33` for SRV, ...); `None` when the request had no
    /// readable question.
    pub qtype: Option<u16>,
    /// The response code in the header (the low four bits).
    pub rcode: u8,
    pub transport: Transport,
    /// From the request in hand to the response built.
    pub elapsed: Duration,
}

/// Receives every [`QueryEvent`]. Called on the answering path: keep it cheap.
pub trait QueryObserver: Send + Sync + std::fmt::Debug {
    fn observe(&self, event: &QueryEvent);
}

/// The type of the first question of a DNS message, read without decoding the message.
pub fn question_type(message: &[u8]) -> Option<u16> {
    let mut i = 12;
    if message.get(4..6)? == [0, 0] {
        return None;
    }
    loop {
        let len = *message.get(i)? as usize;
        match len {
            0 => {
                i += 1;
                break;
            }
            l if l & 0xc0 == 0xc0 => {
                i += 2;
                break;
            }
            l if l < 64 => i += 1 + l,
            _ => return None,
        }
    }
    let t = message.get(i..i + 2)?;
    Some(u16::from_be_bytes([t[0], t[1]]))
}

/// The response code in a DNS message's header.
pub fn response_code(message: &[u8]) -> Option<u8> {
    message.get(3).map(|b| b & 0x0f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_question_type_and_rcode() {
        let mut q = vec![0, 1, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in ["payment", "secure", "svc"] {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 33, 0, 1]);
        assert_eq!(question_type(&q), Some(33));
        assert_eq!(response_code(&q), Some(3));
        assert_eq!(question_type(&q[..15]), None);
        assert_eq!(question_type(&[0; 12]), None);
    }
}
