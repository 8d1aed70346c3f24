//! `bedside api` and `bedside sfu` as separate processes of the built binary, the cluster layout
//! the split-deployment tests run: [`spawn`] starts one with the node secret and the first admin
//! set, waits for its "ready" line and hands back the rest of it; [`spawn_api`] does that for a
//! `bedside api` on a free port and hands back its base URL, [`spawn_sfu`] a one-worker media
//! node following it; [`Proc`] kills it when dropped and prints its log if the test failed.
//!
//! Not here: what the tests do with the nodes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bedside_api::testing::PASSWORD;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The node secret both processes share.
pub const SECRET: &str = "cluster-test-node-secret";
/// The first administrator's username (password: `bedside_api::testing::PASSWORD`).
pub const ADMIN: &str = "root";

/// A child process of the `bedside` binary, killed when dropped; its log is printed if the test
/// failed.
pub struct Proc {
    pub child: Child,
    log: std::path::PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("--- {} (last lines)", self.log.display());
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// Start `bedside <args>` and wait for the stdout line that starts with `ready`; the rest of
/// that line.
pub async fn spawn(
    dir: &Path,
    name: &str,
    args: &[&str],
    ready: &str,
    env: &[(&str, &str)],
) -> (Proc, String) {
    let log = dir.join(format!("{name}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_bedside"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("BEDSIDE_JWT_PRIVATE_KEY_PEM")
        // Any free port for ICE-TCP: the default (50000) may be held by another test's node.
        .env("BEDSIDE_ICE_TCP_PORT", "0")
        .env("BEDSIDE_NODE_SECRET", SECRET)
        .env("BEDSIDE_ADMIN_USERNAME", ADMIN)
        .env("BEDSIDE_ADMIN_PASSWORD", PASSWORD)
        .env("RUST_LOG", "info,str0m=warn,sqlx=warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("bedside runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix(ready) {
                return Some(rest.to_string());
            }
        }
        None
    })
    .await;
    let proc = Proc { child, log };
    let Ok(Some(rest)) = found else {
        drop(proc);
        panic!("{name} did not start");
    };
    // Keep reading stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (proc, rest)
}

/// `http://127.0.0.1:1234/ ...` -> `http://127.0.0.1:1234`.
pub fn base_of(rest: &str) -> String {
    let url = rest.split_whitespace().next().expect("a URL");
    url.trim_end_matches(['/', '.']).to_string()
}

/// `bedside api` on a free loopback port with its data in `data`; the process and its base URL.
pub async fn spawn_api(dir: &Path, name: &str, data: &Path) -> (Proc, String) {
    let data = data.to_str().expect("a UTF-8 path");
    let (proc, rest) = spawn(
        dir,
        name,
        &["api", "--http", "127.0.0.1:0", "--data-dir", data],
        "Bedside is running. Open ",
        &[],
    )
    .await;
    (proc, base_of(&rest))
}

/// `bedside sfu` on loopback (any free HTTP and UDP port, one worker) following the API at
/// `api`, with `extra` arguments and `env`; the process and its base URL.
pub async fn spawn_sfu(
    dir: &Path,
    name: &str,
    api: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Proc, String) {
    let mut args = vec![
        "sfu",
        "--http",
        "127.0.0.1:0",
        "--bind-ip",
        "127.0.0.1",
        "--udp-port",
        "0",
        "--workers",
        "1",
        "--api-url",
        api,
    ];
    args.extend_from_slice(extra);
    let (proc, rest) = spawn(dir, name, &args, "Bedside media node on ", env).await;
    (proc, base_of(&rest))
}
