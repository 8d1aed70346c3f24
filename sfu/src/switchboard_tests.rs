//! The switchboard with plain calls: real str0m peers (ICE, DTLS, SCTP, SRTP) exchanging
//! datagrams through vectors, time advanced by hand, no sockets and no runtime.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bedside_proto::{ControlFrame, Role};
use str0m::change::SdpAnswer;
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Event as RtcEvent, Input, Output as RtcOutput, Rtc};

use super::*;
use crate::client::{two_way_lines, Endpoint, Offering};
use crate::demux::PacketKind;
use crate::peer::PeerSetup;

const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5000);

fn addr(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 1, n)), 40000 + n as u16)
}

/// What the switchboard sent, in order, and what it will find on a mid-pass read.
#[derive(Default)]
struct MemIo {
    sent: Vec<(SocketAddr, Vec<u8>)>,
    gathered: Vec<(SocketAddr, Vec<u8>)>,
    arriving: Vec<Arrived>,
}

impl Io for MemIo {
    fn send(&mut self, t: &Transmit) {
        self.sent.push((t.destination, t.contents.to_vec()));
    }
    fn gather(&mut self, t: &Transmit) {
        self.gathered.push((t.destination, t.contents.to_vec()));
    }
    fn flush(&mut self) {
        self.sent.append(&mut self.gathered);
    }
    fn read_now(&mut self, out: &mut Vec<Arrived>) {
        out.append(&mut self.arriving);
    }
}

/// One participant: a client `Rtc` at its own address, and what it received.
struct Client {
    rtc: Rtc,
    addr: SocketAddr,
    id: SessionId,
    control: ChannelId,
    events: ChannelId,
    open: usize,
    connected: bool,
    audio_mid: Option<Mid>,
    /// Its m-lines in order, with its own directions.
    lines: Vec<(Mid, MediaKind, Direction)>,
    /// The switchboard's ICE ufrag for this session (from the answer).
    server_ufrag: String,
    control_in: Vec<Vec<u8>>,
    events_in: Vec<String>,
    /// What it sends is lost (its link is down).
    silent: bool,
    rtp_in: usize,
}

struct Net {
    board: Switchboard,
    io: MemIo,
    now: Instant,
    clients: Vec<Client>,
    next_id: u64,
}

fn member(role: Role, sub: &str, can_control: bool) -> Member {
    Member {
        sub: sub.into(),
        role,
        can_control,
        expires_at_ms: u64::MAX / 2,
        booking: Some("booking-1".into()),
        layout: Default::default(),
        transport: None,
    }
}

fn robot() -> Member {
    Member {
        booking: None,
        ..member(Role::Robot, "robot", false)
    }
}

/// The claims a token for `m` would carry (one fresh `jti` per call, as the API mints them).
fn claims_of(m: &Member) -> Claims {
    let mut c = Claims::new(m.sub.clone(), "room-1", m.role, 600);
    c.can_control = m.can_control;
    c.booking = m.booking.clone();
    c
}

impl Net {
    fn new(config: SfuConfig) -> Net {
        let now = Instant::now();
        // Idempotent: the process-wide crypto provider str0m needs.
        str0m::crypto::from_feature_flags().install_process_default();
        Net {
            board: Switchboard::new(config, SERVER, Metrics::new(), now),
            io: MemIo::default(),
            now,
            clients: Vec::new(),
            next_id: 1,
        }
    }

    /// Build a client's offer and have the switchboard admit it; returns the client's index.
    fn admit(&mut self, n: u8, m: Member) -> Result<usize, SfuError> {
        let c = claims_of(&m);
        self.admit_with(n, m, c)
    }

    fn admit_with(&mut self, n: u8, m: Member, claims: Claims) -> Result<usize, SfuError> {
        let endpoint = if m.role == Role::Robot {
            Endpoint::Whip
        } else {
            Endpoint::Whep
        };
        let offering = Offering::new(addr(n), endpoint, self.now).expect("offer");
        self.admit_offering(n, m, claims, offering)
    }

    /// Admit `m` offering these m-lines (a two-way participant: see `two_way_lines`).
    fn admit_lines(
        &mut self,
        n: u8,
        m: Member,
        lines: &[(MediaKind, Direction)],
    ) -> Result<usize, SfuError> {
        let claims = claims_of(&m);
        let offering = Offering::with_lines(addr(n), lines, self.now).expect("offer");
        self.admit_offering(n, m, claims, offering)
    }

    fn admit_offering(
        &mut self,
        n: u8,
        m: Member,
        claims: Claims,
        offering: Offering,
    ) -> Result<usize, SfuError> {
        let Offering {
            mut rtc,
            offer,
            pending,
            audio_mid,
            control,
            events,
            lines,
            ..
        } = offering;
        let id = SessionId(self.next_id);
        self.next_id += 1;
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .expect("cert");
        let accepted = Peer::accept(
            PeerSetup {
                id,
                room: "room-1".into(),
                role: m.role,
                candidate: SERVER,
                tcp_candidate: None,
                cert: &cert,
                now: self.now,
            },
            &offer.to_sdp_string(),
        )
        .expect("answer");
        let answer = SdpAnswer::from_sdp_string(&accepted.answer).expect("answer parses");
        let server_ufrag = accepted.ufrag.clone();
        self.board.admit(
            self.now,
            Admit {
                accepted,
                key: format!("key-{}", id.0),
                member: m,
                claims,
            },
        )?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
        self.clients.push(Client {
            rtc,
            addr: addr(n),
            id,
            control,
            events,
            open: 0,
            connected: false,
            audio_mid,
            lines,
            server_ufrag,
            control_in: Vec::new(),
            events_in: Vec::new(),
            silent: false,
            rtp_in: 0,
        });
        Ok(self.clients.len() - 1)
    }

