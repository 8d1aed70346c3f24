//! `--metrics-addr` for real: the built `bedside` binary, as `serve` and as a media node apart
//! (`bedside sfu`, what the Kubernetes StatefulSet runs), serves `/metrics` only on the address
//! given, and the public HTTP port (the one behind the ingress) answers 404 for it.

mod common;

use std::net::TcpListener;

use common::cluster::{base_of, spawn, spawn_api, spawn_sfu};

/// A loopback address with a port nobody listens on right now, for a flag that takes an
/// address (the binary does not print the metrics address it bound).
fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("addr").to_string()
}

async fn status(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("an answer");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// `/metrics` is 404 at `public` and Prometheus text at `metrics`.
async fn only_on_the_metrics_address(public: &str, metrics: &str) {
    let (code, _) = status(&format!("{public}/metrics")).await;
    assert_eq!(code, 404, "/metrics on the public port");
    let (code, body) = status(&format!("http://{metrics}/metrics")).await;
    assert_eq!(code, 200, "/metrics on the metrics address");
    assert!(
        body.contains("bedside_rooms"),
        "Prometheus text of the media plane: {body:.200}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_metrics_only_on_its_own_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let metrics = free_addr();
    let (_proc, rest) = spawn(
        dir.path(),
        "serve",
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--udp-port",
            "0",
            "--workers",
            "1",
            "--metrics-addr",
            &metrics,
        ],
        "Bedside is running. Open ",
        &[],
    )
    .await;
    only_on_the_metrics_address(&base_of(&rest), &metrics).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_node_answers_metrics_only_on_its_own_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("api");
    let (_api, api) = spawn_api(dir.path(), "api", &data).await;
    let metrics = free_addr();
    let (_sfu, sfu) = spawn_sfu(dir.path(), "sfu", &api, &["--metrics-addr", &metrics], &[]).await;
    only_on_the_metrics_address(&sfu, &metrics).await;
}
