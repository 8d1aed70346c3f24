//! The audit log: what gets recorded, filters and paging, room events from the SFU, no personal
//! data stored (names are read beside the entries), the CSV export (quoting, formula
//! injection), and that the schema itself refuses to change or delete entries.

use bedside_api::UserRole;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection as _;

use crate::common::{bearer, expect, from_now, minutes, parse_time, rfc3339, Backend, TestApp};

backend_tests!(
    audit_records_filters_and_pages,
    entries_name_their_people_and_robots_and_export_as_csv,
    audit_log_is_append_only,
    estops_are_never_dropped_and_the_queue_is_written_at_shutdown,
);

fn entries(page: &Value) -> &Vec<Value> {
    page["entries"].as_array().expect("entries")
}

fn kinds(page: &Value) -> Vec<String> {
    entries(page)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn audit_records_filters_and_pages(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;
    let (robot, _) = app.robot().await;
    let room = robot.to_string();

    expect(
        StatusCode::UNAUTHORIZED,
        app.login(&doctor.username, "wrong password").await,
    );
    expect(
        StatusCode::UNAUTHORIZED,
        app.login("no-such-user", "wrong password").await,
    );
    let booking = app
        .book_ok(
            &doctor.token,
            robot,
            from_now(minutes(2)),
            from_now(minutes(30)),
        )
        .await;
    app.invite_ok(&doctor.token, &booking, student.id, "observer")
        .await;
    app.join_ok(&student.token, &booking).await;
    app.cancel_ok(&doctor.token, &booking).await;
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/robots/{robot}/credential"),
            &admin.token,
            json!({}),
        )
        .await,
    );
    expect(
        StatusCode::NO_CONTENT,
        app.call(
            Method::POST,
            "/api/auth/logout",
            Some(&bearer(&student.token)),
            None,
        )
        .await,
    );

    // Room events from the SFU: awaited, and fire-and-forget.
    let sink = app.api.audit_sink();
    let doctor_sub = doctor.id.to_string();
    sink.write_room_event(
        &room,
        Some(&doctor_sub),
        "lease_changed",
        json!({ "epoch": 3 }),
    )
    .await
    .unwrap();
    sink.record_room_event(&room, None, "estop", json!({ "by": doctor_sub }));
    assert!(sink
        .write_room_event("bad room!", None, "estop", json!({}))
        .await
        .is_err());
    sink.record_room_event(&room, None, "no spaces please", json!({}));
    assert_eq!(sink.dropped(), 1);

    let mut page = Value::Null;
    for _ in 0..100 {
        (_, page) = app.get("/api/audit?kind=room.estop", &admin.token).await;
        if !entries(&page).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        kinds(&page),
        vec!["room.estop"],
        "queued room event is written"
    );

    let (status, all) = app.get("/api/audit?limit=1000", &admin.token).await;
    assert_eq!(status, StatusCode::OK);
    let seen = kinds(&all);
    for kind in [
        "user.created",
        "robot.created",
        "login.ok",
        "login.failed",
        "booking.created",
        "invitation.added",
        "token.join",
        "booking.cancelled",
        "robot.credential_rotated",
        "logout",
        "room.lease_changed",
        "room.estop",
    ] {
        assert!(seen.iter().any(|k| k == kind), "{kind} not in {seen:?}");
    }
    // Newest first, ids strictly decreasing.
    let ids: Vec<i64> = entries(&all)
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

    // Opaque ids only: no usernames or display names anywhere in the log. (The listing adds
    // the names of actors and robots as they are now, read beside the entries: leave those out.)
    let stored: Vec<Value> = entries(&all)
        .iter()
        .map(|e| {
            let mut e = e.clone();
            for named in ["actor_name", "actor_kind", "robot_name"] {
                e.as_object_mut().unwrap().remove(named);
            }
            e
        })
        .collect();
    let text = Value::Array(stored).to_string();
    for name in [
        &doctor.username,
        &student.username,
        &admin.username,
        &"no-such-user".to_string(),
        &"Test doctor".to_string(),
    ] {
        assert!(!text.contains(name.as_str()), "audit log contains {name}");
    }

    // Filters.
    let failed = expect(
        StatusCode::OK,
        app.get("/api/audit?kind=login.failed", &admin.token).await,
    );
    let failed = entries(&failed);
    assert_eq!(failed.len(), 2);
    assert!(failed
        .iter()
        .any(|e| e["actor"] == doctor.id.to_string() && e["detail"]["reason"] == "wrong_password"));
    assert!(failed
        .iter()
        .any(|e| e["actor"].is_null() && e["detail"]["reason"] == "unknown_user"));
    let by_doctor = expect(
        StatusCode::OK,
        app.get(&format!("/api/audit?actor={}", doctor.id), &admin.token)
            .await,
    );
    assert!(entries(&by_doctor)
        .iter()
        .all(|e| e["actor"] == doctor.id.to_string()));
    assert!(kinds(&by_doctor).contains(&"booking.created".to_string()));
    let in_room = expect(
        StatusCode::OK,
        app.get(&format!("/api/audit?room={room}"), &admin.token)
            .await,
    );
    assert!(entries(&in_room).iter().all(|e| e["room"] == room.as_str()));
    assert!(entries(&in_room).len() >= 7, "{in_room}");
    let join = entries(&in_room)
        .iter()
        .find(|e| e["kind"] == "token.join")
        .unwrap();
    assert_eq!(join["actor"], student.id.to_string());
    assert_eq!(join["detail"]["role"], "observer");
    let future = crate::common::rfc3339(from_now(chrono::Duration::days(1)));
    let none = expect(
        StatusCode::OK,
        app.get(&format!("/api/audit?since={future}"), &admin.token)
            .await,
    );
    assert!(entries(&none).is_empty());
    let all_until = expect(
        StatusCode::OK,
        app.get(
            &format!("/api/audit?until={future}&limit=1000"),
            &admin.token,
        )
        .await,
    );
    assert_eq!(entries(&all_until).len(), entries(&all).len());

    // Paging by cursor walks the whole log exactly once.
    let mut walked = Vec::new();
    let mut next = String::from("/api/audit?limit=3");
    loop {
        let (status, page) = app.get(&next, &admin.token).await;
        assert_eq!(status, StatusCode::OK);
        walked.extend(entries(&page).iter().map(|e| e["id"].as_i64().unwrap()));
        match page["next_before"].as_i64() {
            Some(before) => next = format!("/api/audit?limit=3&before={before}"),
            None => break,
        }
    }
    assert_eq!(walked, ids);
    assert_eq!(
        app.get("/api/audit?limit=0", &admin.token).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

async fn audit_log_is_append_only(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user(UserRole::Doctor).await;
    let statements = [
        "UPDATE audit_log SET kind = 'forged'",
        "DELETE FROM audit_log",
    ];
    if let crate::common::Backend::Postgres(db) = &app.backend {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        for sql in statements.iter().chain(["TRUNCATE audit_log"].iter()) {
            let err = sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
    } else {
        let file = app.dir.path().join("bedside.db");
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        for sql in statements {
            let err = sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
    }
    let admin = app.user(UserRole::Admin).await;
    let page = expect(
        StatusCode::OK,
        app.get("/api/audit?kind=user.created", &admin.token).await,
    );
    assert_eq!(entries(&page).len(), 2, "nothing was changed or lost");
}

/// A burst of room events overfills the queue: ordinary ones beyond it are dropped (and
/// counted), e-stops never are; and shutting down writes everything still queued.
async fn estops_are_never_dropped_and_the_queue_is_written_at_shutdown(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sink = app.api.audit_sink();
    let room = uuid::Uuid::new_v4().to_string();
    const LEASES: u64 = 6000;
    for i in 0..LEASES {
        sink.record_room_event(&room, None, "lease_changed", json!({ "epoch": i }));
        if i % 1000 == 999 {
            sink.record_room_event(&room, None, "estop_latched", json!({ "n": i }));
        }
    }
    let dropped = sink.dropped();
    assert!(dropped > 0, "the burst did overfill the queue");
    // Shutting down right away: nothing queued may be lost.
    let app = app.restart().await;
    let admin = app.user(UserRole::Admin).await;
    let estops = app.audit_kind(&admin.token, "room.estop_latched").await;
    assert_eq!(estops.len(), 6, "every e-stop, {dropped} others dropped");
    let mut written = 0u64;
    let mut next = "/api/audit?kind=room.lease_changed&limit=1000".to_string();
    loop {
        let page = expect(StatusCode::OK, app.get(&next, &admin.token).await);
        written += entries(&page).len() as u64;
        match page["next_before"].as_i64() {
            Some(before) => {
                next = format!("/api/audit?kind=room.lease_changed&limit=1000&before={before}")
            }
            None => break,
        }
    }
    assert_eq!(written, LEASES - dropped, "all that was queued was written");
}

/// RFC 4180 records: quoted fields with doubled quotes, CRLF between records. Strict: a stray
/// quote or a bare field is a test failure, since the export quotes every field.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        assert_eq!(chars.next(), Some('"'), "every field is quoted");
        let mut field = String::new();
        loop {
            match chars.next().expect("a closing quote") {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => break,
                c => field.push(c),
            }
        }
        row.push(field);
        match chars.next() {
            Some(',') => {}
            Some('\r') => {
                assert_eq!(chars.next(), Some('\n'), "CRLF");
                rows.push(std::mem::take(&mut row));
            }
            other => panic!("after a field: {other:?}"),
        }
    }
    assert!(row.is_empty(), "the last record ends in CRLF");
    rows
}

async fn entries_name_their_people_and_robots_and_export_as_csv(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    // Names a spreadsheet would run as formulas.
    let evil_name = "=HYPERLINK(\"http://x\",\"y\")";
    let doctor_user = app
        .api
        .create_user(
            "evil-doc",
            evil_name,
            crate::common::PASSWORD,
            UserRole::Doctor,
        )
        .await
        .unwrap();
    let doctor = expect(
        StatusCode::OK,
        app.login("evil-doc", crate::common::PASSWORD).await,
    );
    let doctor_token = doctor["access_token"].as_str().unwrap();
    let (robot, _) = app
        .api
        .create_robot("@SUM(1)", "-Ward", "")
        .await
        .map(|(r, c)| (r.id, c))
        .unwrap();
    let (elsewhere, _) = app.robot().await;
    app.book_ok(
        doctor_token,
        robot,
        from_now(minutes(2)),
        from_now(minutes(30)),
    )
    .await;
    app.book_ok(
        doctor_token,
        elsewhere,
        from_now(minutes(2)),
        from_now(minutes(30)),
    )
    .await;
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/robots/{robot}/credential"),
            &admin.token,
            json!({}),
        )
        .await,
    );
    let awkward = json!({ "text": "a \"quoted\", two\r\nlines; +1" });
    app.api
        .audit_sink()
        .write_room_event(
            &robot.to_string(),
            Some(&doctor_user.id.to_string()),
            "note",
            awkward.clone(),
        )
        .await
        .unwrap();

    // By robot (`robot` is `room`), with names and a total.
    let page = expect(
        StatusCode::OK,
        app.get(&format!("/api/audit?robot={robot}"), &admin.token)
            .await,
    );
    let in_room = entries(&page);
    assert_eq!(
        kinds(&page),
        vec![
            "room.note",
            "robot.credential_rotated",
            "booking.created",
            "robot.created"
        ]
    );
    assert_eq!(page["total"], 4);
    assert!(
        in_room.iter().all(|e| e["robot_name"] == "@SUM(1)"),
        "{page}"
    );
    let booked = &in_room[2];
    assert_eq!(
        (
            &booked["actor"],
            &booked["actor_name"],
            &booked["actor_kind"]
        ),
        (
            &json!(doctor_user.id.to_string()),
            &json!(evil_name),
            &json!("doctor")
        )
    );
    assert_eq!(
        (&in_room[1]["actor_name"], &in_room[1]["actor_kind"]),
        (&json!("Test admin"), &json!("admin"))
    );
    // A page's total counts every page.
    let first = expect(
        StatusCode::OK,
        app.get(&format!("/api/audit?room={robot}&limit=1"), &admin.token)
            .await,
    );
    assert_eq!((entries(&first).len(), &first["total"]), (1, &json!(4)));
    // A family of kinds, and `from`/`to`.
    let users = expect(
        StatusCode::OK,
        app.get("/api/audit?kind=user.*&limit=1000", &admin.token)
            .await,
    );
    assert!(
        kinds(&users).iter().all(|k| k.starts_with("user.")),
        "{users}"
    );
    assert_eq!(users["total"], 2, "two users created");
    let future = rfc3339(from_now(chrono::Duration::days(1)));
    let none = expect(
        StatusCode::OK,
        app.get(&format!("/api/audit?from={future}"), &admin.token)
            .await,
    );
    assert_eq!((entries(&none).len(), &none["total"]), (0, &json!(0)));
    let all_to = expect(
        StatusCode::OK,
        app.get(&format!("/api/audit?to={future}&limit=1000"), &admin.token)
            .await,
    );
    let everything = expect(
        StatusCode::OK,
        app.get("/api/audit?limit=1000", &admin.token).await,
    );
    assert_eq!(all_to["total"], everything["total"]);
    assert_eq!(
        everything["total"].as_u64().unwrap() as usize,
        entries(&everything).len()
    );
    let by_actor = expect(
        StatusCode::OK,
        app.get(
            &format!("/api/audit?actor={}&robot={robot}", doctor_user.id),
            &admin.token,
        )
        .await,
    );
    assert_eq!(kinds(&by_actor), vec!["room.note", "booking.created"]);

    // The same filter as CSV.
    let resp = app
        .http
        .get(app.url(&format!("/api/audit.csv?robot={robot}")))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"bedside-audit-"),
        "{disposition}"
    );
    assert!(resp.headers().get("x-bedside-truncated").is_none());
    let rows = parse_csv(&resp.text().await.unwrap());
    assert_eq!(
        rows[0],
        [
            "id",
            "at",
            "kind",
            "actor_id",
            "actor_name",
            "actor_kind",
            "robot_id",
            "robot_name",
            "detail"
        ]
    );
    let rows = &rows[1..];
    assert_eq!(rows.len(), in_room.len(), "one row per entry");
    for (row, e) in rows.iter().zip(in_room) {
        assert_eq!(row[0], e["id"].to_string());
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(&row[1]).unwrap(),
            parse_time(&e["at"])
        );
        assert_eq!(row[2], e["kind"].as_str().unwrap());
        assert_eq!(row[6], robot.to_string());
        // Defused: a leading ' and the rest as it was.
        assert_eq!(row[7], "'@SUM(1)");
        let detail: Value = serde_json::from_str(&row[8]).unwrap();
        assert_eq!(detail, e["detail"]);
    }
    assert_eq!(rows[0][4], format!("'{evil_name}"));
    assert_eq!(rows[0][5], "doctor");
    assert_eq!(rows[0][3], doctor_user.id.to_string());
    let detail: Value = serde_json::from_str(&rows[0][8]).unwrap();
    assert_eq!(detail, awkward, "quotes, commas and line breaks survive");
    assert_eq!(rows[2][4], format!("'{evil_name}"));
    assert_eq!(rows[1][4], "Test admin");

    // Exporting is itself recorded; a bad filter is a JSON error.
    let exported = app.audit_kind(&admin.token, "audit.exported").await;
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0]["actor"], admin.id.to_string());
    assert_eq!(exported[0]["detail"]["room"], robot.to_string());
    let (status, body) = app
        .get(
            &format!("/api/audit.csv?from={future}&to=2020-01-01T00:00:00Z"),
            &admin.token,
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("validation_failed")
        )
    );
}
