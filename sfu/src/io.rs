//! What the sans-IO switchboard asks of the shell around it: send datagrams, and in the middle
//! of a long pass, read what has arrived since.
//!
//! The worker implements [`Io`] over its UDP socket (with GSO batching behind [`Io::gather`]);
//! the switchboard's unit tests implement it over plain vectors. Keeping this a trait rather
//! than a queue of outputs keeps what the benchmark bought: a viewer's datagrams of one flush
//! leave in one GSO send without being copied into a queue first, and a joystick frame that
//! arrives while a 500-viewer flush is running is read and forwarded before the flush ends.
//!
//! Not here: deciding what to send or when to read (the switchboard), or sockets (the worker).

use std::net::SocketAddr;

use str0m::net::Transmit;

/// A datagram read in the middle of a pass, owned because the read buffers are the shell's.
#[derive(Debug, Clone)]
pub struct Arrived {
    /// Who sent it.
    pub src: SocketAddr,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// The shell's side of the switchboard. See the module docs.
pub trait Io {
    /// Send one datagram now (control frames, events, handshakes, reports).
    fn send(&mut self, t: &Transmit);
    /// Send one datagram of a viewer's flush: it may be held back to leave with the next ones
    /// to the same destination (one GSO send), at the latest on [`Io::flush`].
    fn gather(&mut self, t: &Transmit);
    /// Send whatever [`Io::gather`] holds.
    fn flush(&mut self);
    /// Append the datagrams that arrived since the last read, without waiting.
    fn read_now(&mut self, out: &mut Vec<Arrived>);
}
