//! The node channel over HTTP, as a media node apart uses it: the secret, the command stream
//! (snapshot first, live commands, pings, ended at shutdown) and the report endpoint.

use std::time::Duration;

use bedside_api::{Api, ApiError, UserRole};
use bedside_proto::node::{DenyTarget, NodeCommand, NodeReport};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, id_of, minutes, Backend, TestApp};

backend_tests!(
    node_routes_need_the_secret,
    the_stream_carries_commands,
    reports_reach_the_audit_log_and_latches,
    audit_rows_name_the_previous_holder_and_the_robots_own_estop,
);

const SECRET: &str = "a-node-secret-for-tests";

fn with_secret(c: &mut bedside_api::ApiConfig) {
    c.node_secret = Some(SECRET.into());
}

/// Reads a node stream line by line.
struct Lines {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Lines {
    /// The next command; `None` when the stream ended. Fails after `within`.
    async fn next(&mut self, within: Duration) -> Option<NodeCommand> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("a NodeCommand per line"));
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .expect("a line in time")
                .expect("stream readable")?;
            self.buf.extend_from_slice(&chunk);
        }
    }
}

async fn follow(app: &TestApp) -> Lines {
    let resp = app
        .http
        .get(app.url("/internal/node/stream"))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    Lines {
        resp,
        buf: Vec::new(),
    }
}

/// The status of a request to a node route, without reading the body: a stream let in by
/// mistake would never end.
async fn status_of(app: &TestApp, method: Method, path: &str, auth: Option<&str>) -> StatusCode {
    let mut req = app
        .http
        .request(method, app.url(path))
        .json(&json!([]))
        .timeout(Duration::from_secs(10));
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    req.send().await.expect("an answer").status()
}

const ROUTES: [(Method, &str); 2] = [
    (Method::GET, "/internal/node/stream"),
    (Method::POST, "/internal/node/reports"),
];

