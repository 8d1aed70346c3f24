//! Test harness: backends (SQLite, PostgreSQL), a running server per test, HTTP helpers.
//!
//! Not for assertions about behaviour; those live in the scenario files.

use std::net::SocketAddr;
use std::path::Path;

use bedside_api::{Api, ApiConfig, Clock, UserRole};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Connection as _;
use uuid::Uuid;

pub const POSTGRES_ENV: &str = "BEDSIDE_TEST_POSTGRES_URL";
pub const PASSWORD: &str = "correct horse battery";
pub const PUBLIC_URL: &str = "https://bedside.test";

/// Make a `sqlite` and a `postgres` test of each listed `async fn(Backend)`.
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::common::Backend::postgres().await {
                    Some(backend) => super::$name(backend).await,
                    None => println!("skipping PostgreSQL: BEDSIDE_TEST_POSTGRES_URL is unset"),
                }
            }
        }
    )+};
}

pub enum Backend {
    Sqlite,
    Postgres(PgDb),
}

impl Backend {
    /// A fresh PostgreSQL database, or `None` when `BEDSIDE_TEST_POSTGRES_URL` is unset.
    pub async fn postgres() -> Option<Backend> {
        let admin_url = std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty())?;
        Some(Backend::Postgres(PgDb::create(admin_url).await))
    }

    /// Default test configuration for this backend with its data in `dir`.
    pub fn config(&self, dir: &Path) -> ApiConfig {
        let mut config = ApiConfig::new(dir.to_path_buf(), PUBLIC_URL.into());
        config.clock = Clock::system();
        if let Backend::Postgres(db) = self {
            config.database_url = Some(db.url.clone());
        }
        config
    }
}

/// A database created for one test and dropped (WITH FORCE) when the test ends, pass or fail.
pub struct PgDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDb {
    async fn create(admin_url: String) -> PgDb {
        let name = format!("bedside_test_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to BEDSIDE_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let url = with_database(&admin_url, &name);
        PgDb {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; use a thread with its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(done, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// `postgres://u@h:5432/db?x=y` with the database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub struct TestUser {
    pub id: Uuid,
    pub username: String,
    pub token: String,
    pub refresh: String,
}

/// A running server with its own database. Fields drop in order: server, then the data.
pub struct TestApp {
    pub api: Api,
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Clock,
    server: tokio::task::JoinHandle<()>,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut ApiConfig)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = backend.config(dir.path());
        tweak(&mut config);
        Self::launch(backend, dir, config).await
    }

    /// Open the API with `config` and serve it on an ephemeral loopback port.
    pub async fn launch(backend: Backend, dir: tempfile::TempDir, config: ApiConfig) -> TestApp {
        let clock = config.clock.clone();
        let api = Api::open(config).await.expect("open api");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = api
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        TestApp {
            api,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            clock,
            server,
            dir,
            backend,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with an optional `Authorization` header value and JSON body; the status and
    /// the body parsed as JSON (`Value::Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&bearer(token)), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&bearer(token)), Some(&body))
            .await
    }

    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        let body = serde_json::json!({ "username": username, "password": password });
        self.call(Method::POST, "/api/auth/login", None, Some(&body))
            .await
    }

    /// A new user of `role`, logged in.
    pub async fn user(&self, role: UserRole) -> TestUser {
        let username = format!(
            "{}-{}",
            role_name(role),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let display = format!("Test {}", role_name(role));
        let user = self
            .api
            .create_user(&username, &display, PASSWORD, role)
            .await
            .expect("create user");
        let (status, body) = self.login(&username, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        TestUser {
            id: user.id,
            username,
            token: body["access_token"].as_str().expect("access token").into(),
            refresh: body["refresh_token"]
                .as_str()
                .expect("refresh token")
                .into(),
        }
    }

    /// A robot and its credential.
    pub async fn robot(&self) -> (Uuid, String) {
        let (robot, credential) = self
            .api
            .create_robot("Robo", "Ward 7", "test robot")
            .await
            .expect("create robot");
        (robot.id, credential)
    }

    pub async fn book(
        &self,
        token: &str,
        robot: Uuid,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> (StatusCode, Value) {
        let body = serde_json::json!({
            "robot_id": robot,
            "starts_at": rfc3339(starts_at),
            "ends_at": rfc3339(ends_at),
        });
        self.post("/api/bookings", token, body).await
    }
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn role_name(role: UserRole) -> &'static str {
    role.as_str()
}

/// Now plus `d`, in whole seconds.
pub fn from_now(d: chrono::Duration) -> DateTime<Utc> {
    (Utc::now() + d).trunc_subsecs(0)
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

pub fn parse_time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
}

pub fn id_of(v: &Value) -> Uuid {
    v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {v}"))
}

#[test]
fn database_urls_are_rewritten() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/test?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
