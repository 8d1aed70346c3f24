//! The media port's front door: the switchboard's datagram demultiplexer and STUN routing
//! (`Switchboard::handle_datagram`, `handle_tcp`, `handle_timeout`), fed datagrams and ICE-TCP
//! frames from addresses no session owns. Structure-aware in part: besides raw bytes, the input
//! can build a well-formed STUN binding request (magic cookie, USERNAME, arbitrary attributes,
//! a correct FINGERPRINT) so that the fuzzer gets past the first checks into the ufrag lookup.
//! Never a panic, and nothing is ever sent to an address that is not a session's.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bedside_sfu::demux::PacketKind;
use bedside_sfu::io::{Arrived, Io};
use bedside_sfu::switchboard::Switchboard;
use bedside_sfu::{Metrics, SfuConfig};
use libfuzzer_sys::fuzz_target;
use str0m::net::Transmit;

const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5000);

#[derive(Default)]
struct Sink {
    sent: usize,
}

impl Io for Sink {
    fn send(&mut self, _: &Transmit) {
        self.sent += 1;
    }
    fn gather(&mut self, _: &Transmit) {
        self.sent += 1;
    }
    fn flush(&mut self) {}
    fn read_now(&mut self, _: &mut Vec<Arrived>) {}
}

#[derive(Arbitrary, Debug)]
enum Payload {
    Raw(Vec<u8>),
    Stun {
        class_method: u16,
        transaction: [u8; 12],
        username: String,
        attrs: Vec<(u16, Vec<u8>)>,
        fingerprint: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Step {
    from: u8,
    tcp: bool,
    advance_ms: u16,
    payload: Payload,
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(value.len().min(0xffff) as u16).to_be_bytes());
    out.extend_from_slice(&value[..value.len().min(0xffff)]);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// A STUN message (RFC 5389): header, USERNAME, the given attributes, optionally FINGERPRINT.
fn stun(class_method: u16, transaction: &[u8; 12], username: &str, attrs: &[(u16, Vec<u8>)], fingerprint: bool) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&(class_method & 0x3fff).to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(transaction);
    attr(&mut m, 0x0006, username.as_bytes());
    for (k, v) in attrs.iter().take(8) {
        attr(&mut m, *k, v);
    }
    let set_len = |m: &mut Vec<u8>, extra: usize| {
        let len = (m.len() - 20 + extra) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
    };
    if fingerprint {
        set_len(&mut m, 8);
        let crc = crc32(&m) ^ 0x5354_554e;
        attr(&mut m, 0x8028, &crc.to_be_bytes());
    } else {
        set_len(&mut m, 0);
    }
    m
}

fn metrics() -> Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new).clone()
}

fuzz_target!(|steps: Vec<Step>| {
    let start = Instant::now();
    let mut now = start;
    let mut board = Switchboard::new(SfuConfig::default(), LOCAL, metrics(), now);
    board.set_local_tcp(SocketAddr::new(LOCAL.ip(), 5001));
    let mut io = Sink::default();
    for s in steps.into_iter().take(32) {
        let data = match &s.payload {
            Payload::Raw(b) => b.clone(),
            Payload::Stun { class_method, transaction, username, attrs, fingerprint } => {
                stun(*class_method, transaction, username, attrs, *fingerprint)
            }
        };
        let _ = PacketKind::of(&data);
        let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, s.from % 8)), 40000 + u16::from(s.from));
        now += Duration::from_millis(u64::from(s.advance_ms));
        if s.tcp {
            board.handle_tcp(now, src, &data, &mut io);
        } else {
            board.handle_datagram(now, src, &data, &mut io);
        }
        if now >= board.poll_timeout() {
            board.handle_timeout(now, 0, &mut io);
        }
        board.flush(now, &mut io);
        while board.poll_event().is_some() {}
    }
    // No session exists, so no datagram may have been sent to anyone.
    assert_eq!(io.sent, 0, "the switchboard answered an address that is no session's");
    assert_eq!(board.watchers(), 0);
});