async fn node_routes_need_the_secret(backend: Backend) {
    // Without a configured secret the routes do not exist.
    let app = TestApp::start(backend).await;
    let right = format!("Bearer {SECRET}");
    for (method, path) in ROUTES {
        let status = status_of(&app, method, path, Some(&right)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    // A secret too short to protect anything is refused at start.
    let mut short = app.config.clone();
    short.node_secret = Some("short".into());
    assert!(matches!(
        Api::open(short).await.err(),
        Some(ApiError::Config(_))
    ));

    let app = app.restart_with(with_secret).await;
    for auth in [
        None,
        Some("Bearer wrong-secret-wrong-secret"),
        Some("Robot x"),
    ] {
        for (method, path) in ROUTES {
            let status = status_of(&app, method, path, auth).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {auth:?}");
        }
    }
    let status = status_of(&app, Method::POST, "/internal/node/reports", Some(&right)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let status = status_of(&app, Method::GET, "/internal/node/stream", Some(&right)).await;
    assert_eq!(status, StatusCode::OK);
    // Browsers never see these routes described.
    let doc = expect(
        StatusCode::OK,
        app.call(Method::GET, "/api/openapi.json", None, None).await,
    );
    assert!(!doc["paths"].to_string().contains("internal"));
}

async fn the_stream_carries_commands(backend: Backend) {
    let app = TestApp::start_with(backend, with_secret).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;
    let cancelled = app
        .book_from_now(&doctor.token, robot, minutes(0), minutes(20))
        .await;
    app.cancel_ok(&doctor.token, &cancelled).await;

    let mut lines = follow(&app).await;
    let Some(NodeCommand::Snapshot { denies, latches }) = lines.next(Duration::from_secs(5)).await
    else {
        panic!("a snapshot first");
    };
    assert_eq!(denies.len(), 1, "{denies:?}");
    assert!(latches.is_empty());

    let booking = app
        .book_from_now(&doctor.token, robot, minutes(20), minutes(40))
        .await;
    app.cancel_ok(&doctor.token, &booking).await;
    match lines.next(Duration::from_secs(5)).await {
        Some(NodeCommand::Deny { deny }) => assert_eq!(
            deny.target,
            DenyTarget::Booking {
                booking: id_of(&booking).to_string()
            }
        ),
        other => panic!("expected the deny: {other:?}"),
    }
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/robots/{robot}/lease/revoke"),
            &admin.token,
            json!({}),
        )
        .await,
    );
    assert_eq!(
        lines.next(Duration::from_secs(5)).await,
        Some(NodeCommand::RevokeLease {
            room: robot.to_string()
        })
    );
    // A quiet stream says it is alive every 10 s.
    assert_eq!(
        lines.next(Duration::from_secs(15)).await,
        Some(NodeCommand::Ping)
    );
    // Shutting down ends it, so that the node reconnects elsewhere at once.
    app.api.node_hub().close_streams();
    assert_eq!(lines.next(Duration::from_secs(5)).await, None);
}

async fn reports_reach_the_audit_log_and_latches(backend: Backend) {
    let app = TestApp::start_with(backend, with_secret).await;
    let admin = app.user(UserRole::Admin).await;
    let room = uuid::Uuid::new_v4().to_string();
    let batch = json!([
        { "type": "room_event", "room": room, "kind": "lease_changed", "actor": "d1",
          "detail": { "epoch": 2 } },
        { "type": "room_event", "room": room, "kind": "estop_latched", "actor": "d1" },
        { "type": "something_newer", "what": 1 },
    ]);
    let (status, body) = app
        .call(
            Method::POST,
            "/internal/node/reports",
            Some(&format!("Bearer {SECRET}")),
            Some(&batch),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app
        .call(
            Method::POST,
            "/internal/node/reports",
            Some(&format!("Bearer {SECRET}")),
            Some(&json!({ "not": "a list" })),
        )
        .await;
    assert!(status.is_client_error(), "{status}");

    // Reports are queued, not awaited: wait for them to be written.
    let (mut latched, mut leases) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        latched = app.audit_kind(&admin.token, "room.estop_latched").await;
        leases = app.audit_kind(&admin.token, "room.lease_changed").await;
        if !latched.is_empty() && !leases.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(latched.len(), 1);
    assert_eq!(latched[0]["room"], room.as_str());
    assert_eq!(latched[0]["actor"], "d1");
    let leases: Vec<Value> = leases;
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0]["detail"]["epoch"], 2);
    let mut latches = Vec::new();
    for _ in 0..100 {
        let (snapshot, _) = app.api.node_hub().subscribe().await.unwrap();
        if let NodeCommand::Snapshot { latches: l, .. } = snapshot {
            latches = l;
        }
        if !latches.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(latches.len(), 1, "the room is recorded as latched");
    assert_eq!(latches[0].room, room);
    assert_eq!(latches[0].by.as_deref(), Some("d1"));
}

/// Poll the audit log (up to 5 s) until `kind` has `n` entries; the entries.
async fn audited(app: &TestApp, admin: &str, kind: &str, n: usize) -> Vec<Value> {
    let mut entries = Vec::new();
    for _ in 0..100 {
        entries = app.audit_kind(admin, kind).await;
        if entries.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    entries
}

async fn audit_rows_name_the_previous_holder_and_the_robots_own_estop(backend: Backend) {
    let app = TestApp::start_with(backend, with_secret).await;
    let admin = app.user(UserRole::Admin).await;
    let room = uuid::Uuid::new_v4().to_string();
    // As a media node sends them (the SFU's `RoomEvent` in the node channel's form): D1 hands
    // the lease to D2, then the robot's own e-stop is pressed and released at the bedside.
    let event = |kind: &str, actor: &str, detail: Value| NodeReport::RoomEvent {
        room: room.clone(),
        kind: kind.into(),
        actor: Some(actor.into()),
        detail,
    };
    let batch = vec![
        event(
            "lease_changed",
            "d2",
            json!({ "epoch": 4, "reason": "handoff", "previous": "d1" }),
        ),
        event("estop_robot_pressed", "robot-7", json!({})),
        event("estop_robot_released", "robot-7", json!({})),
    ];
    let (status, body) = app
        .call(
            Method::POST,
            "/internal/node/reports",
            Some(&format!("Bearer {SECRET}")),
            Some(&serde_json::to_value(&batch).unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let leases = audited(&app, &admin.token, "room.lease_changed", 1).await;
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(leases[0]["actor"], "d2", "the new holder");
    assert_eq!(leases[0]["detail"]["previous"], "d1", "the previous holder");
    assert_eq!(leases[0]["detail"]["epoch"], 4);
    for kind in ["room.estop_robot_pressed", "room.estop_robot_released"] {
        let rows = audited(&app, &admin.token, kind, 1).await;
        assert_eq!(rows.len(), 1, "{kind}: {rows:?}");
        assert_eq!(rows[0]["room"], room.as_str(), "{kind}");
        assert_eq!(
            rows[0]["actor"], "robot-7",
            "{kind}: the robot that pressed it"
        );
    }
    // The robot's own e-stop is the robot's: it is not recorded as a room latch that a doctor
    // could later clear (or that would latch the room again after a restart).
    let (snapshot, _) = app.api.node_hub().subscribe().await.unwrap();
    let NodeCommand::Snapshot { latches, .. } = snapshot else {
        panic!("a snapshot first");
    };
    assert!(latches.iter().all(|l| l.room != room), "{latches:?}");
}
