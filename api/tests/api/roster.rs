//! The roster for the robot's screen: who takes part in the booking on now, with display names;
//! asked by the robot with its credential, or by an admin, and nobody else.

use bedside_api::UserRole;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{bearer, expect, minutes, Backend, TestApp, PASSWORD};

backend_tests!(roster_of_the_booking_on_now, roster_authorization);

async fn roster(app: &TestApp, robot: uuid::Uuid, auth: &str) -> (StatusCode, Value) {
    app.call(
        Method::GET,
        &format!("/api/robots/{robot}/roster"),
        Some(auth),
        None,
    )
    .await
}

async fn roster_of_the_booking_on_now(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let consultant = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;
    let gone = app.user(UserRole::Student).await;
    let next_doctor = app.user(UserRole::Doctor).await;
    let (robot, credential) = app.robot().await;
    let as_robot = format!("Robot {credential}");

    // Nothing booked: an empty roster.
    assert_eq!(
        expect(StatusCode::OK, roster(&app, robot, &as_robot).await),
        json!([])
    );

    let booking = app
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    app.invite_ok(&doctor.token, &booking, consultant.id, "consultant")
        .await;
    app.invite_ok(&doctor.token, &booking, student.id, "observer")
        .await;
    app.invite_ok(&doctor.token, &booking, gone.id, "observer")
        .await;
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/users/{}/disable", gone.id),
            &admin.token,
            json!({}),
        )
        .await,
    );
    // The next booking, back to back.
    let next = app
        .book_from_now(&next_doctor.token, robot, minutes(30), minutes(60))
        .await;

    let expected = json!([
        { "sub": doctor.id, "display_name": "Test doctor", "role": "doctor" },
        { "sub": consultant.id, "display_name": "Test doctor", "role": "consultant" },
        { "sub": student.id, "display_name": "Test student", "role": "observer" },
    ]);
    assert_eq!(
        expect(StatusCode::OK, roster(&app, robot, &as_robot).await),
        expected
    );
    assert_eq!(
        expect(
            StatusCode::OK,
            roster(&app, robot, &bearer(&admin.token)).await
        ),
        expected,
        "admins see the same"
    );

    // In the next booking's grace period the current one still shows; once it is over (or
    // cancelled), the next one does.
    app.clock.advance(minutes(27));
    assert_eq!(
        expect(StatusCode::OK, roster(&app, robot, &as_robot).await)[0]["sub"],
        doctor.id.to_string()
    );
    // (Access tokens last 15 min: log in again after moving the clock.)
    let a = &app;
    let relogin = |username: String| async move {
        let body = expect(StatusCode::OK, a.login(&username, PASSWORD).await);
        body["access_token"].as_str().unwrap().to_string()
    };
    let doctor_token = relogin(doctor.username.clone()).await;
    let next_token = relogin(next_doctor.username.clone()).await;
    app.cancel_ok(&doctor_token, &booking).await;
    let shown = expect(StatusCode::OK, roster(&app, robot, &as_robot).await);
    assert_eq!(
        shown,
        json!([{ "sub": next_doctor.id, "display_name": "Test doctor", "role": "doctor" }])
    );
    app.cancel_ok(&next_token, &next).await;
    assert_eq!(
        expect(StatusCode::OK, roster(&app, robot, &as_robot).await),
        json!([])
    );
}

async fn roster_authorization(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;
    let (robot, credential) = app.robot().await;
    let (other_robot, other_credential) = app.robot().await;
    app.book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;

    for (who, auth, expected) in [
        ("the robot", format!("Robot {credential}"), StatusCode::OK),
        ("an admin", bearer(&admin.token), StatusCode::OK),
        (
            "another robot",
            format!("Robot {other_credential}"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a wrong credential",
            "Robot bsc_nope".to_string(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "the booking's doctor",
            bearer(&doctor.token),
            StatusCode::FORBIDDEN,
        ),
        ("a student", bearer(&student.token), StatusCode::FORBIDDEN),
        (
            "nobody",
            "Bearer bsa_nope".to_string(),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let (status, body) = roster(&app, robot, &auth).await;
        assert_eq!(status, expected, "{who}: {body}");
    }
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/robots/{robot}/roster"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no credentials");
    // The other robot sees its own (empty) roster; unknown robots are 404 to admins and 401 to
    // credentials.
    assert_eq!(
        expect(
            StatusCode::OK,
            roster(&app, other_robot, &format!("Robot {other_credential}")).await
        ),
        json!([])
    );
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        roster(&app, unknown, &bearer(&admin.token)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        roster(&app, unknown, &format!("Robot {credential}"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Names go to the robot, never into the audit log. (The listing adds the names of actors
    // and robots as they are now, read beside the entries: leave those out.)
    let page = expect(
        StatusCode::OK,
        app.get("/api/audit?limit=1000", &admin.token).await,
    );
    let text = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut e = e.clone();
            for named in ["actor_name", "actor_kind", "robot_name"] {
                e.as_object_mut().unwrap().remove(named);
            }
            e.to_string()
        })
        .collect::<String>();
    assert!(!text.contains("Test doctor"), "{text}");
}