    /// Poll every client, hand what they send to the switchboard one datagram at a time, and
    /// deliver what the switchboard sent. `steps` rounds of 10 ms.
    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            let outgoing = self.poll_clients();
            for (src, data) in outgoing {
                self.board
                    .handle_datagram(self.now, src, &data, &mut self.io);
            }
            self.board.flush(self.now, &mut self.io);
            self.deliver();
            self.now += Duration::from_millis(10);
            self.board.handle_timeout(self.now, 0, &mut self.io);
            self.board.flush(self.now, &mut self.io);
            self.deliver();
            for c in &mut self.clients {
                let _ = c.rtc.handle_input(Input::Timeout(self.now));
            }
        }
    }

    /// Everything the clients want to send, as (from, bytes).
    fn poll_clients(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        for c in &mut self.clients {
            loop {
                match c.rtc.poll_output() {
                    Ok(RtcOutput::Timeout(_)) | Err(_) => break,
                    Ok(RtcOutput::Transmit(t)) => {
                        if !c.silent {
                            out.push((c.addr, t.contents.to_vec()))
                        }
                    }
                    Ok(RtcOutput::Event(e)) => match e {
                        RtcEvent::Connected => c.connected = true,
                        RtcEvent::ChannelOpen(..) => c.open += 1,
                        RtcEvent::ChannelData(d) if d.id == c.control => c.control_in.push(d.data),
                        RtcEvent::ChannelData(d) if d.id == c.events => c
                            .events_in
                            .push(String::from_utf8_lossy(&d.data).into_owned()),
                        RtcEvent::RtpPacket(_) => c.rtp_in += 1,
                        _ => {}
                    },
                }
            }
        }
        out
    }

    fn deliver(&mut self) {
        for (dst, data) in std::mem::take(&mut self.io.sent) {
            let Some(c) = self.clients.iter_mut().find(|c| c.addr == dst) else {
                continue;
            };
            if let Ok(r) = Receive::new(Protocol::Udp, SERVER, dst, &data) {
                let _ = c.rtc.handle_input(Input::Receive(self.now, r));
            }
        }
    }

    fn ready(&self, i: usize) -> bool {
        self.clients[i].connected && self.clients[i].open >= 2
    }

    fn run_until_ready(&mut self) {
        for _ in 0..300 {
            if (0..self.clients.len()).all(|i| self.ready(i)) {
                // One more round so the room's welcome and lease events arrive.
                self.run(2);
                return;
            }
            self.run(1);
        }
        panic!("clients did not connect");
    }

    fn send_event(&mut self, i: usize, json: &str) {
        let c = &mut self.clients[i];
        let mut ch = c.rtc.channel(c.events).expect("events open");
        ch.write(false, json.as_bytes()).expect("write");
    }

    fn send_control(&mut self, i: usize, frame: &[u8]) {
        let c = &mut self.clients[i];
        let mut ch = c.rtc.channel(c.control).expect("control open");
        ch.write(true, frame).expect("write");
    }

    /// The robot writes one Opus packet; returns its SRTP datagram (not yet delivered).
    fn robot_audio_datagram(&mut self, robot: usize, seq: u64) -> Vec<u8> {
        let mid = self.clients[robot].audio_mid.expect("audio mid");
        self.audio_datagram_on(robot, mid, seq)
    }

    /// A two-way doctor's microphone writes one Opus packet; returns its SRTP datagram.
    fn microphone_datagram(&mut self, doctor: usize, seq: u64) -> Vec<u8> {
        let mid = self.clients[doctor]
            .lines
            .iter()
            .find(|(_, k, d)| *k == MediaKind::Audio && *d == Direction::SendOnly)
            .map(|(m, _, _)| *m)
            .expect("a sending audio m-line");
        self.audio_datagram_on(doctor, mid, seq)
    }

    /// Client `i` writes one Opus packet on its sending m-line `mid`; returns its SRTP
    /// datagram (not yet delivered).
    fn audio_datagram_on(&mut self, i: usize, mid: Mid, seq: u64) -> Vec<u8> {
        let c = &mut self.clients[i];
        let pt = c
            .rtc
            .codec_config()
            .iter()
            .find(|p| p.spec().codec == Codec::Opus)
            .expect("opus")
            .pt();
        let now = self.now;
        let mut api = c.rtc.direct_api();
        let tx = api.stream_tx_by_mid(mid, None).expect("audio stream");
        tx.write_rtp(RtpWrite::new(
            pt,
            SeqNo::from(seq),
            960 * seq as u32,
            now,
            vec![0xf8, 0xff, 0xfe],
        ));
        let _ = c.rtc.handle_input(Input::Timeout(now));
        let mut found = None;
        loop {
            match c.rtc.poll_output() {
                Ok(RtcOutput::Transmit(t)) if PacketKind::of(&t.contents).is_media() => {
                    found = Some(t.contents.to_vec())
                }
                Ok(RtcOutput::Timeout(_)) | Err(_) => break,
                _ => {}
            }
        }
        found.expect("an RTP datagram")
    }

    /// Deliver to client `i` only what the switchboard sent it before its first media datagram
    /// to anyone else, and return the control frames that made it.
    fn control_received_before_media(&mut self, i: usize) -> Vec<Vec<u8>> {
        let dst = self.clients[i].addr;
        let sent = std::mem::take(&mut self.io.sent);
        let first_media = sent
            .iter()
            .position(|(d, b)| *d != dst && PacketKind::of(b).is_media())
            .expect("media was sent");
        self.clients[i].control_in.clear();
        for (d, data) in &sent[..first_media] {
            if *d == dst {
                if let Ok(r) = Receive::new(Protocol::Udp, SERVER, dst, data) {
                    let _ = self.clients[i]
                        .rtc
                        .handle_input(Input::Receive(self.now, r));
                }
            }
        }
        self.poll_clients();
        std::mem::take(&mut self.clients[i].control_in)
    }

    /// The client's pending datagrams (after writing to a channel), without delivering them.
    fn take_datagrams(&mut self, i: usize) -> Vec<Vec<u8>> {
        let c = &mut self.clients[i];
        let mut v = Vec::new();
        loop {
            match c.rtc.poll_output() {
                Ok(RtcOutput::Transmit(t)) => v.push(t.contents.to_vec()),
                Ok(RtcOutput::Timeout(_)) | Err(_) => break,
                _ => {}
            }
        }
        v
    }
}

