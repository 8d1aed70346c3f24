//! Reaching Bedside through networks that move and block: an ICE restart by `PATCH` keeps a
//! session (and its lease) across a change of address, and the old credentials are refused.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bedside_proto::Role;
use common::agent::robot_agent;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_keeps_the_session_and_the_lease() {
    let sfu = TestSfu::start().await;
    let room = room();
    let robot = sfu.start_robot(&room, "robot", 1).await;
    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doc")).await;
    assert!(wait_until(Duration::from_secs(5), || !doctor.video().is_empty()).await);
    let epoch = take_lease(&doctor).await;
    let session = doctor.session_id.clone();

    // The laptop changes network: a new source address, new ICE credentials by PATCH.
    doctor.restart_ice();
    assert!(
        wait_until(Duration::from_secs(5), || doctor
            .log
            .restarted
            .load(Ordering::SeqCst)
            == 1)
        .await,
        "the PATCH was answered"
    );
    let restarted = Instant::now();
    assert!(
        wait_until(Duration::from_secs(1), || doctor
            .count_between(restarted, Instant::now())
            > 10)
        .await,
        "video flows again within a second"
    );
    assert_eq!(sfu.metric("bedside_ice_restarts_total"), 1.0);
    // Same session, same lease, same epoch: no lease change was announced.
    let events = doctor.events();
    let later_lease = events
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .any(|e| e["type"] == "lease" && e["epoch"].as_u64().is_some_and(|n| n > epoch));
    assert!(!later_lease, "the lease never changed: {events:?}");
    drive(&doctor, 321, 1000, 10).await;
    assert!(
        wait_until(Duration::from_secs(3), || robot_frames(&robot)
            .iter()
            .any(|(_, f)| f.linear_x == 321 && u64::from(f.epoch) == epoch))
        .await,
        "it still drives, same epoch"
    );
    assert_eq!(sfu.metric("bedside_sessions{role=\"doctor\"}"), 1.0);
    assert_eq!(doctor.session_id, session);

    // The old credentials are refused from then on: a correctly signed binding request with
    // the old ufrag, from an address nobody has seen, finds no session.
    let old = doctor.log.first_server_ice.lock().unwrap().clone().unwrap();
    let dropped = || sfu.metric("bedside_datagrams_dropped_total{reason=\"unknown_source\"}");
    let before = dropped();
    let username = format!("{}:whoever", old.ufrag);
    let hmac = str0m::crypto::from_feature_flags().sha1_hmac_provider;
    let request = str0m::ice::StunMessage::binding_request(
        &username,
        str0m::ice::TransId::new(),
        true,
        1,
        100,
        false,
    );
    let mut buf = vec![0u8; 512];
    let n = request
        .to_bytes(Some(old.pwd.as_bytes()), &mut buf, |k, p| {
            hmac.sha1_hmac(k, p)
        })
        .unwrap();
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger
        .send_to(&buf[..n], sfu.sfu.media_addrs()[0])
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(2), || dropped() == before + 1.0).await,
        "the old ufrag finds nothing"
    );
    doctor.stop().await;
    robot.stop().await;
}

