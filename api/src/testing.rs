//! Test support shared by this crate's integration tests (`api/tests`) and the root crate's
//! cross-crate tests (`tests/`), behind the `testing` feature so that it never reaches the
//! binary: a database per test ([`Backend`]: SQLite in a temporary directory, or a fresh
//! PostgreSQL database), a served API ([`TestApp`]), and an HTTP client with the calls every
//! test makes ([`Client`]: users, robots, bookings, joins), whose setup helpers check their
//! answers where they are made.
//!
//! It depends on nothing but this crate, so the root crate's tests (which also run the SFU) use
//! it without a dependency cycle. Not here: assertions about behaviour (the tests).

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection as _;
use uuid::Uuid;

use crate::{Api, ApiConfig, Clock, UserRole};

/// Set to a PostgreSQL URL whose user may create databases, to run every scenario there too.
pub const POSTGRES_ENV: &str = "BEDSIDE_TEST_POSTGRES_URL";
/// Set to `1` to make a missing [`POSTGRES_ENV`] fail the PostgreSQL half instead of skipping it.
pub const REQUIRE_POSTGRES_ENV: &str = "BEDSIDE_REQUIRE_POSTGRES";
/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery";
pub const PUBLIC_URL: &str = "https://bedside.test";

/// Where a test's data lives.
pub enum Backend {
    Sqlite,
    Postgres(PgDb),
}

impl Backend {
    /// A fresh PostgreSQL database, or `None` when [`POSTGRES_ENV`] is unset.
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

