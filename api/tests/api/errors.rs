//! Error shapes on bad input, and the service documents: health, JWKS, OpenAPI.

use bedside_api::UserRole;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, Backend, TestApp};

backend_tests!(
    bad_input_gets_json_errors,
    far_times_are_bad_requests,
    openapi_lists_every_path
);

async fn bad_input_gets_json_errors(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let auth = format!("Bearer {}", admin.token);

    let raw = |method: Method, path: &str, content_type: Option<&str>, body: String| {
        let mut req = app
            .http
            .request(method, app.url(path))
            .header("authorization", &auth)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    let json_ct = Some("application/json");

    let cases: Vec<(&str, (StatusCode, Value), StatusCode, &str)> = vec![
        ("malformed JSON", raw(Method::POST, "/api/robots", json_ct, "{\"name\": ".into()).await, StatusCode::BAD_REQUEST, "bad_request"),
        ("missing field", raw(Method::POST, "/api/robots", json_ct, "{\"name\": \"x\"}".into()).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("wrong type", raw(Method::POST, "/api/robots", json_ct, "{\"name\": 1, \"ward\": \"w\"}".into()).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("no content type", raw(Method::POST, "/api/robots", None, "{}".into()).await, StatusCode::BAD_REQUEST, "bad_request"),
        ("too large", raw(Method::POST, "/api/robots", json_ct, format!("{{\"name\": \"{}\"}}", "x".repeat(100_000))).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ("empty name", raw(Method::POST, "/api/robots", json_ct, "{\"name\": \" \", \"ward\": \"w\"}".into()).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("bad uuid", raw(Method::GET, "/api/bookings/not-a-uuid", None, String::new()).await, StatusCode::BAD_REQUEST, "bad_request"),
        ("bad query", raw(Method::GET, "/api/bookings?from=yesterday", None, String::new()).await, StatusCode::BAD_REQUEST, "bad_request"),
        ("bad time order", raw(Method::GET, "/api/audit?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z", None, String::new()).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("unknown route", raw(Method::GET, "/api/nothing/here", None, String::new()).await, StatusCode::NOT_FOUND, "not_found"),
        ("wrong method", raw(Method::DELETE, "/api/robots", None, String::new()).await, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ("unknown booking", raw(Method::GET, &format!("/api/bookings/{}", uuid::Uuid::new_v4()), None, String::new()).await, StatusCode::NOT_FOUND, "not_found"),
        ("weak password", raw(Method::POST, "/api/users", json_ct, json!({"username": "weak", "display_name": "W", "password": "short", "role": "doctor"}).to_string()).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("bad username", raw(Method::POST, "/api/users", json_ct, json!({"username": "a b", "display_name": "W", "password": "long enough pw", "role": "doctor"}).to_string()).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("taken username", raw(Method::POST, "/api/users", json_ct, json!({"username": admin.username, "display_name": "W", "password": "long enough pw", "role": "doctor"}).to_string()).await, StatusCode::CONFLICT, "username_taken"),
    ];
    for (what, (status, body), expected, code) in cases {
        assert_eq!(status, expected, "{what}: {body}");
        assert_eq!(body["error"], code, "{what}: {body}");
        let message = body["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no message in {body}"));
        assert!(!message.is_empty());
        assert!(
            !message.to_lowercase().contains("select "),
            "{what} leaks SQL: {message}"
        );
    }

    let (status, body) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, Value::String("ok".into())));
    let jwks = expect(
        StatusCode::OK,
        app.call(Method::GET, "/.well-known/jwks.json", None, None)
            .await,
    );
    assert_eq!(jwks, app.api.jwks());
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private key material"
    );
}

/// Instants at the ends of what the parser takes, in every query and body that takes one: 400
/// (422 in a body), never a panic or a database error.
async fn far_times_are_bad_requests(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;
    let far = [
        "%2B262142-12-31T00:00:00Z",
        "-262143-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "-0001-12-31T00:00:00Z",
    ];
    for t in far {
        for (path, token) in [
            (format!("/api/robots/{robot}/busy?from={t}"), &doctor.token),
            (format!("/api/robots/{robot}/busy?to={t}"), &doctor.token),
            (format!("/api/bookings?from={t}"), &doctor.token),
            (format!("/api/bookings?to={t}"), &doctor.token),
            (format!("/api/audit?since={t}"), &admin.token),
            (format!("/api/audit?until={t}"), &admin.token),
        ] {
            // A panicking handler drops the connection: `call` would fail, not answer.
            let resp = app
                .http
                .get(app.url(&path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert_eq!(body["error"], "bad_request", "{path}: {body}");
        }
    }
    // The latest instant allowed still answers, and its default window does not overflow.
    let (status, body) = app
        .get(
            &format!("/api/robots/{robot}/busy?from=9999-12-31T23:59:59Z"),
            &doctor.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A booking in year 10000 is refused as a validation error.
    let body = json!({
        "robot_id": robot,
        "starts_at": "+10000-01-01T00:00:00Z",
        "ends_at": "+10000-01-01T01:00:00Z",
    });
    let (status, body) = app.post("/api/bookings", &doctor.token, body).await;
    assert!(
        status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
        "{status}: {body}"
    );
}

async fn openapi_lists_every_path(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (status, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected: &[(&str, &[&str])] = &[
        ("/api/auth/login", &["post"]),
        ("/api/auth/refresh", &["post"]),
        ("/api/auth/logout", &["post"]),
        ("/api/me", &["get"]),
        ("/api/setup", &["get", "post"]),
        ("/api/users", &["get", "post"]),
        ("/api/users/{id}", &["patch"]),
        ("/api/users/{id}/password", &["post"]),
        ("/api/users/{id}/disable", &["post"]),
        ("/api/users/{id}/enable", &["post"]),
        ("/api/robots", &["get", "post"]),
        ("/api/robots/{id}", &["patch"]),
        ("/api/robots/{id}/retire", &["post"]),
        ("/api/robots/{id}/credential", &["post"]),
        ("/api/robots/{id}/publish-token", &["post"]),
        ("/api/robots/{id}/busy", &["get"]),
        ("/api/robots/{id}/roster", &["get"]),
        ("/api/robots/{id}/lease/revoke", &["post"]),
        ("/api/robots/live", &["get"]),
        ("/api/rooms", &["get"]),
        ("/api/rooms/{robot}/participants/{session}/end", &["post"]),
        ("/api/bookings", &["get", "post"]),
        ("/api/bookings/{id}", &["get"]),
        ("/api/bookings/{id}/cancel", &["post"]),
        ("/api/bookings/{id}/invitations", &["post"]),
        ("/api/bookings/{id}/invitations/{user_id}", &["delete"]),
        ("/api/bookings/{id}/join", &["post"]),
        ("/api/audit", &["get"]),
        ("/api/audit.csv", &["get"]),
        ("/.well-known/jwks.json", &["get"]),
        ("/api/openapi.json", &["get"]),
        ("/healthz", &["get"]),
    ];
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing from OpenAPI"));
        for m in *methods {
            assert!(item.get(*m).is_some(), "{m} {path} missing from OpenAPI");
        }
    }
    assert_eq!(
        paths.len(),
        expected.len(),
        "unexpected extra paths: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert!(schemes.get("bearer").is_some() && schemes.get("robot_credential").is_some());
    for schema in [
        "Booking",
        "ErrorBody",
        "JoinResponse",
        "TokenResponse",
        "ConflictSlot",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "schema {schema} missing"
        );
    }
    assert_eq!(app.api.openapi().paths.paths.len(), expected.len());
}
