//! The served OpenAPI document against what the API really answers, for the findings of the
//! schemathesis run (`tests/contract/run.sh`, docs/reliability.md) that are fixed:
//!
//! - every operation documents the 400 that its extractors give for a malformed path id, query
//!   string or body (and the 422 for JSON of the wrong shape where it takes a body), and the API
//!   does answer so with an `ErrorBody`;
//! - the bookings listing's `limit` declares the range it enforces (1-1000), a booking's
//!   `minutes` its minimum and `note` its length, so a schema-valid request is not refused;
//! - likewise the audit log's `limit`, a password's minimum length and a robot's name, ward and
//!   description (lengths, and a pattern for "no control characters, not blank").
//!
//! Real parts: the API with SQLite, served on loopback, called over HTTP.

use bedside_api::testing::{Backend, TestApp};
use bedside_api::UserRole;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Every (method, path) in the document, with its operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in ["get", "post", "put", "patch", "delete"] {
            if let Some(op) = item.get(m) {
                out.push((m.to_string(), path.clone(), op.clone()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_documents_and_answers_400_for_malformed_input() {
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.user(UserRole::Admin).await;
    let (_, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    let ops = operations(&doc);
    assert!(ops.len() > 20, "the document lists the API: {}", ops.len());
    let mut answered = 0;
    for (method, path, op) in &ops {
        assert!(
            op["responses"].get("400").is_some(),
            "{method} {path} does not document 400"
        );
        if op.get("requestBody").is_some() {
            assert!(
                op["responses"].get("422").is_some(),
                "{method} {path} takes a body and does not document 422"
            );
        }
        // A path id that is not a UUID: the API's answer must be one the document lists.
        if path.contains('{') && path != "/api/setup" {
            let bad: String = path
                .split('/')
                .map(|s| if s.starts_with('{') { "not-a-uuid" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let m: Method = method.to_uppercase().parse().unwrap();
            let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
            let auth = format!("Bearer {}", admin.token);
            let (status, answer) = app.call(m, &bad, Some(&auth), body.as_ref()).await;
            assert!(
                op["responses"].get(status.as_str()).is_some(),
                "{method} {bad}: {status} is not in the document: {answer}"
            );
            if status == StatusCode::BAD_REQUEST {
                assert!(
                    answer["error"].is_string() && answer["message"].is_string(),
                    "{answer}"
                );
                answered += 1;
            }
        }
    }
    assert!(answered >= 10, "malformed ids answered 400: {answered}");
    // A query string that does not parse: 400, documented.
    let (status, answer) = app.get("/api/bookings?from=yesterday", &admin.token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // JSON of the wrong shape for a body: 422, documented (schemathesis: `[null]` to login).
    let (status, answer) = app
        .call(Method::POST, "/api/auth/login", None, Some(&json!([null])))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
}

/// `path`'s `limit` query parameter declares 1-1000, and the API answers by it on both sides of
/// each bound (`token` may list `path`).
async fn limit_is_declared_and_enforced(app: &TestApp, doc: &Value, path: &str, token: &str) {
    let params = doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: parameters"))
        .clone();
    let limit = params
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap_or_else(|| panic!("{path}: limit parameter"));
    assert_eq!(limit["schema"]["minimum"], 1, "{path}: {limit}");
    assert_eq!(limit["schema"]["maximum"], 1000, "{path}: {limit}");
    for (n, want) in [(0, 422), (1, 200), (1000, 200), (1001, 422)] {
        let (status, body) = app.get(&format!("{path}?limit={n}"), token).await;
        assert_eq!(status.as_u16(), want, "{path} limit={n}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_limits_are_in_the_schema() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (_, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    // What the schema says is what the API enforces, on both sides of each bound.
    limit_is_declared_and_enforced(&app, &doc, "/api/bookings", &doctor.token).await;
    let new_booking = &doc["components"]["schemas"]["NewBooking"]["properties"];
    assert_eq!(new_booking["minutes"]["minimum"], 1, "{new_booking}");
    assert_eq!(new_booking["note"]["maxLength"], 500, "{new_booking}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_password_and_robot_limits_are_in_the_schema() {
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.user(UserRole::Admin).await;
    let (_, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;

    limit_is_declared_and_enforced(&app, &doc, "/api/audit", &admin.token).await;

    let schemas = &doc["components"]["schemas"];
    for s in ["CreateUser", "FirstAdmin"] {
        assert_eq!(
            schemas[s]["properties"]["password"]["minLength"], 10,
            "{s}: {}",
            schemas[s]
        );
    }
    for (pw, want) in [("nine-char", 422), ("ten-chars!", 201)] {
        let body = json!({"username": format!("u{}", pw.len()), "display_name": "Dr Len",
                          "password": pw, "role": "doctor"});
        let (status, answer) = app
            .call(
                Method::POST,
                "/api/users",
                Some(&format!("Bearer {}", admin.token)),
                Some(&body),
            )
            .await;
        assert_eq!(status.as_u16(), want, "password {pw:?}: {answer}");
    }

    // The robot's text fields: the schema's rules, and the API answering by them on both sides.
    for s in ["NewRobot", "RobotUpdate"] {
        let props = &schemas[s]["properties"];
        for f in ["name", "ward"] {
            assert_eq!(props[f]["minLength"], 1, "{s}.{f}");
            assert_eq!(props[f]["maxLength"], 100, "{s}.{f}");
            assert!(props[f]["pattern"].is_string(), "{s}.{f}: {}", props[f]);
        }
        assert_eq!(props["description"]["maxLength"], 1000, "{s}.description");
    }
    let name_rule = regex::Regex::new(
        schemas["NewRobot"]["properties"]["name"]["pattern"]
            .as_str()
            .expect("pattern"),
    )
    .expect("the pattern is a regular expression");
    let long = "r".repeat(100);
    let too_long = "r".repeat(101);
    let cases: [(&str, u16); 7] = [
        ("Bay 4 robot", 201),
        (&long, 201),
        (&too_long, 422),
        ("", 422),
        ("   ", 422),
        ("bay\u{1}4", 422),
        ("\tbay", 422),
    ];
    for (i, (name, want)) in cases.iter().enumerate() {
        // The schema and the API agree on every case.
        assert_eq!(
            name_rule.is_match(name) && (1..=100).contains(&name.chars().count()),
            *want == 201,
            "schema on {name:?}"
        );
        let body = json!({"name": name, "ward": format!("Ward {i}")});
        let (status, answer) = app
            .call(
                Method::POST,
                "/api/robots",
                Some(&format!("Bearer {}", admin.token)),
                Some(&body),
            )
            .await;
        assert_eq!(status.as_u16(), *want, "robot name {name:?}: {answer}");
    }
}