    /// "sqlite" or "postgres".
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
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
pub fn with_database(url: &str, name: &str) -> String {
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

/// A logged-in test user.
pub struct TestUser {
    pub id: Uuid,
    pub username: String,
    pub token: String,
    pub refresh: String,
}

/// An API served somewhere (by [`TestApp`], or by the binary's `serve`), and the calls tests
/// make to it.
pub struct Client {
    pub api: Api,
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Clock,
}

impl Client {
    /// `api` served at `base` (e.g. `http://127.0.0.1:1234`).
    pub fn new(api: Api, base: String) -> Client {
        let clock = api.config().clock.clone();
        Client {
            api,
            base,
            http: reqwest::Client::new(),
            clock,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with an optional `Authorization` header value and JSON body; the status and
    /// the body parsed as JSON (`Value::Null` when empty, a JSON string when not JSON).
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

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(&bearer(token)), None)
            .await
    }

    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({ "username": username, "password": password });
        self.call(Method::POST, "/api/auth/login", None, Some(&body))
            .await
    }

    /// A new user of `role`, logged in.
    pub async fn user(&self, role: UserRole) -> TestUser {
        let username = format!(
            "{}-{}",
            role.as_str(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let display = format!("Test {}", role.as_str());
        let user = self
            .api
            .create_user(&username, &display, PASSWORD, role)
            .await
            .expect("create user");
        let body = expect(StatusCode::OK, self.login(&username, PASSWORD).await);
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

    /// Ask to book; the answer as it came.
    pub async fn book(
        &self,
        token: &str,
        robot: Uuid,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> (StatusCode, Value) {
        let body = json!({
            "robot_id": robot,
            "starts_at": rfc3339(starts_at),
            "ends_at": rfc3339(ends_at),
        });
        self.post("/api/bookings", token, body).await
    }

    /// Book, which must succeed; the booking.
    pub async fn book_ok(
        &self,
        token: &str,
        robot: Uuid,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> Value {
        expect(
            StatusCode::CREATED,
            self.book(token, robot, starts_at, ends_at).await,
        )
    }

    /// Book `[now + start, now + end)` by this API's clock, which must succeed.
    pub async fn book_from_now(
        &self,
        token: &str,
        robot: Uuid,
        start: chrono::Duration,
        end: chrono::Duration,
    ) -> Value {
        let now = self.clock.now().trunc_subsecs(0);
        self.book_ok(token, robot, now + start, now + end).await
    }

    /// Invite `user` as `role` (`consultant`, `observer`), which must succeed.
    pub async fn invite_ok(&self, token: &str, booking: &Value, user: Uuid, role: &str) -> Value {
        let path = format!("/api/bookings/{}/invitations", id_of(booking));
        expect(
            StatusCode::CREATED,
            self.post(&path, token, json!({ "user_id": user, "role": role }))
                .await,
        )
    }

    /// Ask for a join token; the answer as it came.
    pub async fn join(&self, token: &str, booking: &Value) -> (StatusCode, Value) {
        let path = format!("/api/bookings/{}/join", id_of(booking));
        self.post(&path, token, json!({})).await
    }

    /// A join token, which must be granted; the whole answer.
    pub async fn join_ok(&self, token: &str, booking: &Value) -> Value {
        expect(StatusCode::OK, self.join(token, booking).await)
    }

    /// Cancel, which must succeed; the booking.
    pub async fn cancel_ok(&self, token: &str, booking: &Value) -> Value {
        let path = format!("/api/bookings/{}/cancel", id_of(booking));
        expect(StatusCode::OK, self.post(&path, token, json!({})).await)
    }

    /// Audit entries of `kind`, newest first (as an admin).
    pub async fn audit_kind(&self, admin_token: &str, kind: &str) -> Vec<Value> {
        let page = expect(
            StatusCode::OK,
            self.get(&format!("/api/audit?kind={kind}&limit=1000"), admin_token)
                .await,
        );
        page["entries"].as_array().cloned().unwrap_or_default()
    }
}

/// A running server with its own database. Fields drop in order: the client, the server, then
/// the data.
pub struct TestApp {
    pub client: Client,
    server: AbortOnDrop,
    pub config: ApiConfig,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
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

    /// Open the API with `config` and serve it on an ephemeral loopback port, with connect
    /// info (so the login limiter sees client addresses).
    pub async fn launch(backend: Backend, dir: tempfile::TempDir, config: ApiConfig) -> TestApp {
        let api = Api::open(config.clone()).await.expect("open api");
        let (base, server) = serve(api.clone()).await;
        TestApp {
            client: Client::new(api, base),
            server,
            config,
            dir,
            backend,
        }
    }

    /// Another API process on the same database and settings (a second replica), served on
    /// its own port.
    pub async fn replica(&self) -> Replica {
        let api = Api::open(self.config.clone()).await.expect("open replica");
        let (base, server) = serve(api.clone()).await;
        Replica {
            client: Client::new(api, base),
            _server: server,
        }
    }

    /// Shut this API down in order and start it again on the same data and settings (a
    /// restart or a deploy), on a new port.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// [`TestApp::restart`] with changed settings.
    pub async fn restart_with(self, tweak: impl FnOnce(&mut ApiConfig)) -> TestApp {
        let TestApp {
            client,
            server,
            mut config,
            dir,
            backend,
        } = self;
        client.api.shutdown().await;
        drop(server);
        tweak(&mut config);
        Self::launch(backend, dir, config).await
    }
}

/// A second API process on a [`TestApp`]'s database ([`TestApp::replica`]).
pub struct Replica {
    pub client: Client,
    _server: AbortOnDrop,
}

impl Deref for Replica {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// Serve `api` on an ephemeral loopback port with connect info; its base URL.
async fn serve(api: Api) -> (String, AbortOnDrop) {
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
    (format!("http://{addr}"), AbortOnDrop(server))
}

/// The body of `answer` if its status is `expected`; fails the test (at the caller's line)
/// otherwise.
#[track_caller]
pub fn expect(expected: StatusCode, answer: (StatusCode, Value)) -> Value {
    let (status, body) = answer;
    assert_eq!(status, expected, "unexpected answer: {body}");
    body
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
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

/// The `id` of a JSON object (a booking, a user).
#[track_caller]
pub fn id_of(v: &Value) -> Uuid {
    v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
