//! Every endpoint against every kind of caller, with the expected status of each cell written
//! down as a table and checked in one loop; and the table checked against the OpenAPI
//! description, so that a new route cannot be left out of it.

use std::collections::BTreeSet;

use bedside_api::UserRole;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{bearer, expect, from_now, id_of, minutes, rfc3339, Backend, TestApp};

/// Routes not in the table, and why.
const ELSEWHERE: [(&str, &str, &str); 1] = [(
    "POST",
    "/api/auth/login",
    "anyone may try; its answers depend on the back-off, not the caller (login.rs)",
)];

backend_tests!(authorization_matrix);

/// The callers, in column order.
const CALLERS: [&str; 7] = [
    "admin",
    "doctor",
    "student",
    "anonymous",
    "logged-out",
    "disabled",
    "robot",
];

struct Row {
    method: Method,
    /// With placeholders {robot}, {robot2}, {robot3}, {booking}, {booking2}, {doctor2},
    /// {student2}, {session}.
    path: &'static str,
    body: Option<Value>,
    expect: [u16; 7],
}

fn row(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 7]) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

async fn authorization_matrix(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let doctor2 = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;
    let student2 = app.user(UserRole::Student).await;
    let gone = app.user(UserRole::Doctor).await;
    let (status, _) = app
        .call(
            Method::POST,
            "/api/auth/logout",
            Some(&bearer(&gone.token)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Disabled by an admin while logged in: every call with their token answers 401.
    let disabled = app.user(UserRole::Doctor).await;
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/users/{}/disable", disabled.id),
            &admin.token,
            json!({}),
        )
        .await,
    );
    let (robot, credential) = app.robot().await;
    let (robot2, _) = app.robot().await;
    // Retired by the admin's row.
    let (robot3, _) = app.robot().await;

    // `booking`: in its join window, the student invited as observer. `booking2`: to cancel.
    let booking = app
        .book_ok(
            &doctor.token,
            robot,
            from_now(minutes(2)),
            from_now(minutes(62)),
        )
        .await;
    let booking2 = app
        .book_ok(
            &doctor.token,
            robot,
            from_now(minutes(120)),
            from_now(minutes(180)),
        )
        .await;
    for b in [&booking, &booking2] {
        app.invite_ok(&doctor.token, b, student.id, "observer")
            .await;
    }

    let auth: [Option<String>; 7] = [
        Some(bearer(&admin.token)),
        Some(bearer(&doctor.token)),
        Some(bearer(&student.token)),
        None,
        Some(bearer(&gone.token)),
        Some(bearer(&disabled.token)),
        Some(format!("Robot {credential}")),
    ];
    let new_user = json!({ "username": "matrix-user", "display_name": "M", "password": "long enough password", "role": "student" });
    let new_robot = json!({ "name": "M", "ward": "W" });
    let new_booking = json!({
        "robot_id": robot,
        "starts_at": rfc3339(from_now(chrono::Duration::days(1))),
        "ends_at": rfc3339(from_now(chrono::Duration::days(1) + minutes(30))),
    });
    let invite = json!({ "user_id": doctor2.id, "role": "consultant" });
    use Method as M;

    #[rustfmt::skip]
    let table = [
        //                                                                     admin doctor student anon  out  disabled robot
        row(M::GET,    "/healthz",                                     None,                    [200, 200, 200, 200, 200, 200, 200]),
        row(M::GET,    "/.well-known/jwks.json",                       None,                    [200, 200, 200, 200, 200, 200, 200]),
        row(M::GET,    "/api/openapi.json",                            None,                    [200, 200, 200, 200, 200, 200, 200]),
        row(M::POST,   "/api/auth/refresh",                            Some(json!({"refresh_token": "bsr_x"})), [401, 401, 401, 401, 401, 401, 401]),
        // Nobody can use the setup: an admin exists (setup.rs tests it open).
        row(M::GET,    "/api/setup",                                   None,                    [200, 200, 200, 200, 200, 200, 200]),
        row(M::POST,   "/api/setup",                                   Some(json!({"code": "bss_x", "username": "x-root", "display_name": "X", "password": "long enough password"})), [409, 409, 409, 409, 409, 409, 409]),
        row(M::GET,    "/api/me",                                      None,                    [200, 200, 200, 401, 401, 401, 401]),
        row(M::GET,    "/api/users",                                   None,                    [200, 200, 403, 401, 401, 401, 401]),
        row(M::GET,    "/api/users?role=admin",                        None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/users",                                   Some(new_user),          [201, 403, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/users/{student2}/disable",                None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/users/{student2}/enable",                 None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::GET,    "/api/users?q=test&limit=5&offset=0",           None,                    [200, 200, 403, 401, 401, 401, 401]),
        row(M::GET,    "/api/users?disabled=true",                     None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::PATCH,  "/api/users/{student2}",                        Some(json!({"display_name": "Renamed"})), [200, 403, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/users/{student2}/password",               None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::GET,    "/api/robots",                                  None,                    [200, 200, 200, 401, 401, 401, 401]),
        row(M::GET,    "/api/robots?include_retired=true",             None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/robots",                                  Some(new_robot),         [201, 403, 403, 401, 401, 401, 401]),
        row(M::PATCH,  "/api/robots/{robot2}",                         Some(json!({"ward": "W2"})), [200, 403, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/robots/{robot3}/retire",                  None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/robots/{robot2}/credential",              None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/robots/{robot}/publish-token",            None,                    [401, 401, 401, 401, 401, 401, 200]),
        row(M::GET,    "/api/robots/{robot}/busy",                     None,                    [200, 200, 200, 401, 401, 401, 401]),
        row(M::GET,    "/api/robots/{robot}/roster",                   None,                    [200, 403, 403, 401, 401, 401, 200]),
        // No media node is connected here: the revoke is stored and answered all the same.
        row(M::POST,   "/api/robots/{robot}/lease/revoke",             None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::GET,    "/api/robots/live",                             None,                    [200, 200, 200, 401, 401, 401, 401]),
        row(M::GET,    "/api/rooms",                                   None,                    [200, 403, 403, 401, 401, 401, 401]),
        // No media node reports a room here: nothing live to end (live_status.rs ends one).
        row(M::POST,   "/api/rooms/{robot}/participants/{session}/end", None,                   [404, 403, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/bookings",                                Some(new_booking),       [403, 201, 403, 401, 401, 401, 401]),
        row(M::GET,    "/api/bookings",                                None,                    [200, 200, 200, 401, 401, 401, 401]),
        row(M::GET,    "/api/bookings/{booking}",                      None,                    [200, 200, 200, 401, 401, 401, 401]),
        row(M::POST,   "/api/bookings/{booking}/invitations",          Some(invite),            [403, 201, 403, 401, 401, 401, 401]),
        row(M::DELETE, "/api/bookings/{booking}/invitations/{doctor2}", None,                   [403, 204, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/bookings/{booking}/join",                 None,                    [403, 200, 200, 401, 401, 401, 401]),
        row(M::POST,   "/api/bookings/{booking2}/cancel",              None,                    [200, 200, 403, 401, 401, 401, 401]),
        row(M::GET,    "/api/audit",                                   None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::GET,    "/api/audit?kind=user.*&robot={robot}",         None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::GET,    "/api/audit.csv",                               None,                    [200, 403, 403, 401, 401, 401, 401]),
        row(M::POST,   "/api/auth/logout",                             None,                    [204, 204, 204, 401, 401, 401, 401]),
    ];

    // Every route of the API is in the table (or listed as tested elsewhere).
    let doc = expect(
        StatusCode::OK,
        app.call(Method::GET, "/api/openapi.json", None, None).await,
    );
    let routes: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            let methods: Vec<String> = item
                .as_object()
                .expect("path item")
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            methods.into_iter().map(move |m| (m, shape(path)))
        })
        .collect();
    let tabled: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.to_string(), shape(r.path)))
        .chain(ELSEWHERE.iter().map(|(m, p, _)| (m.to_string(), shape(p))))
        .collect();
    assert_eq!(routes, tabled, "the table and the API's routes differ");

    let mut failures = Vec::new();
    for r in &table {
        let path = r
            .path
            .replace("{robot}", &robot.to_string())
            .replace("{robot2}", &robot2.to_string())
            .replace("{robot3}", &robot3.to_string())
            .replace("{booking}", &id_of(&booking).to_string())
            .replace("{booking2}", &id_of(&booking2).to_string())
            .replace("{doctor2}", &doctor2.id.to_string())
            .replace("{student2}", &student2.id.to_string())
            .replace("{session}", "s1");
        for (caller, (header, expected)) in CALLERS.iter().zip(auth.iter().zip(r.expect)) {
            let (status, body) = app
                .call(r.method.clone(), &path, header.as_deref(), r.body.as_ref())
                .await;
            if status.as_u16() != expected {
                failures.push(format!(
                    "{} {} as {caller}: expected {expected}, got {status} {body}",
                    r.method, r.path
                ));
            }
            if status.is_client_error() && body.get("error").is_none() {
                failures.push(format!(
                    "{} {} as {caller}: error without JSON body: {body}",
                    r.method, r.path
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cells wrong:\n{}",
        failures.len(),
        table.len() * CALLERS.len(),
        failures.join("\n")
    );
}

/// A path with its placeholders made alike and no query: `/api/robots/{robot2}/busy?x=1` ->
/// `/api/robots/{}/busy`.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.split('?').next().unwrap_or(path).chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out
}
