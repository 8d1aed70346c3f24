//! The control plane's HTTP API with a real SQLite database: any operation of the served OpenAPI
//! document, with path ids that exist (or not), arbitrary query parameters and JSON bodies built
//! from the API's own field names (or raw bytes), as an admin, a doctor, a student, nobody, or
//! with a garbage token. This runs the real extractors (JSON bodies and query strings into the
//! model types), the domain validation and the store. Rules: never a panic, never a 5xx.
//!
//! The fixture's own users are never disabled or logged out, so the run keeps its tokens.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request};
use axum::Router;
use bedside_api::testing::{Backend, TestApp};
use bedside_api::UserRole;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

/// Field and parameter names the API uses, so built bodies and queries hit real fields.
const NAMES: &[&str] = &[
    "robot_id", "starts_at", "ends_at", "minutes", "note", "user_id", "role", "username",
    "password", "display_name", "name", "ward", "description", "refresh_token", "mine", "from",
    "to", "limit", "kind", "actor", "room", "since", "until", "before", "code", "disabled",
];

struct World {
    rt: tokio::runtime::Runtime,
    _app: TestApp,
    router: Router,
    ops: Vec<(Method, String)>,
    /// admin, doctor, student tokens.
    tokens: [String; 3],
    fixture_users: Vec<String>,
    ids: Vec<String>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let world = rt.block_on(async {
            let app = TestApp::start(Backend::Sqlite).await;
            let admin = app.user(UserRole::Admin).await;
            let doctor = app.user(UserRole::Doctor).await;
            let student = app.user(UserRole::Student).await;
            let (robot, _) = app.robot().await;
            let booking = app
                .book_from_now(&doctor.token, robot, chrono::Duration::zero(), chrono::Duration::minutes(60))
                .await;
            let router = app.api.router();
            let doc: Value = serde_json::from_str(&get(&router, "/api/openapi.json").await).expect("openapi");
            let mut ops = Vec::new();
            for (path, item) in doc["paths"].as_object().expect("paths") {
                for m in ["get", "post", "put", "patch", "delete"] {
                    if item.get(m).is_some() {
                        ops.push((m.to_uppercase().parse().expect("method"), path.clone()));
                    }
                }
            }
            ops.sort();
            let fixture_users = vec![admin.id.to_string(), doctor.id.to_string(), student.id.to_string()];
            let ids = vec![
                robot.to_string(),
                booking["id"].as_str().expect("id").to_string(),
                doctor.id.to_string(),
                student.id.to_string(),
                uuid::Uuid::new_v4().to_string(),
            ];
            (app, router, ops, [admin.token, doctor.token, student.token], fixture_users, ids)
        });
        let (app, router, ops, tokens, fixture_users, ids) = world;
        World { rt, _app: app, router, ops, tokens, fixture_users, ids }
    })
}

async fn get(router: &Router, path: &str) -> String {
    let req = Request::builder().uri(path).body(Body::empty()).expect("request");
    let resp = router.clone().oneshot(req).await.expect("infallible");
    String::from_utf8_lossy(&resp.into_body().collect().await.expect("body").to_bytes()).into_owned()
}

#[derive(Arbitrary, Debug)]
enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// One of the fixture's ids.
    Id(u8),
    /// An RFC 3339 instant this many minutes from a fixed day.
    Time(i32),
    List(Vec<u8>),
}

impl Val {
    fn json(&self, ids: &[String]) -> Value {
        match self {
            Val::Str(s) => json!(s),
            Val::Int(n) => json!(n),
            Val::Float(f) => json!(f),
            Val::Bool(b) => json!(b),
            Val::Null => Value::Null,
            Val::Id(i) => json!(ids[usize::from(*i) % ids.len()]),
            Val::Time(m) => json!(time(*m)),
            Val::List(l) => json!(l),
        }
    }

    fn query(&self, ids: &[String]) -> String {
        match self.json(ids) {
            Value::String(s) => s,
            v => v.to_string(),
        }
    }
}

fn time(minutes: i32) -> String {
    let base = chrono::Utc::now() + chrono::Duration::days(2);
    (base + chrono::Duration::minutes(i64::from(minutes))).to_rfc3339()
}

#[derive(Arbitrary, Debug)]
enum BodyIn {
    None,
    Fields(Vec<(u8, Val)>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    op: u8,
    /// Per path parameter: a fixture id or a string.
    path_params: Vec<Val>,
    query: Vec<(u8, Val)>,
    raw_query: Option<String>,
    body: BodyIn,
    /// 0-2: admin, doctor, student; 3: nobody; 4: garbage.
    who: u8,
    json_content_type: bool,
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let w = world();
    let (method, template) = &w.ops[usize::from(input.op) % w.ops.len()];
    let mut params = input.path_params.iter();
    let mut path = String::new();
    let mut used = Vec::new();
    for seg in template.split('/').skip(1) {
        path.push('/');
        if seg.starts_with('{') {
            let v = params.next().map(|v| v.query(&w.ids)).unwrap_or_else(|| w.ids[0].clone());
            used.push(v.clone());
            path.push_str(&encode(&v));
        } else {
            path.push_str(seg);
        }
    }
    // Keep the fixture alive: its users stay enabled and logged in.
    if (template.contains("disable") && used.iter().any(|u| w.fixture_users.contains(u)))
        || template.contains("logout")
    {
        return;
    }
    let query = match &input.raw_query {
        Some(q) => q.clone(),
        None => input
            .query
            .iter()
            .take(8)
            .map(|(k, v)| format!("{}={}", NAMES[usize::from(*k) % NAMES.len()], encode(&v.query(&w.ids))))
            .collect::<Vec<_>>()
            .join("&"),
    };
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query);
    }
    let body = match &input.body {
        BodyIn::None => Vec::new(),
        BodyIn::Fields(fields) => {
            let mut m = Map::new();
            for (k, v) in fields.iter().take(10) {
                m.insert(NAMES[usize::from(*k) % NAMES.len()].to_string(), v.json(&w.ids));
            }
            serde_json::to_vec(&Value::Object(m)).expect("json")
        }
        BodyIn::Raw(b) => b.clone(),
    };
    let Ok(uri) = path.parse::<axum::http::Uri>() else { return };
    let mut req = Request::builder().method(method.clone()).uri(uri);
    match input.who % 5 {
        i @ 0..=2 => req = req.header(header::AUTHORIZATION, format!("Bearer {}", w.tokens[usize::from(i)])),
        3 => {}
        _ => req = req.header(header::AUTHORIZATION, "Bearer not-a-token"),
    }
    if input.json_content_type {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let mut req = req.body(Body::from(body)).expect("request");
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let router = w.router.clone();
    let (status, text) = w.rt.block_on(async move {
        let resp = router.oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    });
    assert!(!status.is_server_error(), "{status} for {method} {path}: {text}");
});
