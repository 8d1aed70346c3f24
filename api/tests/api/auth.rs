//! Login, refresh, logout and inactivity expiry (the failed-login back-off is in `login.rs`).

use std::time::Duration;

use bedside_api::UserRole;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{bearer, minutes, Backend, TestApp, PASSWORD};

backend_tests!(
    login_refresh_logout,
    wrong_and_unknown_logins_look_alike,
    idle_sessions_expire,
    expired_access_token_is_refreshed,
);

async fn login_refresh_logout(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;

    let (status, body) = app.login(&doctor.username.to_uppercase(), PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "usernames are case-insensitive: {body}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 15 * 60);
    assert_eq!(body["user"]["id"], doctor.id.to_string());
    assert_eq!(body["user"]["role"], "doctor");
    assert!(body["user"].get("password_hash").is_none());

    let (status, me) = app.get("/api/me", &doctor.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], doctor.id.to_string());
    assert_eq!(me["username"], doctor.username);
    assert_eq!(me["display_name"], "Test doctor");

    // Refresh rotates both tokens.
    let (status, fresh) = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(&json!({ "refresh_token": doctor.refresh })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let access = fresh["access_token"].as_str().unwrap().to_string();
    let refresh = fresh["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(access, doctor.token);
    assert_eq!(app.get("/api/me", &access).await.0, StatusCode::OK);
    assert_eq!(
        app.get("/api/me", &doctor.token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(&json!({ "refresh_token": doctor.refresh })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a refresh token works once: {body}"
    );

    // Logout ends the session: both tokens are dead.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/auth/logout",
            Some(&bearer(&access)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, serde_json::Value::Null);
    let (status, body) = app.get("/api/me", &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthenticated");
    let (status, _) = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(&json!({ "refresh_token": refresh })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Other sessions of the same user are unaffected.
    let (status, again) = app.login(&doctor.username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .get("/api/me", again["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn wrong_and_unknown_logins_look_alike(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (s1, wrong) = app.login(&doctor.username, "not the password").await;
    let (s2, unknown) = app.login("nobody-here", "not the password").await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error"], "invalid_credentials");
}

async fn idle_sessions_expire(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.idle_timeout = Duration::from_secs(10 * 60);
        c.access_token_ttl = Duration::from_secs(60 * 60);
    })
    .await;
    let doctor = app.user(UserRole::Doctor).await;

    // Activity keeps the session alive past the idle timeout counted from login...
    app.clock.advance(minutes(6));
    assert_eq!(app.get("/api/me", &doctor.token).await.0, StatusCode::OK);
    app.clock.advance(minutes(6));
    assert_eq!(app.get("/api/me", &doctor.token).await.0, StatusCode::OK);
    // ...and inactivity ends it, refresh token included.
    app.clock.advance(minutes(11));
    let (status, body) = app.get("/api/me", &doctor.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    let (status, _) = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(&json!({ "refresh_token": doctor.refresh })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn expired_access_token_is_refreshed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    app.clock.advance(minutes(16));
    let (status, body) = app.get("/api/me", &doctor.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"].as_str().unwrap().contains("refresh"),
        "{body}"
    );
    let (status, fresh) = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(&json!({ "refresh_token": doctor.refresh })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let (status, _) = app
        .get("/api/me", fresh["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
}
