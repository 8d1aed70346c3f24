//! The media server as a whole: starts the workers and routes requests to them.
//!
//! [`Sfu::start`] binds one UDP socket per worker and spawns each worker as a tokio task. The
//! directory (`directory.rs`) maps room id -> worker so all sessions of a room meet on one
//! worker, and the secret session key of a `Location` URL -> (worker, session). A join builds
//! its session's `Rtc` here, on the signalling task, and hands it to the room's worker.
//!
//! Not here: HTTP parsing (`signalling.rs`) or anything about rooms' contents (`room.rs`).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bedside_proto::join_token::unix_now;
use bedside_proto::node::NodeCommand;
use bedside_proto::{Claims, Role, TokenVerifier};
use str0m::config::DtlsCert;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::config::SfuConfig;
use crate::deny_list::{Check, DenyList};
use crate::directory::Directory;
use crate::error::SfuError;
use crate::ice_restart::IceCredentials;
use crate::metrics::Metrics;
use crate::peer::{Peer, PeerSetup};
use crate::room::{Layout, Member};
use crate::room_event::RoomEventHook;
use crate::switchboard::Admit;
use crate::worker::{Command, Worker};
use crate::SessionId;

/// A session just created by [`Sfu::join`].
pub(crate) struct Joined {
    pub id: SessionId,
    /// The secret of its `Location` URL.
    pub key: String,
    pub answer: String,
}

/// Handle to the running media server. Cheap to clone.
#[derive(Clone)]
pub struct Sfu {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Metrics,
    dtls_cert: DtlsCert,
    directory: Arc<Directory>,
    workers: Vec<mpsc::Sender<Command>>,
    addrs: Vec<SocketAddr>,
    tcp: Option<SocketAddr>,
    verifier: RwLock<TokenVerifier>,
    denies: RwLock<DenyList>,
}

impl Sfu {
    /// Bind sockets and spawn workers on the current tokio runtime.
    pub async fn start(
        config: SfuConfig,
        verifier: TokenVerifier,
        metrics: Metrics,
        room_events: Option<RoomEventHook>,
    ) -> Result<Sfu, SfuError> {
        // Idempotent: str0m wants one process-wide crypto provider.
        let provider = str0m::crypto::from_feature_flags();
        let dtls_cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| SfuError::Internal("could not generate DTLS certificate".into()))?;
        provider.install_process_default();

