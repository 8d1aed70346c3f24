//! Booking rules: time checks, overlaps, back-to-back, cancellation, invitations, visibility.

use bedside_api::UserRole;
use chrono::SubsecRound;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{
    bearer, expect, from_now, id_of, minutes, parse_time, rfc3339, Backend, TestApp,
};

backend_tests!(
    slot_rules,
    overlaps_back_to_back_and_rebooking,
    invitations_and_visibility,
    others_bookings_are_out_of_reach,
    ended_bookings_take_no_changes,
    start_now_books_from_the_servers_clock,
);

async fn slot_rules(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;
    let t = from_now(chrono::Duration::days(1));

    let (status, body) = app
        .book(
            &doctor.token,
            robot,
            from_now(-minutes(90)),
            from_now(-minutes(30)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "past: {body}");
    assert_eq!(body["error"], "validation_failed");
    assert!(body["message"].as_str().unwrap().contains("past"));

    let (status, _) = app
        .book(
            &doctor.token,
            robot,
            from_now(-minutes(30)),
            from_now(minutes(30)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "already started");

    let (status, _) = app.book(&doctor.token, robot, t, t).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "empty slot");
    let (status, _) = app.book(&doctor.token, robot, t + minutes(60), t).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "ends before it starts"
    );
    let (status, _) = app
        .book(&doctor.token, robot, t, t + minutes(4 * 60 + 1))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "longer than 4 h");
    let (status, _) = app
        .book(&doctor.token, uuid::Uuid::new_v4(), t, t + minutes(30))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown robot");

    let long_note = json!({
        "robot_id": robot, "starts_at": rfc3339(t), "ends_at": rfc3339(t + minutes(30)),
        "note": "x".repeat(501),
    });
    assert_eq!(
        app.post("/api/bookings", &doctor.token, long_note).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Exactly the maximum, with an offset other than Z and a fraction of a second.
    let body = json!({
        "robot_id": robot,
        "starts_at": (t + minutes(120)).with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false).replace(".000", ".250"),
        "ends_at": rfc3339(t + minutes(6 * 60)),
        "note": "  ward round  ",
    });
    let (status, b) = app.post("/api/bookings", &doctor.token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert_eq!(
        parse_time(&b["starts_at"]),
        t + minutes(120),
        "normalised to UTC whole seconds"
    );
    assert_eq!(parse_time(&b["ends_at"]), t + minutes(360));
    assert_eq!(b["status"], "confirmed");
    assert_eq!(b["note"], "ward round");
    assert_eq!(b["doctor_id"], doctor.id.to_string());
    assert_eq!(b["robot_id"], robot.to_string());
    assert_eq!(b["invitations"], json!([]));
}

async fn overlaps_back_to_back_and_rebooking(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let other = app.user(UserRole::Doctor).await;
    let admin = app.user(UserRole::Admin).await;
    let (robot, _) = app.robot().await;
    let (robot2, _) = app.robot().await;
    let t = from_now(chrono::Duration::days(2));

    let (status, first) = app
        .book(&doctor.token, robot, t + minutes(60), t + minutes(120))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first_id = id_of(&first);

    for (s, e) in [(90, 150), (30, 90), (70, 80), (0, 180), (60, 120)] {
        let (status, body) = app
            .book(&other.token, robot, t + minutes(s), t + minutes(e))
            .await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "[{s}, {e}) overlaps [60, 120): {body}"
        );
        assert_eq!(body["error"], "booking_conflict");
        assert_eq!(body["conflict"]["booking_id"], first_id.to_string());
        assert_eq!(parse_time(&body["conflict"]["starts_at"]), t + minutes(60));
        assert_eq!(parse_time(&body["conflict"]["ends_at"]), t + minutes(120));
    }

    // Half-open slots: touching ends is fine on both sides.
    assert_eq!(
        app.book(&other.token, robot, t + minutes(120), t + minutes(180))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        app.book(&other.token, robot, t, t + minutes(60)).await.0,
        StatusCode::CREATED
    );
    // Another robot is free at the same time.
    assert_eq!(
        app.book(&other.token, robot2, t + minutes(60), t + minutes(120))
            .await
            .0,
        StatusCode::CREATED
    );

    // Only the owner or an admin may cancel; others cannot even see the booking.
    let cancel = format!("/api/bookings/{first_id}/cancel");
    assert_eq!(
        app.post(&cancel, &other.token, json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, cancelled) = app.post(&cancel, &admin.token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (status, again) = app.post(&cancel, &doctor.token, json!({})).await;
    assert_eq!(
        (status, &again["status"]),
        (StatusCode::OK, &json!("cancelled")),
        "idempotent"
    );

    // The cancelled slot can be booked again, once.
    let (status, rebooked) = app
        .book(&other.token, robot, t + minutes(60), t + minutes(120))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rebooked}");
    let (status, body) = app
        .book(&doctor.token, robot, t + minutes(60), t + minutes(120))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["conflict"]["booking_id"], rebooked["id"]);
}

