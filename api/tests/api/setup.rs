//! First-run setup: a server without an administrator has a one-time code that creates the first
//! one over HTTP; the code is spent by its first success, refused when wrong, and useless once an
//! administrator exists however it was made.

use bedside_api::UserRole;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{bearer, expect, Backend, TestApp, PASSWORD};

backend_tests!(
    first_admin_with_the_setup_code,
    setup_code_is_useless_once_an_admin_exists,
    racing_setups_make_one_admin,
);

async fn setup_state(app: &TestApp) -> bool {
    let body = expect(
        StatusCode::OK,
        app.call(Method::GET, "/api/setup", None, None).await,
    );
    body["setup_needed"].as_bool().expect("setup_needed")
}

async fn setup(app: &TestApp, code: &str, username: &str, password: &str) -> (StatusCode, Value) {
    let body = json!({
        "code": code, "username": username, "display_name": "Head of IT", "password": password,
    });
    app.call(Method::POST, "/api/setup", None, Some(&body))
        .await
}

async fn first_admin_with_the_setup_code(backend: Backend) {
    let app = TestApp::start(backend).await;
    assert!(
        setup_state(&app).await,
        "a fresh server needs its first admin"
    );
    let code = app.api.setup_code().await.expect("a setup code");
    assert!(code.starts_with("bss_") && code.len() > 40, "{code}");

    let wrong = format!("bss_{}", "A".repeat(43));
    let (status, body) = setup(&app, &wrong, "root", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "wrong code: {body}");
    let (status, body) = setup(&app, "", "root", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "empty code: {body}");
    // A form mistake does not spend the code.
    let (status, body) = setup(&app, &code, "root", "short").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "weak password: {body}"
    );
    assert!(setup_state(&app).await);

    let (status, user) = setup(&app, &code, "Root", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["username"], "root");
    assert_eq!(user["role"], "admin");
    let login = expect(StatusCode::OK, app.login("root", PASSWORD).await);
    assert_eq!(login["user"]["role"], "admin");
    let token = login["access_token"].as_str().unwrap();

    assert!(!setup_state(&app).await, "closed once done");
    assert_eq!(app.api.setup_code().await, None);
    let (status, body) = setup(&app, &code, "root2", PASSWORD).await;
    assert_eq!(status, StatusCode::CONFLICT, "the code is spent: {body}");
    assert_eq!(body["error"], "setup_done");

    // Audited, with the new admin as the actor.
    let entries = app.audit_kind(token, "setup.completed").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor"], user["id"]);
    // The admin works as any admin.
    let (status, _) = app
        .call(Method::GET, "/api/users", Some(&bearer(token)), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // A restart on the same data prints no code.
    let app = app.restart().await;
    assert_eq!(app.api.setup_code().await, None);
    assert!(!setup_state(&app).await);
}

async fn setup_code_is_useless_once_an_admin_exists(backend: Backend) {
    let app = TestApp::start(backend).await;
    let code = app.api.setup_code().await.expect("a setup code");
    // Made another way (the CLI, the environment, another replica) after this server started.
    app.user(UserRole::Admin).await;
    assert_eq!(
        app.api.setup_code().await,
        None,
        "nothing to print any more"
    );
    let (status, body) = setup(&app, &code, "late", PASSWORD).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "setup_done");
    assert!(!setup_state(&app).await);
    assert_eq!(
        app.login("late", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn racing_setups_make_one_admin(backend: Backend) {
    let app = TestApp::start(backend).await;
    let code = app.api.setup_code().await.expect("a setup code");
    let (a, b, c, d) = tokio::join!(
        setup(&app, &code, "racer0", PASSWORD),
        setup(&app, &code, "racer1", PASSWORD),
        setup(&app, &code, "racer2", PASSWORD),
        setup(&app, &code, "racer3", PASSWORD),
    );
    let answers = [a, b, c, d];
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "setup_done");
    }
}