        let advertised = config.advertised_ip();
        let count = config.workers.max(1);
        let directory = Arc::new(Directory::new(count));
        let tcp_listener = match config.tcp_port {
            Some(port) => {
                Some(tokio::net::TcpListener::bind(SocketAddr::new(config.bind_ip, port)).await?)
            }
            None => None,
        };
        let local_tcp = match &tcp_listener {
            Some(l) => Some(SocketAddr::new(advertised, l.local_addr()?.port())),
            None => None,
        };
        let mut workers = Vec::new();
        let mut addrs = Vec::new();
        for i in 0..count {
            let port = if config.udp_port == 0 {
                0
            } else {
                config.udp_port + i as u16
            };
            let socket = UdpSocket::bind(SocketAddr::new(config.bind_ip, port)).await?;
            let local = SocketAddr::new(advertised, socket.local_addr()?.port());
            let (tx, rx) = mpsc::channel(256);
            let socket = crate::socket::MediaSocket::new(socket)?;
            let worker = Worker::new(
                i,
                config.clone(),
                local,
                socket,
                metrics.clone(),
                rx,
                directory.clone(),
                room_events.clone(),
                local_tcp,
            );
            tokio::spawn(worker.run());
            tracing::info!(worker = i, candidate = %local, "media worker listening");
            workers.push(tx);
            addrs.push(local);
        }
        if let Some(l) = tcp_listener {
            tracing::info!(candidate = ?local_tcp, "ICE-TCP listening");
            tokio::spawn(crate::tcp::serve(
                l,
                directory.clone(),
                workers.clone(),
                metrics.clone(),
                config.max_tcp_pending,
            ));
        }
        Ok(Sfu {
            inner: Arc::new(Inner {
                metrics,
                dtls_cert,
                directory,
                workers,
                addrs,
                tcp: local_tcp,
                verifier: RwLock::new(verifier),
                denies: RwLock::new(DenyList::new()),
            }),
        })
    }

    /// The advertised UDP address of each worker.
    pub fn media_addrs(&self) -> &[SocketAddr] {
        &self.inner.addrs
    }

    /// The advertised ICE-TCP address, if the node listens for ICE-TCP.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.inner.tcp
    }

    /// The families the workers and signalling count into (`/metrics` renders them).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Replace the keys tokens are checked with (key rotation, JWKS refresh).
    pub fn set_verifier(&self, verifier: TokenVerifier) {
        if let Ok(mut v) = self.inner.verifier.write() {
            *v = verifier;
        }
    }

    pub(crate) fn verify(&self, token: &str, room: &str) -> Result<Claims, SfuError> {
        let v = self
            .inner
            .verifier
            .read()
            .map_err(|_| SfuError::Internal("verifier lock poisoned".into()))?;
        Ok(v.verify(token, room)?)
    }

    /// Admit a participant with verified `claims` and answer its SDP offer. The session's
    /// `Rtc` is built here, on the signalling task, so that a burst of offers costs the
    /// worker's media loop only the insertion.
    pub(crate) async fn join(&self, mut claims: Claims, offer: &str) -> Result<Joined, SfuError> {
        let check = self
            .inner
            .denies
            .read()
            .map_err(|_| SfuError::Internal("deny list lock poisoned".into()))?
            .check(&claims);
        match check {
            Check::Admit => {}
            Check::AdmitWithoutControl(_) => claims.can_control = false,
            Check::Refuse(reason) => return Err(SfuError::Revoked(reason.message())),
        }
        let w = self.inner.directory.worker_for(&claims.room);
        let id = self.inner.directory.next_session_id();
        let accepted = Peer::accept(
            PeerSetup {
                id,
                room: claims.room.as_str().into(),
                role: claims.role,
                candidate: self.inner.addrs[w],
                tcp_candidate: self.inner.tcp,
                cert: &self.inner.dtls_cert,
                now: Instant::now(),
            },
            offer,
        )?;
        let answer = accepted.answer.clone();
        let ufrag = accepted.ufrag.clone();
        let key = new_session_key();
        let member = Member {
            can_control: claims.can_control && claims.role == Role::Doctor,
            expires_at_ms: claims.exp.saturating_mul(1000),
            sub: claims.sub.clone(),
            role: claims.role,
            booking: claims.booking.clone(),
            // Known once it connects (from its m-lines).
            layout: Layout::default(),
            transport: None,
        };
        // Known before the worker sees the session, so that a session ending at once cannot
        // leave its key behind.
        self.inner.directory.register_session(key.clone(), w, id);
        self.inner
            .directory
            .register_ufrag(accepted.ufrag.clone(), w);
        let (reply, rx) = oneshot::channel();
        let admit = Admit {
            accepted,
            key: key.clone(),
            member,
            claims,
        };
        let sent = self.inner.workers[w]
            .send(Command::Join {
                admit: Box::new(admit),
                reply,
            })
            .await;
        let admitted = match sent {
            Ok(()) => rx.await.unwrap_or(Err(SfuError::ShuttingDown)),
            Err(_) => Err(SfuError::ShuttingDown),
        };
        match admitted {
            Ok(_) => Ok(Joined { id, key, answer }),
            Err(e) => {
                self.inner.directory.forget_session(&key);
                self.inner.directory.forget_ufrag(&ufrag);
                Err(e)
            }
        }
    }

    pub(crate) fn has_session(&self, key: &str) -> bool {
        self.inner.directory.session(key).is_some()
    }

    /// Restart ICE on the session behind a `Location` key with the client's new credentials;
    /// the answer fragment.
    pub(crate) async fn ice_restart(
        &self,
        key: &str,
        remote: IceCredentials,
    ) -> Result<String, SfuError> {
        let (w, id) = self
            .inner
            .directory
            .session(key)
            .ok_or(SfuError::NoSession)?;
        let (reply, rx) = oneshot::channel();
        self.inner.workers[w]
            .send(Command::IceRestart { id, remote, reply })
            .await
            .map_err(|_| SfuError::ShuttingDown)?;
        rx.await.map_err(|_| SfuError::ShuttingDown)?
    }

    /// End the session behind a `Location` key. False if there is none.
    pub(crate) async fn leave(&self, key: &str) -> bool {
        let Some((w, id)) = self.inner.directory.take_session(key) else {
            return false;
        };
        self.inner.workers[w]
            .send(Command::Leave { id })
            .await
            .is_ok()
    }

    /// Carry out what the API says (the node channel, `bedside_proto::node`): deny entries are
    /// checked at every join from now on and end the live sessions they match on every worker.
    pub async fn apply(&self, cmd: NodeCommand) {
        match cmd {
            NodeCommand::Snapshot { denies, latches } => {
                if let Ok(mut l) = self.inner.denies.write() {
                    l.replace(denies.clone(), unix_now());
                }
                for d in denies {
                    self.broadcast(|| Command::Deny(d.clone())).await;
                }
                // Each latch to the worker its room lives (or will live) on.
                for l in latches {
                    let w = self.inner.directory.worker_for(&l.room);
                    let _ = self.inner.workers[w]
                        .send(Command::RestoreLatches(vec![l]))
                        .await;
                }
            }
            NodeCommand::Deny { deny } => {
                if let Ok(mut l) = self.inner.denies.write() {
                    l.insert(deny.clone(), unix_now());
                }
                self.broadcast(|| Command::Deny(deny.clone())).await;
            }
            NodeCommand::RevokeLease { room } => {
                self.revoke_lease(&room).await;
            }
            NodeCommand::EndSession { room, session } => {
                self.end_session(&room, &session).await;
            }
            NodeCommand::Ping => {}
        }
    }

    async fn broadcast(&self, make: impl Fn() -> Command) {
        for w in &self.inner.workers {
            let _ = w.send(make()).await;
        }
    }

    /// End one participant's session by its public id (admin action). False if not found.
    pub async fn end_session(&self, room: &str, session: &str) -> bool {
        let Some(w) = self.inner.directory.existing_worker(room) else {
            return false;
        };
        let (reply, rx) = oneshot::channel();
        let cmd = Command::EndSession {
            room: room.into(),
            session: session.into(),
            reply,
        };
        if self.inner.workers[w].send(cmd).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Entries in the deny list now (for tests and a gauge).
    pub fn denies_in_force(&self) -> usize {
        self.inner.denies.read().map(|l| l.len()).unwrap_or(0)
    }

    /// Make the worker of `room` panic inside its switchboard, to test that a worker survives
    /// its own bugs. Not reachable from HTTP.
    #[doc(hidden)]
    pub async fn inject_panic_for_tests(&self, room: &str) {
        let w = self.inner.directory.worker_for(room);
        let _ = self.inner.workers[w].send(Command::Panic).await;
    }

    /// Take the control lease away in a room (admin action). False if the room is not active.
    pub async fn revoke_lease(&self, room: &str) -> bool {
        let Some(w) = self.inner.directory.existing_worker(room) else {
            return false;
        };
        let (reply, rx) = oneshot::channel();
        if self.inner.workers[w]
            .send(Command::RevokeLease {
                room: room.into(),
                reply,
            })
            .await
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

fn new_session_key() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
