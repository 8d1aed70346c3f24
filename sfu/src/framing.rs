//! RFC 4571 framing: how RTP, RTCP, STUN and DTLS packets travel over a TCP connection (ICE-TCP):
//! each packet preceded by its length as a 16-bit big-endian number.
//!
//! Used by the node's ICE-TCP listener and by the client's ICE-TCP transport.
//!
//! Not here: connections or what a packet means.

use tokio::io::AsyncReadExt;

/// The largest frame accepted (an Ethernet MTU's worth is plenty; RFC 4571 allows 65,535).
pub const MAX_FRAME: usize = 1500;

/// `packet` with its length in front, or `None` if it is too long to frame.
pub fn encode(packet: &[u8]) -> Option<Vec<u8>> {
    let n = u16::try_from(packet.len()).ok()?;
    let mut out = Vec::with_capacity(packet.len() + 2);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(packet);
    Some(out)
}

/// One frame, or `None` at the end of the stream. A zero or oversized length is an error: the
/// connection is not speaking RFC 4571.
pub async fn read_frame(rd: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = usize::from(u16::from_be_bytes(len));
    if n == 0 || n > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "ICE-TCP frame length out of range",
        ));
    }
    let mut buf = vec![0u8; n];
    rd.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_lengths_are_refused() {
        let mut stream: Vec<u8> = Vec::new();
        stream.extend(encode(b"hello").unwrap());
        stream.extend(encode(&[7u8; 1500]).unwrap());
        let mut rd = &stream[..];
        assert_eq!(read_frame(&mut rd).await.unwrap().unwrap(), b"hello");
        assert_eq!(read_frame(&mut rd).await.unwrap().unwrap().len(), 1500);
        assert!(
            read_frame(&mut rd).await.unwrap().is_none(),
            "end of stream"
        );
        let mut zero = &[0u8, 0][..];
        assert!(read_frame(&mut zero).await.is_err());
        let mut huge = &[0xffu8, 0xff, 1, 2][..];
        assert!(read_frame(&mut huge).await.is_err());
        let mut cut = &[0u8, 5, 1, 2][..];
        assert!(read_frame(&mut cut).await.is_err(), "a frame cut short");
        assert!(encode(&vec![0u8; 70_000]).is_none());
    }
}
