//! TURN credentials beside join and publish tokens: present only when TURN is configured, in
//! coturn's `use-auth-secret` form, never outliving the token, naming nobody.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bedside_api::{TurnConfig, UserRole};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, from_now, id_of, minutes, Backend, TestApp};

backend_tests!(turn_credentials_with_tokens, no_turn_no_ice_servers);

const SECRET: &str = "turn-shared-secret-for-tests";
const URLS: [&str; 2] = [
    "turn:127.0.0.1:3478?transport=tcp",
    "turns:turn.example.org:443?transport=tcp",
];

/// Check one `ice_servers` answer against the token it came with, the way coturn would: recompute
/// the HMAC with the shared secret (independently of the API's code) and read the expiry.
fn check_ice_servers(answer: &Value, token_exp: u64, jti: &str, names: &[&str]) {
    let servers = answer["ice_servers"].as_array().expect("ice_servers");
    assert_eq!(servers.len(), 1, "{answer}");
    let s = &servers[0];
    assert_eq!(s["urls"], json!(URLS));
    let username = s["username"].as_str().unwrap();
    let (expiry, subject) = username.split_once(':').expect("<expiry>:<subject>");
    let expiry: u64 = expiry.parse().expect("expiry in unix seconds");
    assert!(
        expiry <= token_exp,
        "TURN expiry {expiry} after the token's {token_exp}"
    );
    assert!(
        expiry + 5 >= token_exp,
        "TURN expiry {expiry} far before the token's"
    );
    assert_eq!(subject, jti, "the subject is the token's opaque jti");
    for name in names {
        assert!(!username.contains(name), "{username} names {name}");
    }
    let mac = STANDARD
        .decode(s["credential"].as_str().unwrap())
        .expect("base64 credential");
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, SECRET.as_bytes());
    hmac::verify(&key, username.as_bytes(), &mac).expect("credential verifies with the secret");
    let forged = hmac::Key::new(
        hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        b"another-secret-of-length",
    );
    assert!(hmac::verify(&forged, username.as_bytes(), &mac).is_err());
}

async fn turn_credentials_with_tokens(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.turn = Some(TurnConfig::new(URLS.map(String::from).to_vec(), SECRET.into()).unwrap());
    })
    .await;
    let doctor = app.user(UserRole::Doctor).await;
    let observer = app.user(UserRole::Student).await;
    let (robot, credential) = app.robot().await;
    let verifier = app.api.verifier();
    let room = robot.to_string();

    let booking = expect(
        StatusCode::CREATED,
        app.book(
            &doctor.token,
            robot,
            from_now(minutes(2)),
            from_now(minutes(40)),
        )
        .await,
    );
    app.invite_ok(&doctor.token, &booking, observer.id, "observer")
        .await;
    for user in [&doctor, &observer] {
        let path = format!("/api/bookings/{}/join", id_of(&booking));
        let j = expect(
            StatusCode::OK,
            app.post(&path, &user.token, json!({})).await,
        );
        let claims = verifier
            .verify(j["token"].as_str().unwrap(), &room)
            .unwrap();
        let user_id = user.id.to_string();
        check_ice_servers(&j, claims.exp, &claims.jti, &[&user.username, &user_id]);
    }

    let p = expect(
        StatusCode::OK,
        app.call(
            Method::POST,
            &format!("/api/robots/{robot}/publish-token"),
            Some(&format!("Robot {credential}")),
            None,
        )
        .await,
    );
    let claims = verifier
        .verify(p["token"].as_str().unwrap(), &room)
        .unwrap();
    check_ice_servers(&p, claims.exp, &claims.jti, &[]);

    // The OpenAPI document describes the field.
    let doc = expect(
        StatusCode::OK,
        app.call(Method::GET, "/api/openapi.json", None, None).await,
    );
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["IceServer"]["properties"]["credential"].is_object(),
        "{}",
        schemas["IceServer"]
    );
    assert!(schemas["JoinResponse"]["properties"]["ice_servers"].is_object());
    assert!(schemas["PublishTokenResponse"]["properties"]["ice_servers"].is_object());
}

async fn no_turn_no_ice_servers(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, credential) = app.robot().await;
    let booking = expect(
        StatusCode::CREATED,
        app.book(
            &doctor.token,
            robot,
            from_now(minutes(2)),
            from_now(minutes(40)),
        )
        .await,
    );
    let j = app.join_ok(&doctor.token, &booking).await;
    assert!(j.get("ice_servers").is_none(), "{j}");
    let p = expect(
        StatusCode::OK,
        app.call(
            Method::POST,
            &format!("/api/robots/{robot}/publish-token"),
            Some(&format!("Robot {credential}")),
            None,
        )
        .await,
    );
    assert!(p.get("ice_servers").is_none(), "{p}");
}
