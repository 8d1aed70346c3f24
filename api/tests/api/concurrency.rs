//! The database, not the application, prevents double booking: 200 simultaneous requests for
//! overlapping slots of one robot yield exactly one booking.

use bedside_api::UserRole;
use reqwest::StatusCode;

use crate::common::{from_now, id_of, minutes, Backend, TestApp};

backend_tests!(concurrent_overlapping_bookings);

const REQUESTS: i64 = 200;

async fn concurrent_overlapping_bookings(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::start(backend).await);
    let mut doctors = Vec::new();
    for _ in 0..4 {
        doctors.push(app.user(UserRole::Doctor).await.token);
    }
    let (robot, _) = app.robot().await;
    let t = from_now(chrono::Duration::days(1));

    // Every slot contains [t, t + 1 min), so every pair overlaps; no two are identical.
    let mut tasks = tokio::task::JoinSet::new();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(REQUESTS as usize));
    for i in 0..REQUESTS {
        let app = app.clone();
        let token = doctors[(i % 4) as usize].clone();
        let barrier = barrier.clone();
        let (start, end) = (t - minutes(i % 60), t + minutes(1 + i / 60));
        tasks.spawn(async move {
            barrier.wait().await;
            app.book(&token, robot, start, end).await
        });
    }
    let mut created = Vec::new();
    let mut conflicts = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.expect("task");
        match status {
            StatusCode::CREATED => created.push(body),
            StatusCode::CONFLICT => conflicts.push(body),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one booking wins");
    assert_eq!(conflicts.len(), REQUESTS as usize - 1);
    let winner = id_of(&created[0]).to_string();
    for c in &conflicts {
        assert_eq!(c["error"], "booking_conflict");
        assert_eq!(c["conflict"]["booking_id"], winner.as_str(), "{c}");
    }

    let admin = app.user(UserRole::Admin).await;
    let (_, list) = app
        .get(&format!("/api/bookings?robot_id={robot}"), &admin.token)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}
