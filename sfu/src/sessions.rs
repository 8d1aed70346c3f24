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
use std::sync::Arc;
use std::time::Instant;

use bedside_proto::events::Transport;
use bedside_proto::Claims;
use str0m::ice::StunMessage;
use str0m::net::Protocol;

use crate::peer::Peer;
use crate::room::Member;
use crate::SessionId;

/// Remote addresses one session may be known at (a client's candidates, a roam). Past it the
/// oldest is forgotten: a peer cannot grow the address map without bound.
pub const MAX_ADDRS_PER_SESSION: usize = 4;

/// One session and what the table knows about it besides its `Rtc`.
pub(crate) struct Session {
    pub peer: Peer,
    /// The secret of its `Location: /sessions/{key}` URL.
    pub key: String,
    /// The join token's claims: what deny entries are matched against.
    pub claims: Claims,
    /// Its current ICE ufrag.
    pub ufrag: String,
    /// Our ICE password for this session: a binding request must be signed with it.
    pass: String,
    /// Where it was seen: UDP addresses, or ICE-TCP connections (by their remote address).
    addrs: Vec<(Protocol, SocketAddr)>,
    /// Admitted by token, joined to its room once ICE and DTLS complete.
    pending: Option<Member>,
    /// A watcher (counted against the viewer cap once connected).
    watcher: bool,
    /// RTP was written and awaits the end-of-batch flush.
    dirty: bool,
    /// When the last datagram from it arrived (silence detection).
    pub last_heard: Instant,
    /// Its lease was suspended for silence.
    pub suspended: bool,
    /// Where its last packet other than a connectivity check came from: its selected path.
    pub path: Option<(Protocol, SocketAddr)>,
    /// What kind of path that is (see `Switchboard::heard_from`).
    pub transport: Option<Transport>,
}

impl Session {
    /// Take the member admitted with this session (once: on connect).
    fn take_pending(&mut self) -> Option<Member> {
        self.pending.take()
    }

    /// Still setting up (ICE and DTLS not done).
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
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

/// What [`Sessions::insert`] needs besides the peer.
pub(crate) struct NewSession {
    pub key: String,
    pub claims: Claims,
    pub ufrag: String,
    pub pass: String,
    pub member: Member,
    pub watcher: bool,
    pub now: Instant,
}

#[derive(Default)]
pub(crate) struct Sessions {
    map: HashMap<SessionId, Session>,
    by_addr: HashMap<(Protocol, SocketAddr), SessionId>,
    by_ufrag: HashMap<String, SessionId>,
    /// Connected watchers (the viewer cap counts these).
    watchers: usize,
    /// Sessions still setting up, and how many of them each token (`jti`) and each room has.
    pending: usize,
    pending_by_token: HashMap<String, usize>,
    pending_by_room: HashMap<Arc<str>, usize>,
}

/// Sessions still setting up, as [`Sessions::pending`] counts them for one offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pending {
    /// On the whole worker.
    pub all: usize,
    /// With the offer's token (`jti`).
    pub token: usize,
    /// In the offer's room.
    pub room: usize,
}

impl Sessions {
    pub fn insert(&mut self, peer: Peer, new: NewSession) -> SessionId {
        let id = peer.id();
        self.by_ufrag.insert(new.ufrag.clone(), id);
        self.pending += 1;
        *self
            .pending_by_token
            .entry(new.claims.jti.clone())
            .or_default() += 1;
        *self.pending_by_room.entry(peer.room().clone()).or_default() += 1;
        self.map.insert(
            id,
            Session {
                peer,
                key: new.key,
                claims: new.claims,
                ufrag: new.ufrag,
                pass: new.pass,
                addrs: Vec::new(),
                pending: Some(new.member),
                watcher: new.watcher,
                dirty: false,
                last_heard: new.now,
                suspended: false,
                path: None,
                transport: None,
            },
        );
        id
    }

    /// The session finished setting up: it stops counting as pending and starts counting as a
    /// watcher if it is one. Returns its member (once).
    pub fn connected(&mut self, id: SessionId) -> Option<Member> {
        let s = self.map.get_mut(&id)?;
        let member = s.take_pending()?;
        let jti = s.claims.jti.clone();
        let room = s.peer.room().clone();
        self.watchers += usize::from(s.watcher);
        self.pending -= 1;
        self.unpend(&jti, &room);
        Some(member)
    }