fn not_stun() -> Vec<u8> {
    // A DTLS-looking datagram: not STUN, so it can never introduce an address.
    vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
}

#[test]
fn a_new_address_is_admitted_only_by_a_stun_request_naming_a_known_ufrag() {
    let mut net = Net::new(SfuConfig::default());
    let viewer = net
        .admit(1, member(Role::Observer, "student", false))
        .unwrap();

    // Garbage from a stranger touches no session.
    net.board
        .handle_datagram(net.now, addr(9), &not_stun(), &mut net.io);
    assert_eq!(net_dropped(&net, "unknown_source"), 1);
    assert_eq!(net.board.sessions.sizes(), (1, 0, 1, 1));

    // A well-formed binding request naming a ufrag this switchboard never issued: one from a
    // client admitted somewhere else.
    let mut elsewhere = Net::new(SfuConfig::default());
    elsewhere
        .admit(8, member(Role::Observer, "x", false))
        .unwrap();
    elsewhere.now += Duration::from_millis(50);
    let _ = elsewhere.clients[0]
        .rtc
        .handle_input(Input::Timeout(elsewhere.now));
    let stun = elsewhere
        .take_datagrams(0)
        .into_iter()
        .find(|d| PacketKind::of(d) == PacketKind::Stun)
        .expect("a binding request");
    net.board
        .handle_datagram(net.now, addr(8), &stun, &mut net.io);
    assert_eq!(net_dropped(&net, "unknown_source"), 2);
    assert_eq!(
        net.board.sessions.sizes(),
        (1, 0, 1, 1),
        "no address learnt"
    );

    // The admitted client's own binding request maps its address.
    net.run_until_ready();
    assert!(net.ready(viewer));
    assert_eq!(net.board.sessions.sizes(), (1, 1, 1, 0));
    assert_eq!(net_dropped(&net, "unknown_source"), 2);
}

fn net_dropped(net: &Net, reason: &str) -> u64 {
    net.board
        .metrics
        .datagrams_dropped
        .with_label_values(&[reason])
        .get()
}

