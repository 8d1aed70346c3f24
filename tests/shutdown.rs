//! A real SIGTERM to a `bedside api` process (what Kubernetes sends on a rollout): the process
//! exits 0 within seconds, and the room events a media node reported just before (queued for
//! the audit log, not yet written) are in the database afterwards, e-stops included.

mod common;

use std::time::Duration;

use bedside_api::testing::{expect, PASSWORD};
use common::cluster::{spawn_api, ADMIN, SECRET};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Lease changes reported just before the signal, in batches of this many.
const BATCH: usize = 1000;
const BATCHES: usize = 3;

async fn start_api(dir: &std::path::Path, name: &str) -> (common::cluster::Proc, String) {
    spawn_api(dir, name, &dir.join("api-data")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_audit_queue_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut api, base) = start_api(dir.path(), "api").await;
    let http = reqwest::Client::new();
    let room = uuid::Uuid::new_v4().to_string();

    // What a media node reports: many lease changes, then an e-stop, queued by the API.
    for b in 0..BATCHES {
        let batch: Vec<Value> = (0..BATCH)
            .map(|i| {
                json!({ "type": "room_event", "room": room, "kind": "lease_changed",
                        "actor": "d1", "detail": { "epoch": b * BATCH + i } })
            })
            .collect();
        let r = http
            .post(format!("{base}/internal/node/reports"))
            .bearer_auth(SECRET)
            .json(&batch)
            .send()
            .await
            .expect("reports accepted");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let estop = json!([{ "type": "room_event", "room": room, "kind": "estop_latched",
                         "actor": "d1" }]);
    let r = http
        .post(format!("{base}/internal/node/reports"))
        .bearer_auth(SECRET)
        .json(&estop)
        .send()
        .await
        .expect("report accepted");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // At once, while the queue is still being written.
    let pid = api.child.id().expect("running") as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(10), api.child.wait())
        .await
        .expect("exits within 10 s of SIGTERM")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    drop(api);

    // Everything reported before the signal is in the database.
    let (_api, base) = start_api(dir.path(), "api-again").await;
    let login = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "username": ADMIN, "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    let body: Value = login.json().await.expect("json");
    let admin = body["access_token"].as_str().expect("token").to_string();
    let count = |kind: &'static str| {
        let (http, base, room, admin) = (http.clone(), base.clone(), room.clone(), admin.clone());
        async move {
            let r = http
                .get(format!("{base}/api/audit?kind={kind}&room={room}&limit=1"))
                .bearer_auth(&admin)
                .send()
                .await
                .expect("audit");
            let status = r.status();
            let page: Value = r.json().await.unwrap_or(Value::Null);
            expect(StatusCode::OK, (status, page))["total"]
                .as_i64()
                .expect("total")
        }
    };
    assert_eq!(
        count("room.estop_latched").await,
        1,
        "the e-stop is recorded"
    );
    assert_eq!(
        count("room.lease_changed").await,
        (BATCH * BATCHES) as i64,
        "every lease change reported before SIGTERM is recorded"
    );
}