    fn unpend(&mut self, jti: &str, room: &str) {
        fn down<K: std::borrow::Borrow<str> + std::hash::Hash + Eq>(
            map: &mut HashMap<K, usize>,
            key: &str,
        ) {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
        down(&mut self.pending_by_token, jti);
        down(&mut self.pending_by_room, room);
    }

    /// Sessions still setting up: in all, with this token, and in this room.
    pub fn pending(&self, jti: &str, room: &str) -> Pending {
        Pending {
            all: self.pending,
            token: self.pending_by_token.get(jti).copied().unwrap_or(0),
            room: self.pending_by_room.get(room).copied().unwrap_or(0),
        }
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

    /// Connected watchers: what the viewer cap counts.
    pub fn watchers(&self) -> usize {
        self.watchers
    }

    /// Does any session (connected or not) belong to `room`?
    pub fn any_in_room(&self, room: &str) -> bool {
        self.map.values().any(|s| &**s.peer.room() == room)
    }

    /// Who sent this datagram (see [`Lookup`]).
    pub fn find(&self, proto: Protocol, src: SocketAddr, data: &[u8]) -> Lookup {
        if let Some(id) = self.by_addr.get(&(proto, src)) {
            return Lookup::Known(*id);
        }
        match self.by_signed_stun(data) {
            Some(id) => Lookup::Stun(id),
            None => Lookup::Unknown,
        }
    }

    /// A binding request naming one of our ufrags *and* signed with that session's password:
    /// knowing a ufrag (it is in the SDP answer, which passes through proxies and logs) is not
    /// enough to point a session at another address.
    fn by_signed_stun(&self, data: &[u8]) -> Option<SessionId> {
        let msg = StunMessage::parse(data).ok()?;
        if !msg.is_binding_request() {
            return None;
        }
        let (local, _remote) = msg.split_username()?;
        let id = *self.by_ufrag.get(local)?;
        let pass = &self.map.get(&id)?.pass;
        let hmac = str0m::crypto::from_feature_flags().sha1_hmac_provider;
        msg.verify(pass.as_bytes(), |key, parts| hmac.sha1_hmac(key, parts))
            .then_some(id)
    }

    /// The session seen at this address, if any.
    pub fn at(&self, proto: Protocol, src: SocketAddr) -> Option<SessionId> {
        self.by_addr.get(&(proto, src)).copied()
    }

    /// The address session `id` was last learnt at.
    pub fn newest_addr(&self, id: SessionId) -> Option<(Protocol, SocketAddr)> {
        self.map.get(&id).and_then(|s| s.addrs.last().copied())
    }

    /// Route datagrams from `src` to session `id` from now on.
    pub fn learn(&mut self, id: SessionId, proto: Protocol, src: SocketAddr) {
        if !self.map.contains_key(&id) {
            return;
        }
        let src = (proto, src);
        if let Some(old) = self.by_addr.insert(src, id) {
            if old != id {
                // The address moved to another session (a client reusing a port): the old
                // session no longer owns it.
                if let Some(o) = self.map.get_mut(&old) {
                    o.addrs.retain(|a| *a != src);
                }
            }
        }
        let mut forgotten = None;
        if let Some(s) = self.map.get_mut(&id) {
            if s.addrs.last() != Some(&src) {
                s.addrs.retain(|a| *a != src);
                s.addrs.push(src);
                if s.addrs.len() > MAX_ADDRS_PER_SESSION {
                    forgotten = Some(s.addrs.remove(0));
                }
            }
        }
        if let Some(a) = forgotten {
            if self.by_addr.get(&a) == Some(&id) {
                self.by_addr.remove(&a);
            }
        }
    }

    /// An ICE restart gave session `id` new local credentials: binding requests must name and
    /// sign with the new ones from now on; the old ufrag finds nothing.
    /// Returns the old ufrag.
    pub fn rekey(&mut self, id: SessionId, ufrag: String, pass: String) -> Option<String> {
        let s = self.map.get_mut(&id)?;
        if self.by_ufrag.get(&s.ufrag) == Some(&id) {
            self.by_ufrag.remove(&s.ufrag);
        }
        self.by_ufrag.insert(ufrag.clone(), id);
        s.pass = pass;
        Some(std::mem::replace(&mut s.ufrag, ufrag))
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
        if s.pending.is_some() {
            self.pending -= 1;
            self.unpend(&s.claims.jti, s.peer.room());
        } else {
            self.watchers -= usize::from(s.watcher);
        }
        Some(s)
    }

    /// Entries in (sessions, address index, ufrag index, pending tokens), for tests of the
    /// invariants.
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.map.len(),
            self.by_addr.len(),
            self.by_ufrag.len(),
            self.pending_by_token.len(),
        )
    }

