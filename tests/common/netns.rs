//! A network namespace of the test's own, for tests that block or impair traffic with
//! nftables without touching the machine's network.
//!
//! [`NetNs::new`] creates a namespace with only `lo` up; [`NetNs::veth`] links two of them like
//! two hosts on one wire, [`NetNs::ip`] sets addresses and routes; [`NetNs::nft`] loads rules into it;
//! [`NetNs::run`] runs a future on a runtime whose threads live in it (the test's SFU, its
//! peers, its sockets), and [`NetNs::command`] starts a process in it. Every address on
//! `127.0.0.0/8` is on `lo`, so a test gives each party its own (`127.0.0.2` for a robot, say)
//! and writes rules by source address. The namespace is deleted on drop.
//!
//! Needs root and `ip` (iproute2) and `nft` (nftables): `.ci/run` installs both. A test that
//! finds them missing fails, it does not skip.
//!
//! Not here: the rules themselves (each test says what it blocks, and first shows it blocked).

use std::future::Future;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct NetNs {
    pub name: String,
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: {e} (iproute2 and nftables are needed: .ci/run installs them)")
    });
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetNs {
    /// A new namespace, `lo` up, no rules.
    pub fn new(tag: &str) -> NetNs {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "bedside-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        run(
            Command::new("ip").args(["netns", "add", &name]),
            "ip netns add",
        );
        let ns = NetNs { name };
        run(
            Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]),
            "ip link set lo up",
        );
        ns
    }

    /// Run `ip ARGS` in the namespace (addresses, routes); panics with its error output.
    pub fn ip(&self, args: &[&str]) {
        let mut c = Command::new("ip");
        c.args(["-n", &self.name]).args(args);
        run(&mut c, &format!("ip {}", args.join(" ")));
    }

    /// What `ip ARGS` in the namespace prints.
    pub fn ip_output(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A veth pair between this namespace (`here`, with `here_cidr`) and `there` (`there_dev`
    /// with `there_cidr`), both ends up: a link between two hosts.
    pub fn veth(
        &self,
        here: &str,
        here_cidr: &str,
        there: &NetNs,
        there_dev: &str,
        there_cidr: &str,
    ) {
        run(
            Command::new("ip").args([
                "link",
                "add",
                here,
                "netns",
                &self.name,
                "type",
                "veth",
                "peer",
                "name",
                there_dev,
                "netns",
                &there.name,
            ]),
            "ip link add veth",
        );
        for (ns, dev, cidr) in [(self, here, here_cidr), (there, there_dev, there_cidr)] {
            ns.ip(&["addr", "add", cidr, "dev", dev]);
            ns.ip(&["link", "set", dev, "up"]);
            ns.ip(&["link", "set", "lo", "up"]);
        }
    }

    /// Load an nftables script (`nft -f -`) into the namespace.
    pub fn nft(&self, script: &str) {
        nft(&self.name, script)
    }

    /// A process started inside the namespace.
    pub fn command(&self, program: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Run `f` to completion on a fresh multi-threaded runtime whose threads are all in the
    /// namespace: a thread enters it (`setns` is per thread) and the runtime's workers, created
    /// by that thread, inherit it.
    pub fn run<F, Fut>(&self, f: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future,
        Fut::Output: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open the namespace");
            // SAFETY: setns on an open namespace file descriptor; affects this thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(f())
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

/// Load an nftables script (`nft -f -`) into the namespace called `name`: for code running
/// inside [`NetNs::run`], which cannot borrow the `NetNs` (a blocking call of a few ms).
pub fn nft(name: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", name, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec nft (nftables is needed: .ci/run installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write the rules");
    let out = child.wait_with_output().expect("nft runs");
    assert!(
        out.status.success(),
        "nft -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