/// ICE-TCP (RFC 6544) where UDP is blocked: in a namespace that drops every UDP datagram from
/// the robot's address, direct UDP fails; the real robot agent then connects with
/// `--transport tcp`, its video reaches a UDP viewer, a doctor drives it, and both ends are
/// reported with their transport. When the TCP connection closes, the session ends at once.
#[test]
fn the_robot_agent_reaches_the_room_over_ice_tcp_where_udp_is_blocked() {
    const ROBOT_IP: &str = "127.0.0.2";
    let ns = netns::NetNs::new("icetcp");
    ns.nft(&format!(
        "table inet bedside {{\n chain input {{\n type filter hook input priority 0;\n \
         ip saddr {ROBOT_IP} meta l4proto udp drop\n }}\n}}\n"
    ));
    let agent_cmd = ns.command(env!("CARGO_BIN_EXE_bedside"));
    ns.run(move || async move {
        let robot_ip: std::net::IpAddr = ROBOT_IP.parse().unwrap();
        // The impairment is in effect: a datagram from the robot's address never arrives, one
        // from another address does.
        let listener = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = listener.local_addr().unwrap();
        for (from, expect) in [(robot_ip, false), (LOCALHOST, true)] {
            let s = tokio::net::UdpSocket::bind((from, 0)).await.unwrap();
            s.send_to(b"probe", to).await.unwrap();
            let mut buf = [0u8; 16];
            let got =
                tokio::time::timeout(Duration::from_millis(500), listener.recv_from(&mut buf))
                    .await
                    .is_ok();
            assert_eq!(got, expect, "UDP from {from} arrives: {got}");
        }
        let sfu = TestSfu::start().await;
        let room = room();
        let token = sfu.token(&room, Role::Robot, "robot");
        let udp = sfu
            .connect_via(
                bedside_sfu::client::Endpoint::Whip,
                &room,
                &token,
                robot_ip,
                bedside_sfu::client::TransportKind::Udp,
                Duration::from_secs(3),
            )
            .await;
        assert!(udp.is_err(), "direct UDP from the robot's address fails");

        let sink = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let token = sfu.token(&room, Role::Robot, "robot");
        let mut agent = robot_agent(agent_cmd, &sfu.base, &room, &token)
            .args(["--sink", &format!("udp:{}", sink.local_addr().unwrap())])
            .args(["--local-ip", ROBOT_IP, "--transport", "tcp"])
            .spawn()
            .expect("bedside robot starts");
        let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doc")).await;
        assert!(
            wait_until(Duration::from_secs(10), || doctor.video().len() > 20).await,
            "the agent's video reaches the viewer over ICE-TCP"
        );
        assert_eq!(
            sfu.metric("bedside_session_transports{transport=\"tcp\"}"),
            1.0
        );
        assert_eq!(
            sfu.metric("bedside_session_transports{transport=\"udp\"}"),
            1.0
        );
        let robot_tcp = doctor.events().iter().any(|e| {
            let v: serde_json::Value = serde_json::from_str(e).unwrap_or_default();
            let robot = v["participants"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(std::iter::once(&v["participant"]))
                .find(|p| p["role"] == "robot")
                .cloned();
            robot.is_some_and(|p| p["transport"] == "tcp")
        });
        assert!(
            robot_tcp,
            "the room is told the robot is on TCP: {:?}",
            doctor.events()
        );

        // A doctor drives; the frames travel to the robot over the TCP connection.
        take_lease(&doctor).await;
        drive(&doctor, 777, 1, 10).await;
        let mut buf = [0u8; 512];
        let mut drove = false;
        let until = Instant::now() + Duration::from_secs(3);
        while let Ok(Ok(n)) = tokio::time::timeout_at(until.into(), sink.recv(&mut buf)).await {
            let c: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
            if c["reason"] == "frame" && c["linear_x"] == 777 {
                drove = true;
                break;
            }
        }
        assert!(drove, "the robot received the drive frames");

        // The agent dies: its connection closes and the session ends at once, long before
        // the robot's silence timer.
        let _ = agent.kill().await;
        let killed = Instant::now();
        assert!(
            wait_until(Duration::from_secs(2), || sfu
                .metric("bedside_session_failures_total{reason=\"tcp_closed\"}")
                == 1.0)
            .await,
            "the session ended when its TCP connection closed"
        );
        assert!(killed.elapsed() < Duration::from_millis(1500));
        // Present and zero: the gauge was written while the TCP session lived.
        assert_eq!(
            sfu.sample("bedside_session_transports{transport=\"tcp\"}"),
            Some(0.0)
        );
        doctor.stop().await;
    });
}

/// The ICE-TCP listener is open to anyone: a connection that does not start with a STUN binding
/// request naming a live session is closed and counted, a correctly named one with a forged
/// signature learns nothing, and no more than the configured number may wait unauthenticated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ice_tcp_listener_closes_strangers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sfu = TestSfu::start_with(bedside_sfu::SfuConfig {
        tcp_port: Some(0),
        max_tcp_pending: 2,
        ..bedside_sfu::SfuConfig::default()
    })
    .await;
    let tcp = sfu.sfu.tcp_addr().expect("ICE-TCP listens");
    let dropped = |r: &str| {
        sfu.metric(&format!(
            "bedside_datagrams_dropped_total{{reason=\"{r}\"}}"
        ))
    };
    let closed = |mut s: tokio::net::TcpStream| async move {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    };

    // Garbage framed as RFC 4571: not a binding request.
    let mut s = tokio::net::TcpStream::connect(tcp).await.unwrap();
    s.write_all(&[0, 5, 1, 2, 3, 4, 5]).await.unwrap();
    assert!(closed(s).await, "garbage is hung up on");
    assert_eq!(dropped("tcp_unknown_ufrag"), 1.0);

    // A binding request for a ufrag nobody has.
    let hmac = str0m::crypto::from_feature_flags().sha1_hmac_provider;
    let stun = |ufrag: &str, pwd: &str| {
        let username = format!("{ufrag}:x");
        let request = str0m::ice::StunMessage::binding_request(
            &username,
            str0m::ice::TransId::new(),
            true,
            1,
            100,
            false,
        );
        let mut buf = vec![0u8; 512];
        let n = request
            .to_bytes(Some(pwd.as_bytes()), &mut buf, |k, p| hmac.sha1_hmac(k, p))
            .unwrap();
        let mut framed = (n as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&buf[..n]);
        framed
    };
    let mut s = tokio::net::TcpStream::connect(tcp).await.unwrap();
    s.write_all(&stun("nosuchufrag", "whatever-password-123"))
        .await
        .unwrap();
    assert!(closed(s).await, "an unknown ufrag is hung up on");
    assert_eq!(dropped("tcp_unknown_ufrag"), 2.0);

    // A live session's ufrag with a forged signature: routed, then refused by the switchboard.
    let room = room();
    let viewer = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Observer, "s")).await;
    assert!(
        wait_until(Duration::from_secs(5), || viewer
            .log
            .first_server_ice
            .lock()
            .unwrap()
            .is_some())
        .await
    );
    let ufrag = viewer
        .log
        .first_server_ice
        .lock()
        .unwrap()
        .clone()
        .unwrap()
        .ufrag;
    let before = dropped("unknown_source");
    let mut s = tokio::net::TcpStream::connect(tcp).await.unwrap();
    s.write_all(&stun(&ufrag, "not-the-password-at-all"))
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(2), || dropped("unknown_source")
            == before + 1.0)
        .await,
        "the forged request is dropped"
    );
    assert_eq!(
        sfu.metric("bedside_session_transports{transport=\"tcp\"}"),
        0.0
    );
    drop(s);

    // Two idle connections fill the unauthenticated slots; a third is closed at once.
    let _a = tokio::net::TcpStream::connect(tcp).await.unwrap();
    let _b = tokio::net::TcpStream::connect(tcp).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = tokio::net::TcpStream::connect(tcp).await.unwrap();
    assert!(closed(c).await, "the third waits for nothing");
    assert_eq!(dropped("tcp_too_many_pending"), 1.0);
    viewer.stop().await;
}