    /// Rooms with a pending-session count, for tests of the invariants (none left behind).
    #[cfg(test)]
    pub fn pending_rooms(&self) -> usize {
        self.pending_by_room.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use bedside_proto::Role;

    use super::*;
    use crate::client::{Endpoint, Offering};
    use crate::peer::PeerSetup;

    fn udp(n: u8) -> (Protocol, SocketAddr) {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 2, n));
        (Protocol::Udp, SocketAddr::new(ip, 40000 + u16::from(n)))
    }

    /// A table holding one pending session (a real str0m peer from a real offer).
    fn one_session() -> (Sessions, SessionId) {
        str0m::crypto::from_feature_flags().install_process_default();
        let now = Instant::now();
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5000);
        let o = Offering::new(udp(1).1, Endpoint::Whep, now).expect("offer");
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .expect("cert");
        let id = SessionId(1);
        let accepted = Peer::accept(
            PeerSetup {
                id,
                room: "room".into(),
                role: Role::Observer,
                candidate: server,
                tcp_candidate: None,
                cert: &cert,
                now,
            },
            &o.offer.to_sdp_string(),
        )
        .expect("answer");
        let member = Member {
            sub: "s".into(),
            role: Role::Observer,
            can_control: false,
            expires_at_ms: u64::MAX / 2,
            booking: None,
            layout: Default::default(),
            transport: None,
        };
        let mut sessions = Sessions::default();
        sessions.insert(
            accepted.peer,
            NewSession {
                key: "key".into(),
                claims: Claims::new("s", "room", Role::Observer, 600),
                ufrag: accepted.ufrag,
                pass: accepted.pass,
                member,
                watcher: true,
                now,
            },
        );
        (sessions, id)
    }

    #[test]
    fn a_fifth_address_replaces_the_oldest() {
        let (mut s, id) = one_session();
        for n in 1..=MAX_ADDRS_PER_SESSION as u8 {
            let (p, a) = udp(n);
            s.learn(id, p, a);
        }
        for n in 1..=MAX_ADDRS_PER_SESSION as u8 {
            let (p, a) = udp(n);
            assert_eq!(s.at(p, a), Some(id), "address {n} is known");
        }
        // Seen again, the first address becomes the newest: the next one pushes out the second.
        let (p, a) = udp(1);
        s.learn(id, p, a);
        let (p5, a5) = udp(5);
        s.learn(id, p5, a5);
        assert_eq!(s.at(p5, a5), Some(id), "the fifth address is learnt");
        assert_eq!(s.newest_addr(id), Some((p5, a5)));
        let (p2, a2) = udp(2);
        assert_eq!(s.at(p2, a2), None, "the oldest is forgotten");
        for n in [1, 3, 4] {
            let (p, a) = udp(n);
            assert_eq!(s.at(p, a), Some(id), "address {n} is kept");
        }
        assert_eq!(s.by_addr.len(), MAX_ADDRS_PER_SESSION);
        // Many more: the index never grows past the cap.
        for n in 10..60 {
            let (p, a) = udp(n);
            s.learn(id, p, a);
        }
        assert_eq!(s.by_addr.len(), MAX_ADDRS_PER_SESSION);
        assert_eq!(
            s.get(id).map(|x| x.addrs.len()),
            Some(MAX_ADDRS_PER_SESSION)
        );
        s.remove(id);
        assert!(s.by_addr.is_empty());
    }
}
