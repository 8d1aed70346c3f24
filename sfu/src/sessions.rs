//! The session table of one worker: every peer, and the indexes that find one from a datagram.
//!
//! A datagram from a known remote address goes to the session seen at that address. A datagram
//! from a new address is looked at only if it is a STUN binding request whose username names one
//! of our sessions' ICE ufrags; only then is the address learnt (see the switchboard). Keeping
//! the peers and their indexes in one struct means one `remove` clears a session from all of
//! them: a stale index entry would route a stranger's datagrams into a dead session, or worse,
//! a live one.
//!
//! Not here: what a session may do (its room) or what to do with its outputs (the switchboard).

use std::collections::HashMap;
use std::net::SocketAddr;

use str0m::ice::StunMessage;

use crate::peer::Peer;
use crate::room::Member;
use crate::SessionId;

/// One session and what the table knows about it besides its `Rtc`.
pub(crate) struct Session {
    pub peer: Peer,
    /// The secret of its `Location: /sessions/{key}` URL.
    pub key: String,
    ufrag: String,
    addrs: Vec<SocketAddr>,
    /// Admitted by token, joined to its room once ICE and DTLS complete.
    pending: Option<Member>,
    /// Counted against the worker's viewer cap.
    capped: bool,
    /// RTP was written and awaits the end-of-batch flush.
    dirty: bool,
}

impl Session {
    /// Take the member admitted with this session (once: on connect).
    pub fn take_pending(&mut self) -> Option<Member> {
        self.pending.take()
    }

    /// Mark RTP written; true if it was not already marked (the caller lists it once).
    pub fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    pub fn clear_dirty(&mut self) {
        self.dirty = false;
    }
}

/// How a datagram's sender was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// From an address this session was seen at.
    Known(SessionId),
    /// A STUN binding request from a new address, naming this session's ufrag.
    Stun(SessionId),
    /// Neither: drop it without touching any session.
    Unknown,
}

#[derive(Default)]
pub(crate) struct Sessions {
    map: HashMap<SessionId, Session>,
    by_addr: HashMap<SocketAddr, SessionId>,
    by_ufrag: HashMap<String, SessionId>,
    capped: usize,
}

impl Sessions {
    pub fn insert(
        &mut self,
        peer: Peer,
        key: String,
        ufrag: String,
        member: Member,
        capped: bool,
    ) -> SessionId {
        let id = peer.id();
        self.by_ufrag.insert(ufrag.clone(), id);
        self.capped += usize::from(capped);
        self.map.insert(
            id,
            Session {
                peer,
                key,
                ufrag,
                addrs: Vec::new(),
                pending: Some(member),
                capped,
                dirty: false,
            },
        );
        id
    }

    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.map.get(&id)
    }

    pub fn get_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.map.get_mut(&id)
    }

    pub fn peer_mut(&mut self, id: SessionId) -> Option<&mut Peer> {
        self.map.get_mut(&id).map(|s| &mut s.peer)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.map.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.map.values_mut()
    }

    /// Sessions counted against the viewer cap.
    pub fn capped(&self) -> usize {
        self.capped
    }

    /// Does any session (connected or not) belong to `room`?
    pub fn any_in_room(&self, room: &str) -> bool {
        self.map.values().any(|s| &**s.peer.room() == room)
    }

    /// Who sent this datagram (see [`Lookup`]).
    pub fn find(&self, src: SocketAddr, data: &[u8]) -> Lookup {
        if let Some(id) = self.by_addr.get(&src) {
            return Lookup::Known(*id);
        }
        match self.by_stun_username(data) {
            Some(id) => Lookup::Stun(id),
            None => Lookup::Unknown,
        }
    }

    fn by_stun_username(&self, data: &[u8]) -> Option<SessionId> {
        let msg = StunMessage::parse(data).ok()?;
        if !msg.is_binding_request() {
            return None;
        }
        let (local, _remote) = msg.split_username()?;
        self.by_ufrag.get(local).copied()
    }

    /// Route datagrams from `src` to session `id` from now on.
    pub fn learn(&mut self, id: SessionId, src: SocketAddr) {
        if !self.map.contains_key(&id) {
            return;
        }
        if let Some(old) = self.by_addr.insert(src, id) {
            if old != id {
                // The address moved to another session (a client reusing a port): the old
                // session no longer owns it.
                if let Some(o) = self.map.get_mut(&old) {
                    o.addrs.retain(|a| *a != src);
                }
            }
        }
        if let Some(s) = self.map.get_mut(&id) {
            if !s.addrs.contains(&src) {
                s.addrs.push(src);
            }
        }
    }

    /// Take a session out of the table and every index.
    pub fn remove(&mut self, id: SessionId) -> Option<Session> {
        let s = self.map.remove(&id)?;
        for a in &s.addrs {
            if self.by_addr.get(a) == Some(&id) {
                self.by_addr.remove(a);
            }
        }
        if self.by_ufrag.get(&s.ufrag) == Some(&id) {
            self.by_ufrag.remove(&s.ufrag);
        }
        self.capped -= usize::from(s.capped);
        Some(s)
    }

    /// Entries in (sessions, address index, ufrag index), for tests of the invariants.
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.map.len(), self.by_addr.len(), self.by_ufrag.len())
    }
}
