//! The joystick control frame: 24 bytes, little-endian, versioned.
//!
//! Sent by the lease holder on the `control` data channel (unordered, no retransmits), forwarded
//! by the SFU to the robot with the current lease epoch stamped in. The SFU also originates
//! `Stop` frames on every lease change and e-stop latch. The byte layout, the drop reasons and the
//! robot's rules are in the [crate docs](crate#control-frame), the one specification the web
//! client (`web/js/`) and the robot agent are written against.
//!
//! This module only encodes and decodes; deciding whether a frame may pass is the SFU's job.

use thiserror::Error;

/// Encoded size of every frame. Anything else is malformed.
pub const FRAME_LEN: usize = 24;
/// The only version this build speaks.
pub const VERSION: u8 = 1;

/// What a frame asks the robot to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Drive with the given axes (all zero means "hold still", sent on release).
    Drive,
    /// Stop now. Originated by the SFU on every lease change and e-stop latch; axes are zero.
    Stop,
}

impl FrameKind {
    fn to_u8(self) -> u8 {
        match self {
            FrameKind::Drive => 1,
            FrameKind::Stop => 2,
        }
    }

    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(FrameKind::Drive),
            2 => Some(FrameKind::Stop),
            _ => None,
        }
    }
}

/// One decoded control frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlFrame {
    /// Clients may send only [`FrameKind::Drive`]; stops come from the SFU.
    pub kind: FrameKind,
    /// The lease epoch the frame belongs to. Senders may leave it 0: the SFU stamps the
    /// current epoch, so a frame can never claim a lease its sender no longer holds.
    pub epoch: u32,
    /// Strictly increasing per sender within an epoch; the SFU and the robot drop anything
    /// not newer.
    pub seq: u32,
    /// The sender's clock in ms, wrapping. Informational: nobody orders or drops by it.
    pub timestamp_ms: u32,
    /// Forward positive; the robot maps the i16 range to its own speeds.
    pub linear_x: i16,
    /// Left positive.
    pub linear_y: i16,
    /// Counter-clockwise positive.
    pub angular_z: i16,
    /// Bit field defined by the robot. Non-zero counts as motion while the e-stop is latched
    /// (a button may start docking).
    pub buttons: u16,
}

/// Why bytes are not a frame. The SFU counts drops by [`FrameError::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Not exactly [`FRAME_LEN`] bytes (the length it had).
    #[error("control frame must be {FRAME_LEN} bytes, got {0}")]
    WrongSize(usize),
    /// A version byte other than [`VERSION`]: a newer client against an older server.
    #[error("unsupported control frame version {0}")]
    Version(u8),
    /// A kind byte that is neither drive nor stop.
    #[error("unknown control frame kind {0}")]
    Kind(u8),
    /// Reserved flag bits set: refused so the bits stay free for a future meaning.
    #[error("reserved flags must be zero")]
    Flags,
}

impl FrameError {
    /// Stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::WrongSize(_) => "wrong_size",
            FrameError::Version(_) => "bad_version",
            FrameError::Kind(_) => "bad_kind",
            FrameError::Flags => "bad_flags",
        }
    }
}

impl ControlFrame {
    /// A drive frame; epoch is left 0 for the SFU to stamp.
    pub fn drive(
        seq: u32,
        timestamp_ms: u32,
        linear_x: i16,
        linear_y: i16,
        angular_z: i16,
    ) -> Self {
        ControlFrame {
            kind: FrameKind::Drive,
            epoch: 0,
            seq,
            timestamp_ms,
            linear_x,
            linear_y,
            angular_z,
            buttons: 0,
        }
    }

    /// A stop frame for the given epoch.
    pub fn stop(epoch: u32, seq: u32, timestamp_ms: u32) -> Self {
        ControlFrame {
            kind: FrameKind::Stop,
            epoch,
            seq,
            timestamp_ms,
            linear_x: 0,
            linear_y: 0,
            angular_z: 0,
            buttons: 0,
        }
    }

    /// True when the frame asks for no motion.
    pub fn is_still(&self) -> bool {
        self.kind == FrameKind::Stop
            || (self.linear_x == 0 && self.linear_y == 0 && self.angular_z == 0)
    }

