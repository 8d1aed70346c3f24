//! The real robot agent (`bedside robot`) as the cross-crate tests run it, and a recorder of what
//! it told its motor controller.
//!
//! [`robot_agent`] writes the agent's command line (server, room, token or credential) onto a command the
//! caller gives: a plain one ([`agent_binary`]) or one that starts inside a test's network
//! namespace ([`super::netns::NetNs::command`]); the test adds what it is about (`--deadman-ms`,
//! `--local-ip`, `--fixture`, ...). [`Motors`] is a UDP sink (`--sink udp:`) recording every
//! command, stamped as it arrived, read by index so a test can ask "what since then".
//!
//! Not here: what the agent does with frames (`src/agent`) or what a test asserts of it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A command that starts the `bedside` binary under test.
pub fn agent_binary() -> tokio::process::Command {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_bedside"))
}

/// `cmd` made into `bedside robot` publishing in `room` of the node at `server` (killed when
/// the test drops it).
pub fn robot_agent(
    cmd: tokio::process::Command,
    server: &str,
    room: &str,
    token: &str,
) -> tokio::process::Command {
    agent_command(cmd, server, room, ["--token", token])
}

/// [`robot_agent`] for an agent that asks the API for its publish token with the robot's
/// credential (and again on every reconnection), as a deployed robot does.
pub fn robot_agent_with_credential(
    cmd: tokio::process::Command,
    server: &str,
    room: &str,
    credential: &str,
) -> tokio::process::Command {
    agent_command(cmd, server, room, ["--credential", credential])
}

fn agent_command(
    mut cmd: tokio::process::Command,
    server: &str,
    room: &str,
    auth: [&str; 2],
) -> tokio::process::Command {
    cmd.args(["robot", "--server", server, "--room", room])
        .args(auth)
        .kill_on_drop(true);
    cmd
}

/// One command the agent gave its motors, as it arrived.
pub type Command = (Instant, Value);

/// What the agent told its motor controller, in order.
pub struct Motors {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Command>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Motors {
    /// A sink on a free loopback port, recording from now on.
    pub async fn bind() -> Motors {
        let sink = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind the motor sink");
        let addr = sink.local_addr().expect("sink address");
        let log = Arc::new(Mutex::new(Vec::new()));
        let out = log.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok(n) = sink.recv(&mut buf).await {
                // A line the agent wrote that is not JSON is kept (as text) so that an
                // assertion about the command stream sees it rather than a gap.
                let command = serde_json::from_slice(&buf[..n]).unwrap_or_else(
                    |_| serde_json::json!({ "unparsable": String::from_utf8_lossy(&buf[..n]) }),
                );
                out.lock().unwrap().push((Instant::now(), command));
            }
        });
        Motors { addr, log, task }
    }

    /// The agent's arguments that send its commands here.
    pub fn sink_args(&self) -> [String; 2] {
        ["--sink".into(), format!("udp:{}", self.addr)]
    }

    /// How many commands so far: an index for [`Motors::since`] and [`Motors::next`].
    pub fn len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Every command from index `from` on.
    pub fn since(&self, from: usize) -> Vec<Command> {
        let log = self.log.lock().unwrap();
        log.get(from..).map(<[Command]>::to_vec).unwrap_or_default()
    }

    /// Every command so far, without stamps.
    pub fn all(&self) -> Vec<Value> {
        self.since(0).into_iter().map(|(_, c)| c).collect()
    }

    /// The command at `*cursor` (advancing it), waiting for it until `until`; `None` if none
    /// came by then.
    pub async fn next(&self, cursor: &mut usize, until: Instant) -> Option<Value> {
        loop {
            if let Some((_, c)) = self.log.lock().unwrap().get(*cursor) {
                *cursor += 1;
                return Some(c.clone());
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The first command from index `from` on that `pred` accepts, waiting up to `within`.
    pub async fn wait_for(
        &self,
        from: usize,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Command> {
        let until = Instant::now() + within;
        let mut cursor = from;
        loop {
            let seen = self.since(cursor);
            cursor += seen.len();
            if let Some(found) = seen.into_iter().find(|(_, c)| pred(c)) {
                return Some(found);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Motors {
    fn drop(&mut self) {
        self.task.abort();
    }
}