async fn invitations_and_visibility(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let consultant = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;
    let outsider = app.user(UserRole::Student).await;
    let admin = app.user(UserRole::Admin).await;
    let (robot, _) = app.robot().await;
    let (robot2, _) = app.robot().await;
    let t = from_now(chrono::Duration::days(3));

    let booking = expect(
        StatusCode::CREATED,
        app.book(&doctor.token, robot, t, t + minutes(60)).await,
    );
    let id = id_of(&booking);
    let other_robot_booking = expect(
        StatusCode::CREATED,
        app.book(&doctor.token, robot2, t, t + minutes(60)).await,
    );
    let invitations = format!("/api/bookings/{id}/invitations");

    let invite = |user: uuid::Uuid, role: &str| json!({ "user_id": user, "role": role });
    let (status, b) = app
        .post(
            &invitations,
            &doctor.token,
            invite(consultant.id, "consultant"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let (status, b) = app
        .post(&invitations, &doctor.token, invite(student.id, "observer"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        b["invitations"],
        json!([
            { "user_id": consultant.id, "role": "consultant" },
            { "user_id": student.id, "role": "observer" },
        ])
    );

    for (user, role, expected) in [
        (outsider.id, "consultant", StatusCode::UNPROCESSABLE_ENTITY), // a student as consultant
        (consultant.id, "consultant", StatusCode::CONFLICT),           // already invited
        (doctor.id, "consultant", StatusCode::UNPROCESSABLE_ENTITY),   // the booking's own doctor
        (admin.id, "observer", StatusCode::UNPROCESSABLE_ENTITY),      // admins are not invitees
        (uuid::Uuid::new_v4(), "observer", StatusCode::NOT_FOUND),
    ] {
        let (status, body) = app
            .post(&invitations, &doctor.token, invite(user, role))
            .await;
        assert_eq!(status, expected, "{role}: {body}");
    }
    let (status, body) = app
        .post(
            &invitations,
            &doctor.token,
            json!({ "user_id": outsider.id, "role": "boss" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Invitees may not invite.
    let (status, _) = app
        .post(
            &invitations,
            &consultant.token,
            invite(outsider.id, "observer"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Who sees the booking.
    let path = format!("/api/bookings/{id}");
    for (who, token, expected) in [
        ("doctor", &doctor.token, StatusCode::OK),
        ("consultant", &consultant.token, StatusCode::OK),
        ("observer", &student.token, StatusCode::OK),
        ("admin", &admin.token, StatusCode::OK),
        ("outsider", &outsider.token, StatusCode::NOT_FOUND),
    ] {
        assert_eq!(app.get(&path, token).await.0, expected, "{who}");
    }
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    };
    let list = expect(
        StatusCode::OK,
        app.get("/api/bookings", &student.token).await,
    );
    assert_eq!(ids(&list), vec![id.to_string()]);
    let list = expect(
        StatusCode::OK,
        app.get("/api/bookings", &outsider.token).await,
    );
    assert_eq!(ids(&list), Vec::<String>::new());
    let list = expect(
        StatusCode::OK,
        app.get("/api/bookings", &doctor.token).await,
    );
    assert_eq!(list.as_array().unwrap().len(), 2);
    let list = expect(
        StatusCode::OK,
        app.get(&format!("/api/bookings?robot_id={robot2}"), &doctor.token)
            .await,
    );
    assert_eq!(
        ids(&list),
        vec![other_robot_booking["id"].as_str().unwrap().to_string()]
    );
    let list = expect(StatusCode::OK, app.get("/api/bookings", &admin.token).await);
    assert_eq!(list.as_array().unwrap().len(), 2, "admins see all");
    let list = expect(
        StatusCode::OK,
        app.get("/api/bookings?mine=true", &admin.token).await,
    );
    assert_eq!(list.as_array().unwrap().len(), 0, "admins' own");
    let window = format!(
        "/api/bookings?from={}&to={}",
        rfc3339(t + minutes(60)),
        rfc3339(t + minutes(120))
    );
    let list = expect(StatusCode::OK, app.get(&window, &doctor.token).await);
    assert_eq!(
        list.as_array().unwrap().len(),
        0,
        "ends exactly at from: outside"
    );

    // Busy slots show times, not people.
    let (status, busy) = app
        .get(
            &format!("/api/robots/{robot}/busy?from={}", rfc3339(t - minutes(5))),
            &outsider.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        busy,
        json!([{ "starts_at": rfc3339(t), "ends_at": rfc3339(t + minutes(60)) }])
    );

    // Withdrawing an invitation hides the booking again.
    let remove = format!("{invitations}/{}", consultant.id);
    let (status, _) = app
        .call(
            Method::DELETE,
            &remove,
            Some(&bearer(&consultant.token)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(Method::DELETE, &remove, Some(&bearer(&doctor.token)), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(Method::DELETE, &remove, Some(&bearer(&doctor.token)), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&path, &consultant.token).await.0,
        StatusCode::NOT_FOUND
    );

    // A cancelled booking takes no invitations.
    app.cancel_ok(&doctor.token, &booking).await;
    let (status, body) = app
        .post(
            &invitations,
            &doctor.token,
            invite(consultant.id, "consultant"),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("booking_cancelled"))
    );
}

/// A doctor acting on a booking that is not theirs: a stranger cannot even see it (404 for
/// everything), a consultant sees it but may change nothing (403), and nothing changed.
async fn others_bookings_are_out_of_reach(backend: Backend) {
    let app = TestApp::start(backend).await;
    let owner = app.user(UserRole::Doctor).await;
    let consultant = app.user(UserRole::Doctor).await;
    let stranger = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;
    let (robot, _) = app.robot().await;
    let booking = app
        .book_ok(
            &owner.token,
            robot,
            from_now(minutes(2)),
            from_now(minutes(60)),
        )
        .await;
    app.invite_ok(&owner.token, &booking, consultant.id, "consultant")
        .await;
    let id = id_of(&booking);
    let invite = json!({ "user_id": student.id, "role": "observer" });
    for (who, token, expected) in [
        ("stranger", &stranger.token, StatusCode::NOT_FOUND),
        ("consultant", &consultant.token, StatusCode::FORBIDDEN),
    ] {
        let tries = [
            app.post(&format!("/api/bookings/{id}/cancel"), token, json!({}))
                .await,
            app.post(
                &format!("/api/bookings/{id}/invitations"),
                token,
                invite.clone(),
            )
            .await,
            app.delete(
                &format!("/api/bookings/{id}/invitations/{}", consultant.id),
                token,
            )
            .await,
        ];
        for (what, (status, body)) in ["cancel", "invite", "uninvite"].iter().zip(tries) {
            assert_eq!(status, expected, "{who} {what}: {body}");
        }
    }
    // The stranger cannot join it either; the consultant may (as a consultant).
    assert_eq!(
        app.join(&stranger.token, &booking).await.0,
        StatusCode::NOT_FOUND
    );
    let j = app.join_ok(&consultant.token, &booking).await;
    assert_eq!(j["can_control"], false);
    let unchanged = expect(
        StatusCode::OK,
        app.get(&format!("/api/bookings/{id}"), &owner.token).await,
    );
    assert_eq!(unchanged["status"], "confirmed");
    assert_eq!(
        unchanged["invitations"],
        json!([{ "user_id": consultant.id, "role": "consultant" }])
    );
}

/// A booking that has ended can be neither cancelled nor have its invitations changed.
async fn ended_bookings_take_no_changes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let consultant = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;
    let (robot, _) = app.robot().await;
    // Booked (and an invitation made) while the clock said it was two hours ago.
    app.clock.set_offset(-minutes(120));
    let booking = app
        .book_from_now(&doctor.token, robot, minutes(1), minutes(31))
        .await;
    app.invite_ok(&doctor.token, &booking, consultant.id, "consultant")
        .await;
    app.clock.set_offset(chrono::Duration::zero());
    let id = id_of(&booking);

    let tries = [
        (
            "cancel",
            app.post(
                &format!("/api/bookings/{id}/cancel"),
                &doctor.token,
                json!({}),
            )
            .await,
        ),
        (
            "invite",
            app.post(
                &format!("/api/bookings/{id}/invitations"),
                &doctor.token,
                json!({ "user_id": student.id, "role": "observer" }),
            )
            .await,
        ),
        (
            "uninvite",
            app.delete(
                &format!("/api/bookings/{id}/invitations/{}", consultant.id),
                &doctor.token,
            )
            .await,
        ),
    ];
    for (what, (status, body)) in tries {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        assert_eq!(body["error"], "validation_failed", "{what}");
        assert!(
            body["message"].as_str().unwrap_or("").contains("ended"),
            "{what}: {body}"
        );
    }
    let unchanged = expect(
        StatusCode::OK,
        app.get(&format!("/api/bookings/{id}"), &doctor.token).await,
    );
    assert_eq!(unchanged["status"], "confirmed");
    assert_eq!(unchanged["invitations"].as_array().map(Vec::len), Some(1));
}

/// "Start now": no `starts_at`, a length in minutes; the slot starts at the server's now (its
/// clock is hours off the client's here), so the doctor may join at once.
async fn start_now_books_from_the_servers_clock(backend: Backend) {
    let app = TestApp::start(backend).await;
    let skew = chrono::Duration::hours(3) + chrono::Duration::seconds(7 * 60 + 23);
    app.config.clock.set_offset(skew);
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;

    let before = app.config.clock.now().trunc_subsecs(0);
    let booking = expect(
        StatusCode::CREATED,
        app.post(
            "/api/bookings",
            &doctor.token,
            json!({ "robot_id": robot, "minutes": 20 }),
        )
        .await,
    );
    let after = app.config.clock.now();
    let starts_at = parse_time(&booking["starts_at"]);
    assert!(
        before <= starts_at && starts_at <= after,
        "starts at the server's now: {starts_at} not in [{before}, {after}]"
    );
    assert_eq!(parse_time(&booking["ends_at"]) - starts_at, minutes(20));
    let join = app.join_ok(&doctor.token, &booking).await;
    assert_eq!(
        join["can_control"], true,
        "the doctor drives at once: {join}"
    );

    // The length is required, once, and sane.
    for (body, what) in [
        (json!({ "robot_id": robot }), "no end"),
        (json!({ "robot_id": robot, "minutes": 0 }), "zero minutes"),
        (json!({ "robot_id": robot, "minutes": 241 }), "too long"),
        (
            json!({ "robot_id": robot, "minutes": 10, "ends_at": rfc3339(after + minutes(30)) }),
            "both",
        ),
        (json!({ "robot_id": robot, "minutes": -5 }), "negative"),
    ] {
        let (status, answer) = app.post("/api/bookings", &doctor.token, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {answer}");
    }
}
