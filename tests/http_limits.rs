//! The HTTP listener every `bedside` server uses holds against slow and greedy clients: a client
//! that trickles its headers is cut off, connections past the cap are closed at once, and an
//! honest client is served meanwhile. Real TCP on loopback against `http_server::serve`.

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use bedside::http_server::{serve, HttpLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(limits: HttpLimits) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/hello", get(|| async { "hello" }));
    tokio::spawn(serve(
        listener,
        app,
        limits,
        std::future::pending(),
        Duration::ZERO,
    ));
    addr
}

/// Read until the peer closes (0 bytes) or `within` passes; whether it closed.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

async fn get_hello(addr: std::net::SocketAddr) -> String {
    reqwest::Client::new()
        .get(format!("http://{addr}/hello"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("served")
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_cut_off() {
    let addr = start(HttpLimits {
        header_timeout: Duration::from_secs(1),
        max_connections: 64,
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // Meanwhile an honest client is served.
    assert_eq!(get_hello(addr).await, "hello");
    // A byte every 300 ms does not keep a connection alive past the header timeout.
    let started = Instant::now();
    let mut s = slow.pop().unwrap();
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if s.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    tokio::join!(trickle);
    assert!(closed_within(&mut s, Duration::from_secs(3)).await);
    assert!(started.elapsed() < Duration::from_secs(8));
    for mut s in slow {
        assert!(
            closed_within(&mut s, Duration::from_secs(3)).await,
            "a silent half-request is closed too"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_once() {
    let addr = start(HttpLimits {
        header_timeout: Duration::from_secs(30),
        max_connections: 8,
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // The cap is in force: the ninth is accepted by the kernel and closed by the server.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ninth = TcpStream::connect(addr).await.unwrap();
    let _ = ninth
        .write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(closed_within(&mut ninth, Duration::from_secs(2)).await);
    // Freeing a slot lets the next client in.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get_hello(addr).await, "hello");
}