    /// The wire bytes. Flags are always written as zero.
    pub fn encode(&self) -> [u8; FRAME_LEN] {
        let mut b = [0u8; FRAME_LEN];
        b[0] = VERSION;
        b[1] = self.kind.to_u8();
        // b[2..4] flags stay zero.
        b[4..8].copy_from_slice(&self.epoch.to_le_bytes());
        b[8..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..16].copy_from_slice(&self.timestamp_ms.to_le_bytes());
        b[16..18].copy_from_slice(&self.linear_x.to_le_bytes());
        b[18..20].copy_from_slice(&self.linear_y.to_le_bytes());
        b[20..22].copy_from_slice(&self.angular_z.to_le_bytes());
        b[22..24].copy_from_slice(&self.buttons.to_le_bytes());
        b
    }

    /// Decode untrusted bytes. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let b: &[u8; FRAME_LEN] = bytes
            .try_into()
            .map_err(|_| FrameError::WrongSize(bytes.len()))?;
        if b[0] != VERSION {
            return Err(FrameError::Version(b[0]));
        }
        let kind = FrameKind::from_u8(b[1]).ok_or(FrameError::Kind(b[1]))?;
        if b[2] != 0 || b[3] != 0 {
            return Err(FrameError::Flags);
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let i16_at = |i: usize| i16::from_le_bytes([b[i], b[i + 1]]);
        Ok(ControlFrame {
            kind,
            epoch: u32_at(4),
            seq: u32_at(8),
            timestamp_ms: u32_at(12),
            linear_x: i16_at(16),
            linear_y: i16_at(18),
            angular_z: i16_at(20),
            buttons: u16::from_le_bytes([b[22], b[23]]),
        })
    }

    /// Rewrite the epoch field of an already-encoded frame in place (the SFU's stamp).
    pub fn stamp_epoch(encoded: &mut [u8; FRAME_LEN], epoch: u32) {
        encoded[4..8].copy_from_slice(&epoch.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_as_documented() {
        let f = ControlFrame {
            kind: FrameKind::Drive,
            epoch: 0x0403_0201,
            seq: 7,
            timestamp_ms: 9,
            linear_x: -1,
            linear_y: 2,
            angular_z: 3,
            buttons: 0x8001,
        };
        let b = f.encode();
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 1);
        assert_eq!(&b[4..8], &[1, 2, 3, 4]);
        assert_eq!(&b[16..18], &[0xff, 0xff]);
        assert_eq!(&b[22..24], &[0x01, 0x80]);
    }

    #[test]
    fn rejects_bad_input_with_reason() {
        assert_eq!(ControlFrame::decode(&[]), Err(FrameError::WrongSize(0)));
        assert_eq!(
            ControlFrame::decode(&[1; 25]).unwrap_err().reason(),
            "wrong_size"
        );
        let mut b = ControlFrame::drive(1, 1, 0, 0, 0).encode();
        b[0] = 9;
        assert_eq!(ControlFrame::decode(&b), Err(FrameError::Version(9)));
        b[0] = 1;
        b[1] = 0;
        assert_eq!(ControlFrame::decode(&b), Err(FrameError::Kind(0)));
        b[1] = 1;
        b[3] = 1;
        assert_eq!(ControlFrame::decode(&b), Err(FrameError::Flags));
    }

    #[test]
    fn stamp_epoch_changes_only_epoch() {
        let f = ControlFrame::drive(5, 6, 100, -100, 50);
        let mut b = f.encode();
        ControlFrame::stamp_epoch(&mut b, 42);
        let g = ControlFrame::decode(&b).unwrap();
        assert_eq!(g, ControlFrame { epoch: 42, ..f });
    }

    proptest! {
        #[test]
        fn roundtrip(seq: u32, ts: u32, epoch: u32, x: i16, y: i16, z: i16, buttons: u16, stop: bool) {
            let f = ControlFrame {
                kind: if stop { FrameKind::Stop } else { FrameKind::Drive },
                epoch, seq, timestamp_ms: ts, linear_x: x, linear_y: y, angular_z: z, buttons,
            };
            prop_assert_eq!(ControlFrame::decode(&f.encode()), Ok(f));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ControlFrame::decode(&bytes);
        }
    }
}