/// A robot roams onto another network mid-session: the real agent, in a network namespace of
/// its own linked to the server's like a second host, loses its address and gets a new one on
/// another subnet (break before make, as a Wi-Fi roam does). With `--local-ip auto` it follows
/// the routing table, restarts ICE from the new address by `PATCH`, and keeps its session: the
/// server never ends it, no viewer sees the robot leave or join, and the viewer's video pauses
/// for less than a second.
#[test]
fn the_robot_agent_keeps_its_session_when_its_address_changes() {
    const SERVER_IP: &str = "10.8.0.1";
    let server_ns = netns::NetNs::new("roam-s");
    let robot_ns = netns::NetNs::new("roam-r");
    server_ns.veth("vs", "10.8.0.1/24", &robot_ns, "vr", "10.8.0.2/24");
    // The robot's next network: reachable from the server once it is up.
    server_ns.ip(&["route", "add", "10.9.0.0/24", "dev", "vs"]);
    let agent_cmd = robot_ns.command(env!("CARGO_BIN_EXE_bedside"));
    let robot = robot_ns.name.clone();
    ns_run(&server_ns, robot, agent_cmd, SERVER_IP);
}

fn ns_run(
    server_ns: &netns::NetNs,
    robot_ns: String,
    agent_cmd: tokio::process::Command,
    server_ip: &'static str,
) {
    let ip = move |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(["-n", &robot_ns])
            .args(args)
            .output()
            .expect("ip runs");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    server_ns.run(move || async move {
        let server: std::net::IpAddr = server_ip.parse().unwrap();
        let sfu = TestSfu::start_at(
            bedside_sfu::SfuConfig {
                bind_ip: server,
                ..bedside_sfu::SfuConfig::default()
            },
            server,
        )
        .await;
        let room = room();
        let log_path =
            std::env::temp_dir().join(format!("bedside-roam-{}.log", std::process::id()));
        let log_file = std::fs::File::create(&log_path).expect("agent log");
        let agent_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let token = sfu.token(&room, Role::Robot, "robot");
        let mut agent = robot_agent(agent_cmd, &sfu.base, &room, &token)
            .args(["--local-ip", "auto", "--sink", "stdout"])
            .env("RUST_LOG", "info,str0m=warn")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("bedside robot starts");
        let viewer = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Observer, "s")).await;
        assert!(
            wait_until(Duration::from_secs(10), || viewer.video().len() > 50).await,
            "the agent's video reaches the viewer from its first address"
        );
        assert!(
            ip(&["route", "get", server_ip]).contains("src 10.8.0.2"),
            "the agent starts on 10.8.0.2"
        );

        // The roam: the old address goes, then the new network comes up.
        let seen = viewer.events().len();
        let roamed = Instant::now();
        ip(&["addr", "del", "10.8.0.2/24", "dev", "vr"]);
        ip(&["addr", "add", "10.9.0.3/24", "dev", "vr"]);
        ip(&[
            "route",
            "add",
            &format!("{server_ip}/32"),
            "dev",
            "vr",
            "src",
            "10.9.0.3",
        ]);
        // In effect: the old address is gone, the route to the server leaves from the new one.
        assert!(!ip(&["-4", "addr", "show", "dev", "vr"]).contains("10.8.0.2"));
        assert!(ip(&["route", "get", server_ip]).contains("src 10.9.0.3"));

        assert!(
            wait_until(Duration::from_secs(3), || sfu
                .metric("bedside_ice_restarts_total")
                == 1.0)
            .await,
            "the agent restarted ICE; its log:\n{}",
            agent_log()
        );
        let after = Instant::now();
        assert!(
            wait_until(Duration::from_secs(2), || viewer
                .count_between(after, Instant::now())
                > 20)
            .await,
            "video flows again"
        );
        // The longest pause in the viewer's video around the roam.
        let video = viewer.video();
        let around: Vec<Instant> = video
            .iter()
            .map(|p| p.at)
            .filter(|t| *t + Duration::from_millis(500) >= roamed)
            .collect();
        let gap = around
            .windows(2)
            .map(|w| w[1].duration_since(w[0]))
            .max()
            .unwrap_or_default();
        eprintln!("longest pause in the viewer's video around the roam: {gap:?}");
        assert!(
            gap < Duration::from_secs(1),
            "the video paused {gap:?}; the agent's log:\n{}",
            agent_log()
        );

        // The same session: never ended, never replaced, nobody saw the robot leave or join.
        assert_eq!(sfu.metric("bedside_sessions{role=\"robot\"}"), 1.0);
        assert_eq!(
            sfu.metric("bedside_session_failures_total{reason=\"silent\"}"),
            0.0
        );
        let churn: Vec<String> = viewer.events()[seen..]
            .iter()
            .filter(|e| {
                let v: serde_json::Value = serde_json::from_str(e).unwrap_or_default();
                // Only the robot and this viewer are in the room.
                v["type"] == "left" || v["type"] == "joined"
            })
            .cloned()
            .collect();
        assert!(churn.is_empty(), "the robot never left: {churn:?}");
        let _ = agent.kill().await;
        let log = agent_log();
        let _ = std::fs::remove_file(&log_path);
        assert!(
            log.contains("ICE restarted") && log.contains("10.9.0.3"),
            "the agent says it moved: {log}"
        );
        viewer.stop().await;
    });
}
