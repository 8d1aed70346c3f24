//! What the robot shows and plays: the slots it receives (the driving doctor's camera, the
//! doctors' voices) handed to the robot's own screen and speaker as plain RTP on local UDP
//! ports, described by an SDP file that `ffplay`, `ffmpeg` or GStreamer opens.
//!
//! `bedside robot --media-out 127.0.0.1:5004 --media-sdp /run/bedside/screen.sdp` sends the
//! presenter video to port 5004 and audio slot *n* to port 5006 + 2*n* (RTP/AVP, one port per
//! stream as RFC 3551 players expect; RTCP is not sent), and writes the SDP file once the
//! session is negotiated (the payload types are the ones negotiated with the server). Then, on
//! the robot:
//!
//! ```sh
//! ffplay -protocol_whitelist file,udp,rtp -i /run/bedside/screen.sdp
//! ```
//!
//! The SFU keeps each slot one continuous stream (one SSRC, continuous sequence numbers and
//! timestamps) while the doctor behind it changes, so a player never sees a new stream. Header
//! extensions are dropped; the decrypted payload is sent as it arrived.
//!
//! Not here: receiving or decrypting (the WebRTC client), or control frames (the watchdog).

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::rtp::RtpPacket;

/// Where the robot's screen and speaker listen.
#[derive(Debug, Clone)]
pub struct ScreenOptions {
    /// The presenter video goes here; audio slot n to the same host, port + 2 + 2n.
    pub addr: SocketAddr,
    /// Where to write the SDP file describing the streams.
    pub sdp: Option<PathBuf>,
}

/// How many doctors' voices the robot offers to receive (audio slots).
pub const AUDIO_SLOTS: usize = 3;

/// The slots of one session, mapped to local ports.
pub struct Screen {
    socket: UdpSocket,
    /// (our receive-only m-line, where its packets go, payload kind).
    routes: Vec<(Mid, SocketAddr, MediaKind)>,
    sent: u64,
}

impl Screen {
    /// Map this session's receive-only m-lines (`lines` in order) to ports, and write the SDP
    /// file with the negotiated payload types (`codecs`).
    pub fn new(
        opts: &ScreenOptions,
        lines: &[(Mid, MediaKind, Direction)],
        codecs: &[PayloadParams],
    ) -> std::io::Result<Screen> {
        let bind = if opts.addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        let mut routes = Vec::new();
        let mut audio = 0u16;
        for (mid, kind, dir) in lines {
            if *dir != Direction::RecvOnly {
                continue;
            }
            let port = match kind {
                MediaKind::Video if !routes.iter().any(|(_, _, k)| *k == MediaKind::Video) => {
                    opts.addr.port()
                }
                MediaKind::Audio => {
                    audio += 1;
                    opts.addr.port().wrapping_add(2 * audio)
                }
                // Only the presenter is shown.
                MediaKind::Video => continue,
            };
            routes.push((*mid, SocketAddr::new(opts.addr.ip(), port), *kind));
        }
        if let Some(path) = &opts.sdp {
            write_sdp(path, &routes, codecs)?;
        }
        Ok(Screen {
            socket,
            routes,
            sent: 0,
        })
    }

    /// A packet received on `mid`: forward it if it is a slot we show or play.
    pub fn forward(&mut self, mid: Mid, packet: &RtpPacket) {
        let Some((_, to, _)) = self.routes.iter().find(|(m, _, _)| *m == mid) else {
            return;
        };
        let datagram = plain_rtp(packet);
        // A full socket buffer or a player that is not listening yet: lost, like on the wire.
        if self.socket.send_to(&datagram, to).is_ok() {
            self.sent += 1;
        }
    }

    /// Packets handed to the screen and speaker so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

/// The packet as plain RTP: the 12-byte header (no extensions, no CSRCs) and the payload.
fn plain_rtp(p: &RtpPacket) -> Vec<u8> {
    rtp_datagram(
        p.header.marker,
        *p.header.payload_type,
        *p.seq_no as u16,
        p.header.timestamp,
        *p.header.ssrc,
        &p.payload,
    )
}

fn rtp_datagram(marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + payload.len());
    v.push(0x80);
    v.push((u8::from(marker) << 7) | (pt & 0x7f));
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn write_sdp(
    path: &Path,
    routes: &[(Mid, SocketAddr, MediaKind)],
    codecs: &[PayloadParams],
) -> std::io::Result<()> {
    let ip = routes
        .first()
        .map(|(_, a, _)| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut sdp = format!(
        "v=0\r\no=- 0 0 IN {family} {ip}\r\ns=Bedside robot screen\r\nc=IN {family} {ip}\r\nt=0 0\r\n"
    );
    for (_, addr, kind) in routes {
        let (media, want) = match kind {
            MediaKind::Video => ("video", MediaKind::Video),
            MediaKind::Audio => ("audio", MediaKind::Audio),
        };
        // One payload type per stream: players decode every packet of a stream with one
        // codec (ffmpeg takes the last one listed). Doctors' browsers send VP8; H.264 only if
        // the server negotiated no VP8.
        let pick = |codec: Codec| codecs.iter().find(|c| c.spec().codec == codec);
        let chosen = match want {
            MediaKind::Audio => pick(Codec::Opus),
            MediaKind::Video => pick(Codec::Vp8).or_else(|| pick(Codec::H264)),
        };
        let Some(c) = chosen else {
            continue;
        };
        sdp.push_str(&format!(
            "m={media} {} RTP/AVP {}\r\n",
            addr.port(),
            *c.pt()
        ));
        let spec = c.spec();
        let name = match spec.codec {
            Codec::Opus => "opus",
            Codec::Vp8 => "VP8",
            _ => "H264",
        };
        let channels = spec.channels.map(|n| format!("/{n}")).unwrap_or_default();
        sdp.push_str(&format!(
            "a=rtpmap:{} {name}/{}{channels}\r\n",
            *c.pt(),
            spec.clock_rate.get()
        ));
        if spec.codec == Codec::H264 {
            sdp.push_str(&format!(
                "a=fmtp:{} packetization-mode={}\r\n",
                *c.pt(),
                spec.format.packetization_mode.unwrap_or(0)
            ));
        }
        sdp.push_str("a=recvonly\r\n");
    }
    std::fs::write(path, sdp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rtp_keeps_the_header_fields_and_the_payload() {
        let d = rtp_datagram(
            true,
            96,
            70_000u64 as u16,
            0x0102_0304,
            0xdead_beef,
            &[9, 8, 7],
        );
        assert_eq!(d[0], 0x80);
        assert_eq!(d[1], 0x80 | 96);
        assert_eq!(u16::from_be_bytes([d[2], d[3]]), (70_000u64 as u16));
        assert_eq!(&d[4..8], &[1, 2, 3, 4]);
        assert_eq!(&d[8..12], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&d[12..], &[9, 8, 7]);
    }
}
