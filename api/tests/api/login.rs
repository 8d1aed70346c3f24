//! The failed-login back-off (per account and address, and per address), which client address
//! counts (the socket's, or a trusted proxy's `X-Forwarded-For`), counts shared by API replicas,
//! and the cap on password hashes running at once.

use bedside_api::{IpNet, UserRole};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{expect, Backend, Client, TestApp, PASSWORD};

backend_tests!(
    a_few_typos_cost_nothing,
    backoff_per_account_and_address,
    an_address_failing_many_accounts_backs_off,
    forwarded_for_is_ignored_without_a_trusted_proxy,
    a_trusted_proxy_names_the_client,
    counts_hold_across_replicas,
    password_hashes_are_capped,
);

/// What a login from `addr` (as a trusted proxy forwards it) got: status, `Retry-After`, body.
async fn login_from(
    app: &Client,
    addr: &str,
    username: &str,
    password: &str,
) -> (StatusCode, Option<u64>, Value) {
    let resp = app
        .http
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", addr)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login answered");
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

/// Behind a trusted proxy on loopback, and a pair backs off from its first failure (the
/// arithmetic of the waits is easier to read without the free ones).
fn behind_proxy(c: &mut bedside_api::ApiConfig) {
    c.trusted_proxies = IpNet::parse_list("127.0.0.1").unwrap();
    strict(c);
}

fn strict(c: &mut bedside_api::ApiConfig) {
    c.login_limits.per_pair = 0;
}

