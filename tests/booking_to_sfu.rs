//! Control plane to media plane: a token the API mints for a booking opens the SFU's WHEP
//! endpoint for that robot, in that slot, and for nothing else. Runs the real `serve` wiring
//! (API + SFU + web in one process, SQLite in a temp dir) over real HTTP and UDP.

mod common;

use std::time::Duration;

use bedside_api::testing::{expect, Client, PASSWORD};
use bedside_api::{Clock, UserRole};
use bedside_sfu::client::{ClientError, Endpoint, WebRtcClient};
use chrono::Utc;
use common::one_process;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Server {
    client: Client,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Server {
    async fn start() -> Server {
        let clock = Clock::system();
        let one_process::Local { client, dir, .. } =
            one_process::serve_local(move |config| config.clock = clock).await;
        Server { client, _dir: dir }
    }

    async fn token(&self, user: &str) -> String {
        let r = expect(StatusCode::OK, self.login(user, PASSWORD).await);
        r["access_token"].as_str().expect("logged in").to_string()
    }

    /// Book `robot` from `start_min` to `end_min` minutes after the API's now; join it.
    async fn book_and_join(
        &self,
        doctor: &str,
        robot: &str,
        start_min: i64,
        end_min: i64,
    ) -> (StatusCode, Value) {
        let booking = self
            .book_from_now(
                doctor,
                robot.parse().expect("robot id"),
                chrono::Duration::minutes(start_min),
                chrono::Duration::minutes(end_min),
            )
            .await;
        self.join(doctor, &booking).await
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
    let pw = PASSWORD;
    s.api
        .create_user("dr-a", "Dr A", pw, UserRole::Doctor)
        .await
        .unwrap();
    let (robot_a, credential) = s.api.create_robot("Robot A", "Ward 1", "").await.unwrap();
    let (robot_b, _) = s.api.create_robot("Robot B", "Ward 2", "").await.unwrap();
    let (a, b) = (robot_a.id.to_string(), robot_b.id.to_string());
    let doctor = s.token("dr-a").await;

    // The robot gets its publish token with its credential and publishes over WHIP.
    let r = expect(
        StatusCode::OK,
        s.call(
            reqwest::Method::POST,
            &format!("/api/robots/{a}/publish-token"),
            Some(&format!("Robot {credential}")),
            None,
        )
        .await,
    );
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
    assert_eq!(status, StatusCode::OK, "{join}");
    assert_eq!(join["can_control"], true);
    assert!(join["whep_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/whep/{a}")));
    let token = join["token"].as_str().unwrap();
    let viewer = s.whep(&a, token).await.expect("accepted for its robot");
    let viewer = common::spawn_viewer_client_ready(viewer).await;
    assert!(
        common::wait_until(Duration::from_secs(5), || !viewer.video().is_empty()).await,
        "the doctor sees the robot"
    );

    // An administrator takes control away: the room hears it.
    s.api
        .create_user("admin", "Admin", pw, UserRole::Admin)
        .await
        .unwrap();
    let admin = s.token("admin").await;
    let granted = common::take_lease(&viewer).await;
    let (status, body) = s
        .post(&format!("/api/robots/{a}/lease/revoke"), &doctor, json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "doctors cannot revoke: {body}"
    );
    let (status, body) = s
        .post(&format!("/api/robots/{a}/lease/revoke"), &admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let revoked = std::time::Instant::now();
    let ev = viewer
        .wait_event(Duration::from_secs(2), |e| {
            e["type"] == "lease" && e["reason"] == "revoked" && e["holder"].is_null()
        })
        .await
        .expect("lease revoked by the admin");
    // ...and the robot was told to stop, in the lease's new epoch.
    let epoch = ev["epoch"].as_u64().expect("epoch");
    assert!(epoch > granted, "{ev}");
    let stopped = || {
        common::robot_frames(&robot).iter().any(|(t, f)| {
            *t >= revoked && f.kind == bedside_proto::FrameKind::Stop && u64::from(f.epoch) == epoch
        })
    };
    assert!(
        common::wait_until(Duration::from_secs(3), stopped).await,
        "a stop frame for epoch {epoch} reached the robot: {:?}",
        common::robot_frames(&robot)
    );
    let (status, body) = s
        .post(&format!("/api/robots/{b}/lease/revoke"), &admin, json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "nobody in robot B's room: harmless: {body}"
    );
    assert!(body["booking"].is_null(), "{body}");

    // The same token at another robot's door.
    assert_eq!(
        s.whep(&b, token).await.err(),
        Some(403),
        "token for another robot"
    );

    // Before the slot: outside the join window the API issues nothing...
    let (status, body) = s.book_and_join(&doctor, &b, 60, 90).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // ...and a token issued by a clock that believes the slot has begun is not yet valid at the
    // SFU, which keeps real time.
    s.clock.set_offset(chrono::Duration::minutes(120));
    // (The API's own sessions live on its clock: log in again after moving it.)
    let doctor = s.token("dr-a").await;
    let (status, join) = s.book_and_join(&doctor, &b, 0, 30).await;
    assert_eq!(status, StatusCode::OK, "{join}");
    assert_eq!(
        s.whep(&b, join["token"].as_str().unwrap()).await.err(),
        Some(401),
        "before the slot"
    );

    // After the slot: a booking that (in real time) ended an hour ago yields an expired token.
    s.clock.set_offset(chrono::Duration::minutes(-240));
    let doctor = s.token("dr-a").await;
    let (status, join) = s.book_and_join(&doctor, &b, 0, 30).await;
    assert_eq!(status, StatusCode::OK, "{join}");
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
