//! No double booking, two ways: under 200 simultaneous requests the application's guarded insert
//! lets exactly one through; and the database's own rule (PostgreSQL's exclusion constraint,
//! SQLite's triggers) refuses overlapping rows written around the application, by raw SQL.

use bedside_api::UserRole;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use sqlx::Connection as _;
use uuid::Uuid;

use crate::common::{expect, from_now, id_of, minutes, Backend, TestApp};

backend_tests!(
    concurrent_overlapping_bookings,
    overlaps_written_around_the_application
);

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
    let list = expect(
        StatusCode::OK,
        app.get(&format!("/api/bookings?robot_id={robot}"), &admin.token)
            .await,
    );
    assert_eq!(list.as_array().unwrap().len(), 1);
}

/// A connection to the test's database that bypasses the application.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// How a raw write ended.
#[derive(Debug, PartialEq)]
enum Write {
    Done,
    /// Refused by the no-overlap rule.
    Overlap,
}

impl Raw {
    async fn open(app: &TestApp) -> Raw {
        match &app.backend {
            Backend::Postgres(db) => {
                Raw::Postgres(sqlx::PgConnection::connect(&db.url).await.unwrap())
            }
            Backend::Sqlite => {
                let file = app.dir.path().join("bedside.db");
                let url = format!("sqlite://{}", file.display());
                Raw::Sqlite(sqlx::SqliteConnection::connect(&url).await.unwrap())
            }
        }
    }

    fn outcome(r: Result<u64, sqlx::Error>) -> Write {
        match r {
            Ok(1) => Write::Done,
            Ok(n) => panic!("{n} rows changed"),
            Err(e) => {
                let db = e.as_database_error().expect("a database error");
                let overlap = db.message().contains("booking_overlap")
                    || db.code().as_deref() == Some("23P01");
                assert!(overlap, "not the overlap rule: {e}");
                Write::Overlap
            }
        }
    }

    async fn insert(
        &mut self,
        id: Uuid,
        robot: Uuid,
        doctor: Uuid,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        status: &str,
    ) -> Write {
        let sql = "INSERT INTO bookings (id, robot_id, doctor_id, starts_at, ends_at, status, \
                   created_at) VALUES ($1, $2, $3, $4, $5, $6, $4)";
        let r = match self {
            Raw::Sqlite(c) => sqlx::query(sql)
                .bind(id.to_string())
                .bind(robot.to_string())
                .bind(doctor.to_string())
                .bind(start.timestamp_micros())
                .bind(end.timestamp_micros())
                .bind(status)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(c) => sqlx::query(sql)
                .bind(id)
                .bind(robot)
                .bind(doctor)
                .bind(start)
                .bind(end)
                .bind(status)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()),
        };
        Self::outcome(r)
    }

    async fn set_status(&mut self, id: Uuid, status: &str) -> Write {
        let sql = "UPDATE bookings SET status = $1 WHERE id = $2";
        let r = match self {
            Raw::Sqlite(c) => sqlx::query(sql)
                .bind(status)
                .bind(id.to_string())
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(c) => sqlx::query(sql)
                .bind(status)
                .bind(id)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()),
        };
        Self::outcome(r)
    }

    async fn set_start(&mut self, id: Uuid, start: DateTime<Utc>) -> Write {
        let sql = "UPDATE bookings SET starts_at = $1 WHERE id = $2";
        let r = match self {
            Raw::Sqlite(c) => sqlx::query(sql)
                .bind(start.timestamp_micros())
                .bind(id.to_string())
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(c) => sqlx::query(sql)
                .bind(start)
                .bind(id)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()),
        };
        Self::outcome(r)
    }
}

async fn overlaps_written_around_the_application(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;
    let (other_robot, _) = app.robot().await;
    let t = from_now(chrono::Duration::days(1));
    let slot = |s: i64, e: i64| (t + minutes(s), t + minutes(e));
    let mut raw = Raw::open(&app).await;
    let (a, b, c, d, e) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let doc = doctor.id;

    assert_eq!(
        raw.insert(a, robot, doc, slot(0, 60), "confirmed").await,
        Write::Done
    );
    // Overlapping inserts are refused, whichever side they overlap on.
    for (s, e2) in [(30, 90), (-30, 30), (10, 20), (-10, 70)] {
        assert_eq!(
            raw.insert(Uuid::new_v4(), robot, doc, slot(s, e2), "confirmed")
                .await,
            Write::Overlap,
            "[{s}, {e2}) over [0, 60)"
        );
    }
    // Back to back is fine, another robot is fine, a cancelled row does not count.
    assert_eq!(
        raw.insert(b, robot, doc, slot(60, 120), "confirmed").await,
        Write::Done
    );
    assert_eq!(
        raw.insert(c, other_robot, doc, slot(0, 60), "confirmed")
            .await,
        Write::Done
    );
    assert_eq!(
        raw.insert(d, robot, doc, slot(30, 90), "cancelled").await,
        Write::Done
    );
    // Updates: un-cancelling into an overlap, or moving a start into one, are refused.
    assert_eq!(raw.set_status(d, "confirmed").await, Write::Overlap);
    assert_eq!(raw.set_start(b, t + minutes(59)).await, Write::Overlap);
    // Once the slot is free again, the same update goes through.
    assert_eq!(
        raw.insert(e, robot, doc, slot(200, 260), "confirmed").await,
        Write::Done
    );
    assert_eq!(raw.set_status(a, "cancelled").await, Write::Done);
    assert_eq!(raw.set_status(b, "cancelled").await, Write::Done);
    assert_eq!(raw.set_status(d, "confirmed").await, Write::Done);

    // The application sees what the database kept, and still refuses the overlap itself.
    let (status, body) = app
        .book(&doctor.token, robot, t + minutes(40), t + minutes(50))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["conflict"]["booking_id"], d.to_string());
}
