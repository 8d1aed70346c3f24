//! Starting up: the first admin (library call and environment), the signing key on disk or from
//! the environment, and reopening an existing data directory.

use bedside_api::{create_admin, Api, ApiError, BootstrapAdmin};
use bedside_proto::KeyPair;
use reqwest::StatusCode;

use crate::common::{Backend, TestApp, PASSWORD};

backend_tests!(
    admin_via_create_admin,
    admin_via_bootstrap,
    signing_key_is_kept
);

async fn admin_via_create_admin(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let config = backend.config(dir.path());

    // Works before any server ran: it migrates a brand-new database itself.
    let id = create_admin(&config, "Root", "Head of IT", PASSWORD)
        .await
        .unwrap();
    let again = create_admin(&config, "root", "Someone else", PASSWORD).await;
    assert!(
        matches!(
            again,
            Err(ApiError::Conflict {
                code: "username_taken",
                ..
            })
        ),
        "{again:?}"
    );
    let weak = create_admin(&config, "root2", "Root", "short").await;
    assert!(matches!(weak, Err(ApiError::Validation(_))), "{weak:?}");

    let app = TestApp::launch(backend, dir, config).await;
    let (status, body) = app.login("root", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], id.to_string());
    assert_eq!(body["user"]["role"], "admin");
}

async fn admin_via_bootstrap(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = backend.config(dir.path());
    config.bootstrap_admin = Some(BootstrapAdmin {
        username: "boot".into(),
        display_name: "Boot".into(),
        password: PASSWORD.into(),
    });
    // Twice: the second start finds the admin and creates nothing.
    Api::open(config.clone()).await.unwrap().shutdown().await;
    config.bootstrap_admin = Some(BootstrapAdmin {
        username: "other".into(),
        display_name: "Other".into(),
        password: PASSWORD.into(),
    });
    let app = TestApp::launch(backend, dir, config).await;
    assert_eq!(app.login("boot", PASSWORD).await.0, StatusCode::OK);
    assert_eq!(
        app.login("other", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED,
        "an admin already existed"
    );
}

async fn signing_key_is_kept(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let config = backend.config(dir.path());
    let first = Api::open(config.clone()).await.unwrap();
    let jwks = first.jwks();
    first.shutdown().await;

    let key_file = dir.path().join("jwt-ed25519.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }
    let second = Api::open(config.clone()).await.unwrap();
    assert_eq!(second.jwks(), jwks, "same key after a restart");
    second.shutdown().await;

    // A key from the environment wins, and nothing is written for it.
    let other_dir = tempfile::tempdir().unwrap();
    let mut from_env = backend.config(other_dir.path());
    let key = KeyPair::generate().unwrap();
    from_env.jwt_private_key_pem = Some(key.to_pem());
    let api = Api::open(from_env).await.unwrap();
    assert_eq!(api.jwks(), key.jwks());
    assert!(!other_dir.path().join("jwt-ed25519.pem").exists());
    api.shutdown().await;

    let mut broken = backend.config(other_dir.path());
    broken.jwt_private_key_pem =
        Some("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n".into());
    assert!(matches!(
        Api::open(broken).await.err(),
        Some(ApiError::Config(_))
    ));
    drop(backend);
}