#[test]
fn control_frames_are_handled_before_media_of_the_same_batch() {
    let mut net = Net::new(SfuConfig::default());
    let robot = net.admit(1, robot()).unwrap();
    let driver = net.admit(2, member(Role::Doctor, "doc", true)).unwrap();
    let viewers: Vec<usize> = (3..8)
        .map(|n| {
            net.admit(n, member(Role::Observer, &format!("student-{n}"), false))
                .unwrap()
        })
        .collect();
    net.run_until_ready();
    net.send_event(driver, r#"{"type":"request_lease"}"#);
    net.run(5);
    let epoch = net.board.room("room-1").unwrap().lease_epoch();
    assert_eq!(
        net.board.room("room-1").unwrap().lease_holder(),
        Some(net.clients[driver].id)
    );
    // Audio needs no keyframe: every viewer receives the robot's audio from now on.
    let warm = net.robot_audio_datagram(robot, 1);
    let from = net.clients[robot].addr;
    net.board.handle_datagram(net.now, from, &warm, &mut net.io);
    net.board.flush(net.now, &mut net.io);
    net.deliver();
    net.run(2);
    net.clients[robot].control_in.clear();

    // One batch: more of the robot's media than one slice of the fan-out, then the driver's
    // joystick frame.
    let mut batch: Vec<Arrived> = (2..(3 + MAX_PACKETS_PER_FLUSH as u64))
        .map(|seq| Arrived {
            src: net.clients[robot].addr,
            data: net.robot_audio_datagram(robot, seq),
        })
        .collect();
    let frame = ControlFrame::drive(1, 0, 1000, 0, 0);
    net.send_control(driver, &frame.encode());
    let control = net.take_datagrams(driver);
    assert!(!control.is_empty());
    batch.extend(control.into_iter().map(|data| Arrived {
        src: net.clients[driver].addr,
        data,
    }));
    net.io.sent.clear();
    net.board.handle_batch(net.now, &batch[..], &mut net.io);

    // The frame reached the robot before any of the media left, stamped with the epoch.
    let got = net.control_received_before_media(robot);
    assert_eq!(got.len(), 1, "{got:?}");
    let f = ControlFrame::decode(&got[0]).unwrap();
    assert_eq!((f.epoch, f.linear_x), (epoch, 1000));
    let _ = viewers;
}

/// The same with two-way media: the batch's media is the doctors' microphones (going out on the
/// robot's and everyone's audio slots), and the driver's joystick frame still goes first.
#[test]
fn control_frames_are_handled_before_doctors_media_of_the_same_batch() {
    let mut net = Net::new(SfuConfig::default());
    let robot = net
        .admit_lines(1, robot(), &two_way_lines(Endpoint::Whip, 3, 1))
        .unwrap();
    let doctor_lines = two_way_lines(Endpoint::Whep, 3, 1);
    let driver = net
        .admit_lines(2, member(Role::Doctor, "doc", true), &doctor_lines)
        .unwrap();
    let consultant = net
        .admit_lines(3, member(Role::Doctor, "consultant", false), &doctor_lines)
        .unwrap();
    for n in 4..9 {
        net.admit_lines(
            n,
            member(Role::Observer, &format!("student-{n}"), false),
            &two_way_lines(Endpoint::Whep, 3, 0),
        )
        .unwrap();
    }
    net.run_until_ready();
    net.send_event(driver, r#"{"type":"request_lease"}"#);
    net.run(5);
    let epoch = net.board.room("room-1").unwrap().lease_epoch();
    assert_eq!(
        net.board.room("room-1").unwrap().lease_holder(),
        Some(net.clients[driver].id)
    );
    // Both doctors' voices reach the robot's slots (audio needs no keyframe).
    for seq in 1..=10 {
        for d in [driver, consultant] {
            let warm = net.microphone_datagram(d, seq);
            let from = net.clients[d].addr;
            net.board.handle_datagram(net.now, from, &warm, &mut net.io);
        }
        net.board.flush(net.now, &mut net.io);
        net.deliver();
        net.run(2);
    }
    let before = net.clients[robot].rtp_in;
    assert!(
        before >= 2,
        "the robot hears the doctors ({before} packets)"
    );
    net.clients[robot].control_in.clear();

    // One batch: more of the doctors' voices than one slice of the fan-out (the driver talks
    // while it drives), then the driver's joystick frame.
    let mut batch: Vec<Arrived> = (11..(12 + MAX_PACKETS_PER_FLUSH as u64))
        .flat_map(|seq| [(driver, seq), (consultant, seq)])
        .map(|(d, seq)| Arrived {
            src: net.clients[d].addr,
            data: net.microphone_datagram(d, seq),
        })
        .collect::<Vec<_>>();
    let frame = ControlFrame::drive(1, 0, 1000, 0, 0);
    net.send_control(driver, &frame.encode());
    let control = net.take_datagrams(driver);
    assert!(!control.is_empty());
    batch.extend(control.into_iter().map(|data| Arrived {
        src: net.clients[driver].addr,
        data,
    }));
    net.io.sent.clear();
    net.board.handle_batch(net.now, &batch[..], &mut net.io);

    // The frame reached the robot before any of the doctors' voices left for anyone else.
    let got = net.control_received_before_media(robot);
    assert_eq!(got.len(), 1, "{got:?}");
    let f = ControlFrame::decode(&got[0]).unwrap();
    assert_eq!((f.epoch, f.linear_x), (epoch, 1000));
}

#[test]
fn urgent_datagrams_arriving_mid_flush_are_handled_in_that_flush() {
    // Enough viewers that the flush reads again (every URGENT_EVERY viewers).
    let mut net = Net::new(SfuConfig::default());
    let robot = net.admit(1, robot()).unwrap();
    let driver = net.admit(2, member(Role::Doctor, "doc", true)).unwrap();
    for n in 3..(3 + URGENT_EVERY as u8 + 4) {
        net.admit(n, member(Role::Observer, &format!("student-{n}"), false))
            .unwrap();
    }
    net.run_until_ready();
    net.send_event(driver, r#"{"type":"request_lease"}"#);
    net.run(5);
    net.clients[robot].control_in.clear();

    let frame = ControlFrame::drive(1, 0, 500, 0, 0);
    net.send_control(driver, &frame.encode());
    let driver_addr = net.clients[driver].addr;
    net.io.arriving = net
        .take_datagrams(driver)
        .into_iter()
        .map(|data| Arrived {
            src: driver_addr,
            data,
        })
        .collect();
    let media = net.robot_audio_datagram(robot, 1);
    net.io.sent.clear();
    net.board.handle_batch(
        net.now,
        &[Arrived {
            src: net.clients[robot].addr,
            data: media,
        }][..],
        &mut net.io,
    );
    assert!(net.io.arriving.is_empty(), "read during the flush");
    // Read after URGENT_EVERY viewers, so it reached the robot before the last viewers' media.
    let robot_addr = net.clients[robot].addr;
    let sent = std::mem::take(&mut net.io.sent);
    let last_media = sent
        .iter()
        .rposition(|(_, d)| PacketKind::of(d).is_media())
        .expect("media sent");
    net.io.sent = sent[..last_media]
        .iter()
        .filter(|(d, _)| *d == robot_addr)
        .cloned()
        .chain(std::iter::once(sent[last_media].clone()))
        .collect();
    let got = net.control_received_before_media(robot);
    assert_eq!(got.len(), 1, "the frame went out inside the flush");
}

#[test]
fn the_cap_refuses_watchers_never_the_robot_or_the_driver() {
    let config = SfuConfig {
        max_viewers_per_worker: 2,
        ..SfuConfig::default()
    };
    let mut net = Net::new(config);
    net.admit(1, member(Role::Observer, "s1", false)).unwrap();
    net.admit(2, member(Role::Doctor, "consultant", false))
        .unwrap();
    // The cap counts connected watchers: sessions still setting up are bounded apart.
    assert_eq!(net.board.watchers(), 0);
    net.run_until_ready();
    assert_eq!(net.board.watchers(), 2);
    assert!(matches!(
        net.admit(3, member(Role::Observer, "s2", false)),
        Err(SfuError::Full(2))
    ));
    assert!(matches!(
        net.admit(4, member(Role::Doctor, "consultant-2", false)),
        Err(SfuError::Full(2))
    ));
    net.admit(5, robot()).expect("the robot is never refused");
    net.admit(6, member(Role::Doctor, "driver", true))
        .expect("the doctor who may drive is never refused");
    net.run_until_ready();
    assert_eq!(net.board.watchers(), 2);
    // A watcher leaving makes room again.
    let first = net.clients[0].id;
    net.board.leave(net.now, first, &mut net.io);
    assert_eq!(net.board.watchers(), 1);
    net.admit(7, member(Role::Observer, "s3", false)).unwrap();
}

#[test]
fn sessions_setting_up_are_bounded_per_token_and_per_worker() {
    let config = SfuConfig {
        max_pending_per_worker: 3,
        max_pending_per_token: 2,
        ..SfuConfig::default()
    };
    let mut net = Net::new(config);
    // One token (one `jti`) used for several offers at once.
    let m = member(Role::Observer, "s", false);
    let token = claims_of(&m);
    let seat = |n: &str| member(Role::Observer, n, false);
    net.admit_with(1, seat("s-1"), token.clone()).unwrap();
    net.admit_with(2, seat("s-2"), token.clone()).unwrap();
    assert!(matches!(
        net.admit_with(3, seat("s-3"), token.clone()),
        Err(SfuError::TooManyPending)
    ));
    net.admit(4, member(Role::Observer, "t", false)).unwrap();
    assert!(matches!(
        net.admit(5, member(Role::Observer, "u", false)),
        Err(SfuError::Busy)
    ));
    // Once they connect they are no longer pending: the same token may set up again.
    net.run_until_ready();
    net.admit_with(6, seat("s-6"), token).unwrap();
}

#[test]
fn a_binding_request_must_be_signed_with_the_sessions_password() {
    let mut net = Net::new(SfuConfig::default());
    net.admit(1, member(Role::Observer, "s", false)).unwrap();
    let ufrag = net.clients[0].server_ufrag.clone();
    let username = format!("{ufrag}:whoever");
    let hmac = str0m::crypto::from_feature_flags().sha1_hmac_provider;
    let forged = str0m::ice::StunMessage::binding_request(
        &username,
        str0m::ice::TransId::new(),
        true,
        7,
        100,
        false,
    );
    let mut buf = vec![0u8; 512];
    let n = forged
        .to_bytes(Some(b"not-the-password"), &mut buf, |k, p| {
            hmac.sha1_hmac(k, p)
        })
        .unwrap();
    net.board
        .handle_datagram(net.now, addr(66), &buf[..n], &mut net.io);
    assert_eq!(net_dropped(&net, "unknown_source"), 1);
    assert_eq!(
        net.board.sessions.sizes(),
        (1, 0, 1, 1),
        "a ufrag alone does not point the session anywhere"
    );
    net.run_until_ready();
    assert_eq!(net.board.sessions.sizes(), (1, 1, 1, 0));
}

#[test]
fn a_deny_ends_the_sessions_it_names_and_only_those() {
    use bedside_proto::node::{Deny, DenyScope, DenyTarget, RevokeReason};
    let mut net = Net::new(SfuConfig::default());
    let robot = net.admit(1, robot()).unwrap();
    let driver = net.admit(2, member(Role::Doctor, "doc", true)).unwrap();
    let student = net
        .admit(3, member(Role::Observer, "student", false))
        .unwrap();
    let other = net
        .admit(
            4,
            Member {
                booking: Some("booking-2".into()),
                ..member(Role::Observer, "other", false)
            },
        )
        .unwrap();
    net.run_until_ready();
    net.send_event(driver, r#"{"type":"request_lease"}"#);
    net.run(5);
    net.clients[robot].control_in.clear();
    let deny = Deny {
        target: DenyTarget::Booking {
            booking: "booking-1".into(),
        },
        scope: DenyScope::Access,
        issued_until: None,
        until: u64::MAX,
        reason: RevokeReason::BookingCancelled,
    };
    net.board.apply_deny(net.now, &deny, &mut net.io);
    net.deliver();
    net.run(3);
    for i in [driver, student] {
        assert!(
            net.clients[i]
                .events_in
                .iter()
                .any(|e| e.contains(r#""code":"booking_cancelled""#)),
            "told why: {:?}",
            net.clients[i].events_in
        );
        assert!(net.board.sessions.get(net.clients[i].id).is_none(), "ended");
    }
    assert!(net.board.sessions.get(net.clients[other].id).is_some());
    assert!(net.board.sessions.get(net.clients[robot].id).is_some());
    // The driver was holding the lease: the robot was told to stop.
    assert!(net.clients[robot].control_in.iter().any(|f| {
        ControlFrame::decode(f).is_ok_and(|f| f.kind == bedside_proto::FrameKind::Stop)
    }));
    let mut reasons = Vec::new();
    while let Some(ev) = net.board.poll_event() {
        if let Event::SessionClosed { reason, .. } = ev {
            reasons.push(reason);
        }
    }
    assert_eq!(reasons, vec!["revoked", "revoked"]);
}

#[test]
fn a_control_deny_takes_the_lease_and_the_right_to_take_it_back() {
    use bedside_proto::node::{Deny, DenyScope, DenyTarget, RevokeReason};
    let mut net = Net::new(SfuConfig::default());
    let _robot = net.admit(1, robot()).unwrap();
    let driver = net.admit(2, member(Role::Doctor, "doc", true)).unwrap();
    net.run_until_ready();
    net.send_event(driver, r#"{"type":"request_lease"}"#);
    net.run(5);
    let room = net.board.room("room-1").unwrap();
    assert_eq!(room.lease_holder(), Some(net.clients[driver].id));
    let deny = Deny {
        target: DenyTarget::Booking {
            booking: "booking-1".into(),
        },
        scope: DenyScope::Control,
        issued_until: None,
        until: u64::MAX,
        reason: RevokeReason::ControlRevoked,
    };
    net.board.apply_deny(net.now, &deny, &mut net.io);
    net.deliver();
    net.run(3);
    assert_eq!(net.board.room("room-1").unwrap().lease_holder(), None);
    net.send_event(driver, r#"{"type":"request_lease"}"#);
    net.run(5);
    assert_eq!(net.board.room("room-1").unwrap().lease_holder(), None);
    let events = &net.clients[driver].events_in;
    assert!(
        events.iter().any(|e| e.contains("control_revoked")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.contains(r#""code":"no_holder""#)),
        "{events:?}"
    );
    assert!(
        net.board.sessions.get(net.clients[driver].id).is_some(),
        "still watching"
    );
}

#[test]
fn removal_leaves_no_entry_in_any_map() {
    let mut net = Net::new(SfuConfig::default());
    let robot = net.admit(1, robot()).unwrap();
    let viewer = net.admit(2, member(Role::Observer, "s", false)).unwrap();
    net.run_until_ready();
    assert_eq!(net.board.sessions.sizes(), (2, 2, 2, 0));
    assert!(
        !net.board.pacers.is_empty(),
        "the room's status pacer exists while it lives"
    );
    for i in [viewer, robot] {
        let id = net.clients[i].id;
        // Left with media routed but not yet flushed: the dirty list must forget it too.
        net.board.dirty.push(id);
        net.board.leave(net.now, id, &mut net.io);
    }
    assert_eq!(net.board.sessions.sizes(), (0, 0, 0, 0));
    assert!(net.board.dirty.is_empty(), "{:?}", net.board.dirty);
    assert!(
        net.board.pacers.is_empty(),
        "the status pacer goes with the room"
    );
    assert!(net.board.room("room-1").is_none(), "the empty room is gone");
    assert_eq!(net.board.watchers(), 0);
    let mut closed = Vec::new();
    while let Some(ev) = net.board.poll_event() {
        if let Event::SessionClosed { key, reason, .. } = ev {
            closed.push((key, reason));
        }
    }
    assert_eq!(closed.len(), 2, "{closed:?}");
    assert!(closed.iter().all(|(_, r)| *r == "goodbye"));

    // A session that never connects is removed by the connect timeout, from every map too.
    let mut net = Net::new(SfuConfig::default());
    net.admit(3, member(Role::Observer, "s", false)).unwrap();
    assert_eq!(net.board.sessions.sizes(), (1, 0, 1, 1));
    let later = net.now + SfuConfig::default().connect_timeout + Duration::from_millis(1);
    net.board.handle_timeout(later, 0, &mut net.io);
    assert_eq!(net.board.sessions.sizes(), (0, 0, 0, 0));
    assert!(net.board.room("room-1").is_none());
    assert!(matches!(
        net.board.poll_event(),
        Some(Event::SessionClosed {
            reason: "connect_timeout",
            ..
        })
    ));
}

#[test]
fn a_silent_holder_is_suspended_then_resumes_with_the_same_epoch() {
    let mut net = Net::new(SfuConfig::default());
    let robot = net.admit(1, robot()).unwrap();
    let driver = net.admit(2, member(Role::Doctor, "doc", true)).unwrap();
    net.run_until_ready();
    net.send_event(driver, r#"{"type":"request_lease"}"#);
    net.run(5);
    let epoch = net.board.room("room-1").unwrap().lease_epoch();
    net.clients[robot].control_in.clear();

    // The driver's link goes down: after the holder's silence timeout the robot is stopped and
    // the lease suspended, same epoch.
    net.clients[driver].silent = true;
    net.run(300);
    assert!(
        !net.board.room("room-1").unwrap().lease_suspended(),
        "3 s: not yet"
    );
    net.run(60);
    let room = net.board.room("room-1").unwrap();
    assert!(room.lease_suspended());
    assert_eq!(room.lease_epoch(), epoch);
    let stops: Vec<ControlFrame> = net.clients[robot]
        .control_in
        .iter()
        .filter_map(|f| ControlFrame::decode(f).ok())
        .collect();
    assert!(
        stops
            .iter()
            .any(|f| f.kind == bedside_proto::FrameKind::Stop && f.epoch == epoch),
        "{stops:?}"
    );
    assert!(net.clients[robot]
        .events_in
        .iter()
        .any(|e| e.contains(r#""reason":"suspended""#)));

    // Back within the grace period: the same lease, the same epoch, and it drives again.
    net.clients[driver].silent = false;
    net.run(100);
    let room = net.board.room("room-1").unwrap();
    assert!(!room.lease_suspended());
    assert_eq!(room.lease_holder(), Some(net.clients[driver].id));
    assert_eq!(room.lease_epoch(), epoch);
    assert!(net.clients[driver]
        .events_in
        .iter()
        .any(|e| e.contains(r#""reason":"resumed""#)));
    net.clients[robot].control_in.clear();
    net.send_control(driver, &ControlFrame::drive(500, 0, 700, 0, 0).encode());
    net.run(5);
    assert!(net.clients[robot]
        .control_in
        .iter()
        .filter_map(|f| ControlFrame::decode(f).ok())
        .any(|f| f.linear_x == 700 && f.epoch == epoch));
}

#[test]
fn silence_past_the_grace_period_ends_the_lease_and_the_session() {
    let mut net = Net::new(SfuConfig::default());
    let robot = net.admit(1, robot()).unwrap();
    let driver = net.admit(2, member(Role::Doctor, "doc", true)).unwrap();
    let student = net.admit(3, member(Role::Observer, "s", false)).unwrap();
    net.run_until_ready();
    net.send_event(driver, r#"{"type":"request_lease"}"#);
    net.run(5);
    let epoch = net.board.room("room-1").unwrap().lease_epoch();
    net.clients[driver].silent = true;
    net.clients[student].silent = true;
    net.run(900);
    assert!(
        net.board.sessions.get(net.clients[student].id).is_none(),
        "a silent student is gone after 8 s"
    );
    assert!(
        net.board.sessions.get(net.clients[driver].id).is_some(),
        "the holder: still in grace"
    );
    net.run(500);
    let room = net.board.room("room-1").unwrap();
    assert_eq!(room.lease_holder(), None);
    assert_eq!(room.lease_epoch(), epoch + 1);
    assert!(net.board.sessions.get(net.clients[driver].id).is_none());
    assert!(net.clients[robot]
        .events_in
        .iter()
        .any(|e| e.contains(r#""reason":"disconnected""#)));
    let mut reasons = Vec::new();
    while let Some(ev) = net.board.poll_event() {
        if let Event::SessionClosed { reason, .. } = ev {
            reasons.push(reason);
        }
    }
    assert_eq!(reasons, vec!["silent", "silent"]);
    // A silent robot is gone after 3 s.
    net.clients[robot].silent = true;
    net.run(310);
    assert!(net.board.sessions.get(net.clients[robot].id).is_none());
}

#[test]
fn each_session_reports_how_it_reaches_the_node() {
    // Client 3 comes through a TURN relay at 10.0.1.3: the node is told the relay's address.
    let mut net = Net::new(SfuConfig {
        relay_ips: vec![addr(3).ip()],
        ..SfuConfig::default()
    });
    let robot = net.admit(1, robot()).unwrap();
    let driver = net.admit(2, member(Role::Doctor, "doc", true)).unwrap();
    let relayed = net
        .admit(3, member(Role::Doctor, "consult", false))
        .unwrap();
    net.run_until_ready();
    net.run(5);
    let transports = net.board.metrics.transports.clone();
    let gauge = |t: &str| transports.with_label_values(&[t]).get();
    assert_eq!((gauge("udp"), gauge("relay"), gauge("tcp")), (2, 1, 0));
    assert_eq!(
        net.board.transport(net.clients[robot].id),
        Some(Transport::Udp)
    );
    assert_eq!(
        net.board.transport(net.clients[relayed].id),
        Some(Transport::Relay)
    );
    // The driver learns it from the newcomer's `joined` (or its own presence list).
    let relayed_id = net.clients[relayed].id.to_string();
    let seen = net.clients[driver].events_in.iter().any(|e| {
        let v: serde_json::Value = serde_json::from_str(e).unwrap_or_default();
        let p = &v["participant"];
        v["type"] == "joined" && p["id"] == relayed_id.as_str() && p["transport"] == "relay"
    });
    assert!(seen, "{:?}", net.clients[driver].events_in);
    // Leaving takes it off the gauge.
    let id = net.clients[relayed].id.to_string();
    assert!(net.board.end_session(net.now, "room-1", &id, &mut net.io));
    assert_eq!(gauge("relay"), 0);
    assert_eq!(gauge("udp"), 2);
}

/// The room statuses the switchboard emitted since the last call.
fn statuses(net: &mut Net) -> Vec<bedside_proto::node::RoomStatus> {
    let mut out = Vec::new();
    while let Some(ev) = net.board.poll_event() {
        if let Event::Status(s) = ev {
            out.push(s);
        }
    }
    out
}

#[test]
fn rooms_report_their_status_on_change_at_most_once_a_second_and_closed_at_the_end() {
    let mut net = Net::new(SfuConfig {
        node_id: "node-7".into(),
        ..SfuConfig::default()
    });
    let robot = net.admit(1, robot()).unwrap();
    let doc = net.admit(2, member(Role::Doctor, "doc", true)).unwrap();
    let start = net.now;
    net.run_until_ready();
    net.run(120);
    let seen = statuses(&mut net);
    let last = seen.last().expect("a status");
    assert_eq!(
        (last.room.as_str(), last.node.as_str()),
        ("room-1", "node-7")
    );
    assert!(last.robot_online);
    assert_eq!(last.participants.len(), 2);
    let elapsed = net.now.saturating_duration_since(start).as_secs_f64();
    assert!(
        (seen.len() as f64) <= elapsed.ceil() + 1.0,
        "{} statuses in {elapsed:.1} s",
        seen.len()
    );

    // Ended: the next status (within a second) no longer lists the doctor.
    let id = net.clients[doc].id.to_string();
    assert!(net.board.end_session(net.now, "room-1", &id, &mut net.io));
    net.run(101);
    let after = statuses(&mut net);
    let last = after.last().expect("a status after the change");
    assert_eq!(last.participants.len(), 1);
    assert_eq!(last.participants[0].role, Role::Robot);

    // Nothing changes: nothing is sent until the refresh (10 s).
    net.run(300);
    assert!(statuses(&mut net).is_empty(), "3 s of nothing");

    // The robot leaves: the room empties and says so at once.
    let rid = net.clients[robot].id;
    net.board.leave(net.now, rid, &mut net.io);
    let closed = statuses(&mut net);
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert!(closed[0].closed && !closed[0].robot_online);
    assert!(closed[0].participants.is_empty());
}

/// Admit an offer for `m` into `room` that never does ICE (a flooder's): the session's id, or
/// why it was refused.
fn admit_pending_in(net: &mut Net, room: &str, m: Member) -> Result<SessionId, SfuError> {
    let endpoint = if m.role == Role::Robot {
        Endpoint::Whip
    } else {
        Endpoint::Whep
    };
    let o = Offering::new(addr(200), endpoint, net.now).expect("offer");
    let id = SessionId(net.next_id);
    net.next_id += 1;
    let cert = str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate()
        .expect("cert");
    let accepted = Peer::accept(
        PeerSetup {
            id,
            room: room.into(),
            role: m.role,
            candidate: SERVER,
            tcp_candidate: None,
            cert: &cert,
            now: net.now,
        },
        &o.offer.to_sdp_string(),
    )
    .expect("answer");
    let mut claims = claims_of(&m);
    claims.room = room.to_string();
    net.board.admit(
        net.now,
        Admit {
            accepted,
            key: format!("key-{}", id.0),
            member: m,
            claims,
        },
    )
}

#[test]
fn a_flood_into_one_room_leaves_pending_slots_for_the_others() {
    let config = SfuConfig {
        max_pending_per_worker: 6,
        max_pending_per_room: 3,
        ..SfuConfig::default()
    };
    let mut net = Net::new(config);
    // Many tokens (a fresh `jti` each) of one room, none ever doing ICE.
    let flooder = |i: usize| member(Role::Observer, &format!("flood-{i}"), false);
    for i in 0..3 {
        admit_pending_in(&mut net, "flooded", flooder(i)).expect("under the room's bound");
    }
    for i in 3..10 {
        assert!(
            matches!(
                admit_pending_in(&mut net, "flooded", flooder(i)),
                Err(SfuError::Busy)
            ),
            "offer {i} into the flooded room is refused"
        );
    }
    // The other rooms on the worker still get their pending slots, up to the worker's bound.
    let consultant = admit_pending_in(&mut net, "consult", member(Role::Doctor, "c", false))
        .expect("another room's doctor is not locked out by the flood");
    for i in 0..2 {
        admit_pending_in(&mut net, &format!("ward-{i}"), flooder(100 + i)).unwrap();
    }
    assert!(matches!(
        admit_pending_in(&mut net, "ward-9", flooder(200)),
        Err(SfuError::Busy)
    ));
    // A pending session that goes away gives its room's slot back, and nothing is left behind.
    net.board.leave(net.now, consultant, &mut net.io);
    admit_pending_in(&mut net, "consult", member(Role::Doctor, "c2", false)).unwrap();
    let ids: Vec<SessionId> = net.board.sessions.iter().map(|s| s.peer.id()).collect();
    for id in ids {
        net.board.leave(net.now, id, &mut net.io);
    }
    assert_eq!(net.board.sessions.pending_rooms(), 0);
    assert_eq!(net.board.sessions.sizes(), (0, 0, 0, 0));
}

#[test]
fn a_flooded_room_still_takes_back_its_robot_and_its_driver() {
    let config = SfuConfig {
        max_pending_per_worker: 4,
        max_pending_per_room: 3,
        max_pending_per_token: 2,
        ..SfuConfig::default()
    };
    let mut net = Net::new(config);
    let flooder = |i: usize| member(Role::Observer, &format!("flood-{i}"), false);
    for i in 0..3 {
        admit_pending_in(&mut net, "flooded", flooder(i)).expect("under the room's bound");
    }
    admit_pending_in(&mut net, "other", flooder(3)).expect("under the worker's bound");
    // The room and the worker are full of sessions that will never connect: a watcher is
    // refused, but the room's robot (reconnecting) and the doctor who may drive are not.
    assert!(matches!(
        admit_pending_in(&mut net, "flooded", flooder(4)),
        Err(SfuError::Busy)
    ));
    admit_pending_in(&mut net, "flooded", robot())
        .expect("the robot comes back to its room through a flood");
    admit_pending_in(&mut net, "flooded", member(Role::Doctor, "driver", true))
        .expect("the driver joins through a flood");
    // A consultant (a doctor who may not drive) is a watcher: refused like the students.
    assert!(matches!(
        admit_pending_in(
            &mut net,
            "flooded",
            member(Role::Doctor, "consultant", false)
        ),
        Err(SfuError::Busy)
    ));
}

#[test]
fn the_shell_does_not_sleep_past_a_timer_a_room_event_just_set() {
    // The e-stop's repeated stop frames (and a switched slot's keyframe retries) are room
    // timers set while handling a datagram: the wake the shell sleeps on must include them,
    // not only what the last timeout pass knew.
    let mut net = Net::new(SfuConfig::default());
    net.admit(1, robot()).unwrap();
    let driver = net.admit(2, member(Role::Doctor, "doc", true)).unwrap();
    net.run_until_ready();
    net.send_event(driver, r#"{"type":"request_lease"}"#);
    net.run(5);
    // Idle long enough that every peer's next timer is far off, then one timeout pass.
    for _ in 0..50 {
        net.run(1);
    }
    net.board.handle_timeout(net.now, 0, &mut net.io);
    let slept_until = net.board.poll_timeout();
    net.send_event(driver, r#"{"type":"estop"}"#);
    for (src, data) in net.poll_clients() {
        net.board.handle_datagram(net.now, src, &data, &mut net.io);
    }
    let room = net.board.room("room-1").unwrap();
    assert!(room.estop_latched(), "the e-stop reached the room");
    let repeat = room.next_deadline().0.expect("a stop repeat is due");
    assert!(
        repeat < slept_until,
        "the test needs a repeat earlier than the old wake ({:?} vs {:?})",
        repeat - net.now,
        slept_until - net.now
    );
    assert!(
        net.board.poll_timeout() <= repeat,
        "the shell wakes for the stop repeat in {:?}, not {:?}",
        repeat - net.now,
        net.board.poll_timeout() - net.now
    );
}
