//! Control plane to media plane: a token the API mints for a booking opens the SFU's WHEP
//! endpoint for that robot, in that slot, and for nothing else. Runs the real `serve` wiring
//! (API + SFU + web in one process, SQLite in a temp dir) over real HTTP and UDP.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bedside::serve::{start_configured, Parts, ServeOptions};
use bedside_api::{Clock, UserRole};
use bedside_sfu::client::{ClientError, Endpoint, WebRtcClient};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

struct Server {
    base: String,
    api: bedside_api::Api,
    clock: Clock,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Clock::system();
        let c = clock.clone();
        let running = start_configured(
            ServeOptions {
                http: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                media: bedside::serve::MediaOptions::local(),
                data_dir: dir.path().to_path_buf(),
                public_url: None,
                metrics_addr: None,
                http_limits: Default::default(),
            },
            Parts::All,
            move |config| config.clock = c,
        )
        .await
        .expect("server starts");
        Server {
            base: format!("http://{}", running.http),
            api: running.api.clone(),
            clock,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn login(&self, user: &str) -> String {
        let r: Value = self
            .http
            .post(format!("{}/api/auth/login", self.base))
            .json(&json!({"username": user, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().expect("logged in").to_string()
    }

    async fn call(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Book `robot` from `start_min` to `end_min` minutes after the API's now; join it.
    async fn book_and_join(
        &self,
        doctor: &str,
        robot: &str,
        start_min: i64,
        end_min: i64,
    ) -> (u16, Value) {
        let now = self.clock.now();
        let t = |m: i64| {
            (now + chrono::Duration::minutes(m)).to_rfc3339_opts(SecondsFormat::Secs, true)
        };
        let (status, booking) = self
            .call(
                doctor,
                "/api/bookings",
                json!({"robot_id": robot, "starts_at": t(start_min), "ends_at": t(end_min)}),
            )
            .await;
        assert_eq!(status, 201, "booking made: {booking}");
        let id = booking["id"].as_str().unwrap();
        self.call(doctor, &format!("/api/bookings/{id}/join"), json!({}))
            .await
    }

    async fn whep(&self, room: &str, token: &str) -> Result<WebRtcClient, u16> {
        match WebRtcClient::connect(&self.base, Endpoint::Whep, room, token, common::LOCALHOST)
            .await
        {
            Ok(c) => Ok(c),
            Err(ClientError::Refused { status, .. }) => Err(status),
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_tokens_open_exactly_their_room_in_their_slot() {
    let s = Server::start().await;
    let pw = "correct horse battery";
    s.api
        .create_user("dr-a", "Dr A", pw, UserRole::Doctor)
        .await
        .unwrap();
    let (robot_a, credential) = s.api.create_robot("Robot A", "Ward 1", "").await.unwrap();
    let (robot_b, _) = s.api.create_robot("Robot B", "Ward 2", "").await.unwrap();
    let (a, b) = (robot_a.id.to_string(), robot_b.id.to_string());
    let doctor = s.login("dr-a").await;

    // The robot gets its publish token with its credential and publishes over WHIP.
    let r: Value = s
        .http
        .post(format!("{}/api/robots/{a}/publish-token", s.base))
        .header("authorization", format!("Robot {credential}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let robot = WebRtcClient::connect(
        &s.base,
        Endpoint::Whip,
        &a,
        r["token"].as_str().unwrap(),
        common::LOCALHOST,
    )
    .await
    .expect("publish token accepted by WHIP");
    let robot = common::spawn_robot_ready(robot).await;

    // A slot that has started: the booking's doctor gets a controlling token for robot A.
    let (status, join) = s.book_and_join(&doctor, &a, 0, 30).await;
    assert_eq!(status, 200, "{join}");
    assert_eq!(join["can_control"], true);
    assert!(join["whep_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/whep/{a}")));
    let token = join["token"].as_str().unwrap();
    let viewer = s.whep(&a, token).await.expect("accepted for its robot");
    let viewer = common::spawn_viewer_client_ready(viewer).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!viewer.video().is_empty(), "the doctor sees the robot");

    // An administrator takes control away: the room hears it.
    s.api
        .create_user("admin", "Admin", pw, UserRole::Admin)
        .await
        .unwrap();
    let admin = s.login("admin").await;
    viewer.send_event(r#"{"type":"request_lease"}"#);
    let me = viewer.session_id.clone();
    viewer
        .wait_event(Duration::from_secs(2), |e| {
            e["type"] == "lease" && e["holder"] == me.as_str()
        })
        .await
        .expect("the doctor drives");
    let (status, body) = s
        .call(&doctor, &format!("/api/robots/{a}/lease/revoke"), json!({}))
        .await;
    assert_eq!(status, 403, "doctors cannot revoke: {body}");
    let (status, body) = s
        .call(&admin, &format!("/api/robots/{a}/lease/revoke"), json!({}))
        .await;
    assert_eq!(status, 204, "{body}");
    viewer
        .wait_event(Duration::from_secs(2), |e| {
            e["type"] == "lease" && e["reason"] == "revoked" && e["holder"].is_null()
        })
        .await
        .expect("lease revoked by the admin");
    let (status, _) = s
        .call(&admin, &format!("/api/robots/{b}/lease/revoke"), json!({}))
        .await;
    assert_eq!(status, 404, "nobody in robot B's room");

    // The same token at another robot's door.
    assert_eq!(
        s.whep(&b, token).await.err(),
        Some(403),
        "token for another robot"
    );

    // Before the slot: outside the join window the API issues nothing...
    let (status, body) = s.book_and_join(&doctor, &b, 60, 90).await;
    assert_eq!(status, 403, "{body}");
    // ...and a token issued by a clock that believes the slot has begun is not yet valid at the
    // SFU, which keeps real time.
    s.clock.set_offset(chrono::Duration::minutes(120));
    // (The API's own sessions live on its clock: log in again after moving it.)
    let doctor = s.login("dr-a").await;
    let (status, join) = s.book_and_join(&doctor, &b, 0, 30).await;
    assert_eq!(status, 200, "{join}");
    assert_eq!(
        s.whep(&b, join["token"].as_str().unwrap()).await.err(),
        Some(401),
        "before the slot"
    );

    // After the slot: a booking that (in real time) ended an hour ago yields an expired token.
    s.clock.set_offset(chrono::Duration::minutes(-240));
    let doctor = s.login("dr-a").await;
    let (status, join) = s.book_and_join(&doctor, &b, 0, 30).await;
    assert_eq!(status, 200, "{join}");
    let exp = join["expires_at"].as_str().unwrap();
    assert!(
        exp < Utc::now().to_rfc3339().as_str(),
        "the slot is over: {exp}"
    );
    assert_eq!(
        s.whep(&b, join["token"].as_str().unwrap()).await.err(),
        Some(401),
        "after the slot"
    );

    viewer.stop().await;
    robot.stop().await;
}