async fn a_few_typos_cost_nothing(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.trusted_proxies = IpNet::parse_list("127.0.0.1").unwrap();
    })
    .await;
    let doctor = app.user(UserRole::Doctor).await;
    let a = "203.0.113.9";
    // The defaults: three failures in a row are free, the right password then works at once.
    for _ in 0..3 {
        let (status, _, _) = login_from(&app, a, &doctor.username, "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, body) = login_from(&app, a, &doctor.username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A fourth failure in a row makes the pair wait a second.
    for _ in 0..4 {
        let (status, _, _) = login_from(&app, a, &doctor.username, "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, retry, _) = login_from(&app, a, &doctor.username, PASSWORD).await;
    assert_eq!((status, retry), (StatusCode::TOO_MANY_REQUESTS, Some(1)));
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

async fn backoff_per_account_and_address(backend: Backend) {
    let app = TestApp::start_with(backend, behind_proxy).await;
    let alice = app.user(UserRole::Doctor).await;
    let bob = app.user(UserRole::Doctor).await;
    let (a, b) = ("203.0.113.1", "203.0.113.2");
    let wrong = "wrong password";

    // The first failure costs one second, then two, then four.
    let mut waits = Vec::new();
    for _ in 0..3 {
        let (status, _, _) = login_from(&app, a, &alice.username, wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, retry, body) = login_from(&app, a, &alice.username, wrong).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"], "rate_limited");
        let retry = retry.expect("Retry-After");
        waits.push(retry);
        app.clock.advance(secs(retry as i64));
    }
    assert_eq!(waits, vec![1, 2, 4], "exponential back-off");

    // Waiting, even the right password is refused; the same account from elsewhere, and
    // another account from here, are not held up.
    let (status, retry, _) = login_from(&app, a, &alice.username, wrong).await;
    assert_eq!((status, retry), (StatusCode::UNAUTHORIZED, None));
    let (status, retry, _) = login_from(&app, a, &alice.username, PASSWORD).await;
    assert_eq!((status, retry), (StatusCode::TOO_MANY_REQUESTS, Some(8)));
    let (status, _, body) = login_from(&app, b, &alice.username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "another address: {body}");
    let (status, _, body) = login_from(&app, a, &bob.username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "another account: {body}");

    // Once the wait is over the right password works, and the count starts over.
    app.clock.advance(secs(8));
    let (status, _, body) = login_from(&app, a, &alice.username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "after the back-off: {body}");
    let (status, _, _) = login_from(&app, a, &alice.username, wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, retry, _) = login_from(&app, a, &alice.username, wrong).await;
    assert_eq!((status, retry), (StatusCode::TOO_MANY_REQUESTS, Some(1)));

    // The wait is capped.
    for _ in 0..12 {
        app.clock.advance(secs(400));
        login_from(&app, a, &alice.username, wrong).await;
    }
    let (_, retry, _) = login_from(&app, a, &alice.username, wrong).await;
    assert_eq!(retry, Some(300), "5 min cap");
}

async fn an_address_failing_many_accounts_backs_off(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        behind_proxy(c);
        c.login_limits.per_address = 3;
    })
    .await;
    let doctor = app.user(UserRole::Doctor).await;
    let guesser = "198.51.100.7";
    // Three accounts guessed once each cost the address nothing; the fourth makes it wait.
    for n in 0..4 {
        let (status, _, _) = login_from(&app, guesser, &format!("nobody-{n}"), "guess guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "account {n}");
    }
    let (status, retry, _) = login_from(&app, guesser, "nobody-5", "guess guess").await;
    assert_eq!((status, retry), (StatusCode::TOO_MANY_REQUESTS, Some(1)));
    let (status, _, _) = login_from(&app, guesser, &doctor.username, PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the whole address waits"
    );
    let (status, _, _) = login_from(&app, "198.51.100.8", &doctor.username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "a neighbour does not");
    app.clock.advance(secs(1));
    let (status, _, body) = login_from(&app, guesser, &doctor.username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn forwarded_for_is_ignored_without_a_trusted_proxy(backend: Backend) {
    let app = TestApp::start_with(backend, strict).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    // A client naming a new address each time is still the one socket address.
    let (status, _, _) = login_from(&app, "192.0.2.1", &doctor.username, "wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = login_from(&app, "192.0.2.2", &doctor.username, "wrong password").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(secs(1));
    let (status, _, _) = login_from(&app, "6.6.6.6", &doctor.username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let entries = app.audit_kind(&admin.token, "login.ok").await;
    assert_eq!(entries[0]["detail"]["client"], "127.0.0.1", "{entries:?}");
}

async fn a_trusted_proxy_names_the_client(backend: Backend) {
    let app = TestApp::start_with(backend, behind_proxy).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    // The client wrote the first entry; the proxy appended the address it saw.
    let (status, _, _) = login_from(&app, "6.6.6.6, 192.0.2.9", &doctor.username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let entries = app.audit_kind(&admin.token, "login.ok").await;
    assert_eq!(entries[0]["detail"]["client"], "192.0.2.9", "{entries:?}");
    // Spoofing the first entry does not dodge the back-off of the real address.
    login_from(
        &app,
        "1.1.1.1, 192.0.2.9",
        &doctor.username,
        "wrong password",
    )
    .await;
    let (status, _, _) = login_from(&app, "2.2.2.2, 192.0.2.9", &doctor.username, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

async fn counts_hold_across_replicas(backend: Backend) {
    let app = TestApp::start_with(backend, behind_proxy).await;
    let other = app.replica().await;
    let doctor = app.user(UserRole::Doctor).await;
    let addr = "203.0.113.50";
    let (status, _, _) = login_from(&app, addr, &doctor.username, "wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, retry, _) = login_from(&other, addr, &doctor.username, PASSWORD).await;
    assert_eq!(
        (status, retry),
        (StatusCode::TOO_MANY_REQUESTS, Some(1)),
        "the other replica knows"
    );
    other.clock.advance(secs(1));
    let (status, _, _) = login_from(&other, addr, &doctor.username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

async fn password_hashes_are_capped(backend: Backend) {
    const LOGINS: usize = 20;
    let app = std::sync::Arc::new(
        TestApp::start_with(backend, |c| {
            c.max_concurrent_hashes = 4;
            c.login_limits.per_address = 1000;
        })
        .await,
    );
    let mut tasks = tokio::task::JoinSet::new();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(LOGINS));
    for n in 0..LOGINS {
        let (app, barrier) = (app.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            app.login(&format!("flood-{n}"), "some password").await
        });
    }
    while let Some(done) = tasks.join_next().await {
        expect(StatusCode::UNAUTHORIZED, done.expect("login task"));
    }
    let peak = app.api.hashing_peak();
    assert!(peak <= 4, "{peak} hashes ran at once");
    assert!(
        peak >= 2,
        "the logins did overlap ({peak}), or the cap was not tried"
    );
}
