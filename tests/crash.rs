//! Crash safety of booking writes, with the real `bedside serve` binary on SQLite (a file) and on
//! PostgreSQL (`BEDSIDE_TEST_POSTGRES_URL`; skipped with a printed reason when unset, a failure
//! when `BEDSIDE_REQUIRE_POSTGRES=1`).
//!
//! - `kill -9` in the middle of concurrent booking requests, then a restart on the same
//!   database: every booking that was answered 201 is there, none that was refused (4xx/5xx) or
//!   never reached the server is, every stored booking is one the test asked for, and each has
//!   exactly one `booking.created` audit row (and no audit row names a missing booking). Requests
//!   in flight at the kill may go either way; they are counted and printed.
//! - The failpoint `after_booking_insert` aborts the process between the booking's INSERT and its
//!   audit row's: after a restart there is neither (they are one transaction).
//! - After the restart the robot agent (`bedside robot`, started before the kill) reconnects by
//!   itself: a doctor who joins afresh receives its video. (Browser pages reconnecting after a
//!   SIGKILL are `tests/e2e/specs/server_loss.test.js`.)
//!
//! A process kill is not a power loss: what a kill proves and what it does not is in
//! `docs/reliability.md`.

mod common;

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bedside_api::testing::{Backend, PASSWORD, POSTGRES_ENV, REQUIRE_POSTGRES_ENV};
use bedside_sfu::client::{Endpoint, WebRtcClient};
use chrono::{DateTime, SubsecRound, Utc};
use common::agent::{agent_binary, robot_agent_with_credential};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

const ADMIN: &str = "root";
/// Concurrent writers: more than the server's database pool, so requests queue inside it.
const WRITERS: usize = 12;
/// Answers to wait for before the kill.
const ANSWERS_BEFORE_KILL: usize = 150;
const ROBOTS: usize = 3;

/// `bedside serve` on a fixed port (so a restart keeps its URL), its data dir and database.
struct Server {
    child: Child,
    log: PathBuf,
    base: String,
}

impl Server {
    async fn start(dir: &Path, port: u16, db: Option<&str>, failpoint: Option<&str>) -> Server {
        let log = dir.join(format!("serve-{}.log", uuid::Uuid::new_v4().simple()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bedside"));
        cmd.args(["serve", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--http", &format!("127.0.0.1:{port}"), "--udp-port", "0"])
            .args(["--workers", "1", "--no-ice-tcp"])
            .env_remove("DATABASE_URL")
            .env_remove("BEDSIDE_JWT_PRIVATE_KEY_PEM")
            .env_remove("BEDSIDE_FAILPOINT")
            .env("BEDSIDE_ADMIN_USERNAME", ADMIN)
            .env("BEDSIDE_ADMIN_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true);
        if let Some(url) = db {
            cmd.env("DATABASE_URL", url);
        }
        if let Some(name) = failpoint {
            cmd.env("BEDSIDE_FAILPOINT", name);
        }
        let child = cmd.spawn().expect("bedside serve starts");
        let server = Server {
            child,
            log,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let up = async {
            for _ in 0..600 {
                if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await {
                    if r.status().is_success() {
                        return true;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        };
        assert!(up.await, "the server answers: {}", server.log_tail());
        server
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGKILL: no shutdown, no flush, no goodbye on any connection.
    async fn kill9(mut self) {
        self.child.start_kill().expect("kill -9");
        let status = self.child.wait().await.expect("reaped");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "killed by SIGKILL");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Plain HTTP calls to the served API.
#[derive(Clone)]
struct Http {
    base: String,
    http: reqwest::Client,
}

impl Http {
    fn new(base: &str) -> Http {
        Http {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        }
    }

    /// The answer, or the transport error (connection refused, reset, ...).
    async fn try_call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.try_call(method, path, token, body)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    async fn ok(
        &self,
        want: StatusCode,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (status, body) = self.call(method, path, token, body).await;
        assert_eq!(status, want, "{path}: {body}");
        body
    }

    async fn login(&self, username: &str) -> String {
        let body = json!({ "username": username, "password": PASSWORD });
        let r = self
            .ok(
                StatusCode::OK,
                Method::POST,
                "/api/auth/login",
                None,
                Some(body),
            )
            .await;
        r["access_token"]
            .as_str()
            .expect("access token")
            .to_string()
    }

    /// A new doctor, logged in: (id, token).
    async fn doctor(&self, admin: &str, name: &str) -> (String, String) {
        let body = json!({"username": name, "display_name": "Dr Crash", "password": PASSWORD, "role": "doctor"});
        let u = self
            .ok(
                StatusCode::CREATED,
                Method::POST,
                "/api/users",
                Some(admin),
                Some(body),
            )
            .await;
        (
            u["id"].as_str().expect("id").to_string(),
            self.login(name).await,
        )
    }

    /// A new robot: (id, credential).
    async fn robot(&self, admin: &str) -> (String, String) {
        let r = self
            .ok(
                StatusCode::CREATED,
                Method::POST,
                "/api/robots",
                Some(admin),
                Some(json!({"name": "Crash", "ward": "W"})),
            )
            .await;
        (
            r["robot"]["id"]
                .as_str()
                .or(r["id"].as_str())
                .expect("robot id")
                .to_string(),
            r["credential"].as_str().expect("credential").to_string(),
        )
    }

    /// Every booking (as an admin), by id.
    async fn bookings(&self, admin: &str) -> HashMap<String, Value> {
        let list = self
            .ok(
                StatusCode::OK,
                Method::GET,
                "/api/bookings?limit=1000",
                Some(admin),
                None,
            )
            .await;
        let list = list.as_array().expect("a list").clone();
        assert!(list.len() < 1000, "the listing is complete");
        list.into_iter()
            .map(|b| (b["id"].as_str().expect("id").to_string(), b))
            .collect()
    }

    /// The booking ids named by `booking.created` audit rows, with how often each is named.
    async fn audited_bookings(&self, admin: &str) -> HashMap<String, usize> {
        let page = self
            .ok(
                StatusCode::OK,
                Method::GET,
                "/api/audit?kind=booking.created&limit=1000",
                Some(admin),
                None,
            )
            .await;
        let entries = page["entries"].as_array().expect("entries").clone();
        assert!(entries.len() < 1000, "the audit page is complete");
        let mut out = HashMap::new();
        for e in entries {
            let id = e["detail"]["booking"]
                .as_str()
                .expect("booking id")
                .to_string();
            *out.entry(id).or_insert(0) += 1;
        }
        out
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What became of one booking request.
#[derive(Debug, Clone)]
enum Outcome {
    Created(String),
    Refused(StatusCode),
    /// Sent, no answer: the kill came first. May or may not be stored.
    InFlight,
    /// The connection was refused: the server was already dead. Must not be stored.
    NotSent,
}

/// One request: its slot (robot, start) is unique to it, so the slot names it in the database.
#[derive(Debug, Clone)]
struct Attempt {
    robot: String,
    starts_at: DateTime<Utc>,
    outcome: Outcome,
}

/// Writer `w`'s `i`-th request. Every 5th overlaps the writer's previous slot on that robot (a
/// 409 if that one was stored), every 7th has an over-long note (a 422), the rest are free slots.
fn request(
    w: usize,
    i: usize,
    robots: &[String],
    base: DateTime<Utc>,
) -> (String, DateTime<Utc>, Value) {
    let robot = robots[w % robots.len()].clone();
    let slot = (w * 10_000 + i) as i64;
    let mut starts_at = base + chrono::Duration::minutes(slot * 20);
    if i % 5 == 4 {
        // Halfway into the previous request's slot.
        starts_at -= chrono::Duration::minutes(10);
    }
    let ends_at = starts_at + chrono::Duration::minutes(15);
    let note = if i % 7 == 6 {
        "n".repeat(501)
    } else {
        format!("crash test {w}/{i}")
    };
    let body = json!({"robot_id": robot, "starts_at": rfc3339(starts_at), "ends_at": rfc3339(ends_at), "note": note});
    (robot, starts_at, body)
}

/// Book as fast as the server answers until it stops answering.
async fn writer(
    http: Http,
    token: String,
    w: usize,
    robots: Vec<String>,
    base: DateTime<Utc>,
    answers: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Attempt>>>,
) {
    for i in 0.. {
        let (robot, starts_at, body) = request(w, i, &robots, base);
        let outcome = match http
            .try_call(Method::POST, "/api/bookings", Some(&token), Some(body))
            .await
        {
            Ok((StatusCode::CREATED, b)) => {
                Outcome::Created(b["id"].as_str().expect("id").to_string())
            }
            Ok((status, _)) => Outcome::Refused(status),
            Err(e) if e.is_connect() => Outcome::NotSent,
            Err(_) => Outcome::InFlight,
        };
        let done = matches!(outcome, Outcome::InFlight | Outcome::NotSent);
        log.lock().unwrap().push(Attempt {
            robot,
            starts_at,
            outcome,
        });
        if done {
            return;
        }
        answers.fetch_add(1, Ordering::SeqCst);
    }
}

/// The database's state after a restart against what the clients were told.
/// `live` is the one booking made before the writers started (the agent's).
fn check_after_restart(
    attempts: &[Attempt],
    live: &str,
    stored: &HashMap<String, Value>,
    audited: &HashMap<String, usize>,
) -> (usize, usize) {
    let by_slot: HashMap<(String, DateTime<Utc>), &Value> = stored
        .values()
        .filter(|b| b["id"] != live)
        .map(|b| {
            let start: DateTime<Utc> = b["starts_at"]
                .as_str()
                .expect("start")
                .parse()
                .expect("rfc3339");
            (
                (b["robot_id"].as_str().expect("robot").to_string(), start),
                b,
            )
        })
        .collect();
    let asked: HashSet<(String, DateTime<Utc>)> = attempts
        .iter()
        .map(|a| (a.robot.clone(), a.starts_at))
        .collect();
    let (mut in_flight, mut in_flight_stored) = (0, 0);
    for a in attempts {
        let found = by_slot.get(&(a.robot.clone(), a.starts_at));
        match &a.outcome {
            Outcome::Created(id) => {
                assert!(
                    stored.contains_key(id),
                    "booking {id} was answered 201 and is gone"
                );
                assert_eq!(found.map(|b| b["id"].as_str().unwrap()), Some(id.as_str()));
            }
            Outcome::Refused(status) => assert!(
                found.is_none(),
                "a request refused with {status} is stored: {a:?}"
            ),
            Outcome::NotSent => assert!(
                found.is_none(),
                "a request that never connected is stored: {a:?}"
            ),
            Outcome::InFlight => {
                in_flight += 1;
                in_flight_stored += usize::from(found.is_some());
            }
        }
    }
    for (slot, b) in &by_slot {
        assert!(
            asked.contains(slot),
            "a stored booking nobody asked for: {b}"
        );
    }
    // Both or neither: one audit row per stored booking, none for a booking that is not there.
    for id in stored.keys() {
        assert_eq!(
            audited.get(id),
            Some(&1),
            "booking {id} has one booking.created audit row"
        );
    }
    for id in audited.keys() {
        assert!(
            stored.contains_key(id),
            "an audit row names booking {id}, which is not stored"
        );
    }
    (in_flight, in_flight_stored)
}

/// The database a scenario runs on: `None` is SQLite in the data dir.
async fn database(postgres: bool) -> Option<(Option<String>, Option<Backend>)> {
    if !postgres {
        return Some((None, None));
    }
    let Some(backend) = Backend::postgres().await else {
        let required = std::env::var(REQUIRE_POSTGRES_ENV).is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_ENV} is unset"
        );
        eprintln!("!! PostgreSQL NOT TESTED (crash safety): set {POSTGRES_ENV} to run it");
        return None;
    };
    let Backend::Postgres(db) = &backend else {
        unreachable!("Backend::postgres gives PostgreSQL")
    };
    let url = db.url.clone();
    Some((Some(url), Some(backend)))
}

async fn kill_during_concurrent_bookings(postgres: bool) {
    let Some((db, _keep)) = database(postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = Server::start(dir.path(), port, db.as_deref(), None).await;
    let http = Http::new(&server.base);
    let admin = http.login(ADMIN).await;
    let mut robots = Vec::new();
    for _ in 0..ROBOTS {
        robots.push(http.robot(&admin).await.0);
    }
    let mut doctors = Vec::new();
    for w in 0..WRITERS {
        doctors.push(http.doctor(&admin, &format!("dr-crash-{w}")).await);
    }

    // A robot agent on a robot of its own, with a booking that is live now for its viewer.
    let (agent_robot, credential) = http.robot(&admin).await;
    let live = http
        .ok(
            StatusCode::CREATED,
            Method::POST,
            "/api/bookings",
            Some(&doctors[0].1),
            Some(json!({"robot_id": agent_robot, "minutes": 60})),
        )
        .await;
    let live_id = live["id"].as_str().expect("id").to_string();
    let agent_log = dir.path().join("agent.log");
    let mut agent =
        robot_agent_with_credential(agent_binary(), &server.base, &agent_robot, &credential)
            .args(["--sink", "stdout"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&agent_log).expect("agent log"))
            .spawn()
            .expect("bedside robot starts");
    assert!(
        receives_video(&http, &doctors[0].1, &live_id).await,
        "a doctor sees the agent before the kill"
    );

    let base = Utc::now().trunc_subsecs(0) + chrono::Duration::days(1);
    let answers = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = doctors
        .iter()
        .enumerate()
        .map(|(w, (_, token))| {
            tokio::spawn(writer(
                http.clone(),
                token.clone(),
                w,
                robots.clone(),
                base,
                answers.clone(),
                log.clone(),
            ))
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(60), || answers.load(Ordering::SeqCst)
            >= ANSWERS_BEFORE_KILL)
        .await,
        "{} answers before the kill",
        answers.load(Ordering::SeqCst)
    );
    server.kill9().await;
    for w in writers {
        w.await.expect("writer");
    }
    let attempts = log.lock().unwrap().clone();

    let server = Server::start(dir.path(), port, db.as_deref(), None).await;
    let admin = http.login(ADMIN).await;
    let stored = http.bookings(&admin).await;
    let audited = http.audited_bookings(&admin).await;
    let (in_flight, in_flight_stored) = check_after_restart(&attempts, &live_id, &stored, &audited);
    let count = |f: fn(&Outcome) -> bool| attempts.iter().filter(|a| f(&a.outcome)).count();
    let created = count(|o| matches!(o, Outcome::Created(_)));
    let conflicts = count(|o| matches!(o, Outcome::Refused(StatusCode::CONFLICT)));
    let invalid = count(|o| matches!(o, Outcome::Refused(StatusCode::UNPROCESSABLE_ENTITY)));
    let other = count(|o| matches!(o, Outcome::Refused(_))) - conflicts - invalid;
    let not_sent = count(|o| matches!(o, Outcome::NotSent));
    eprintln!(
        "crash ({}): {} requests: {created} answered 201 (all stored), {conflicts} 409 and {invalid} 422 \
         and {other} other refusals (none stored), {in_flight} in flight at the kill ({in_flight_stored} of them \
         stored), {not_sent} refused connection (none stored); {} bookings + 1 live, {} booking.created rows",
        if postgres { "postgres" } else { "sqlite" },
        attempts.len(),
        stored.len() - 1,
        audited.len() - 1,
    );
    assert!(
        created >= ANSWERS_BEFORE_KILL / 2,
        "the writers mostly booked"
    );
    assert!(conflicts > 0 && invalid > 0, "refusals were exercised");
    assert_eq!(other, 0, "no other refusals (no 5xx)");

    // The agent reconnects by itself; a doctor joining the restarted server sees it.
    assert!(
        receives_video(&http, &doctors[0].1, &live_id).await,
        "the robot agent reconnected by itself after the restart: {}",
        std::fs::read_to_string(&agent_log).unwrap_or_default()
    );
    let _ = agent.kill().await;
    drop(server);
}

/// Join booking `id` as its doctor and wait (up to 30 s) for the robot's video.
async fn receives_video(http: &Http, token: &str, id: &str) -> bool {
    for _ in 0..60 {
        let join = http
            .ok(
                StatusCode::OK,
                Method::POST,
                &format!("/api/bookings/{id}/join"),
                Some(token),
                Some(json!({})),
            )
            .await;
        let room = join["room"].as_str().expect("room");
        let client = WebRtcClient::connect(
            &http.base,
            Endpoint::Whep,
            room,
            join["token"].as_str().expect("token"),
            LOCALHOST,
        )
        .await;
        if let Ok(client) = client {
            let viewer = spawn_viewer_client_ready(client).await;
            let seen = wait_until(Duration::from_secs(3), || !viewer.video().is_empty()).await;
            let _ = viewer.finish().await;
            if seen {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

async fn failpoint_between_booking_and_audit(postgres: bool) {
    let Some((db, _keep)) = database(postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut server = Server::start(
        dir.path(),
        port,
        db.as_deref(),
        Some("after_booking_insert"),
    )
    .await;
    let http = Http::new(&server.base);
    let admin = http.login(ADMIN).await;
    let robot = http.robot(&admin).await.0;
    let (_, doctor) = http.doctor(&admin, "dr-failpoint").await;
    let starts_at = Utc::now().trunc_subsecs(0) + chrono::Duration::hours(2);
    let body = json!({"robot_id": robot, "starts_at": rfc3339(starts_at), "minutes": 30});
    let answer = http
        .try_call(
            Method::POST,
            "/api/bookings",
            Some(&doctor),
            Some(body.clone()),
        )
        .await;
    assert!(
        answer.is_err(),
        "no answer: the process died at the failpoint ({answer:?})"
    );
    let status = server.child.wait().await.expect("reaped");
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "the failpoint aborted the process: {}",
        server.log_tail()
    );
    assert!(server.log_tail().contains("failpoint after_booking_insert"));

    let _server = Server::start(dir.path(), port, db.as_deref(), None).await;
    let admin = http.login(ADMIN).await;
    assert!(
        http.bookings(&admin).await.is_empty(),
        "no booking without its audit row"
    );
    assert!(
        http.audited_bookings(&admin).await.is_empty(),
        "no audit row without its booking"
    );
    // The same request now commits both, so the two checks above can see them.
    let (doctor_token, b) = (http.login("dr-failpoint").await, body);
    let created = http
        .ok(
            StatusCode::CREATED,
            Method::POST,
            "/api/bookings",
            Some(&doctor_token),
            Some(b),
        )
        .await;
    let id = created["id"].as_str().expect("id");
    assert!(http.bookings(&admin).await.contains_key(id));
    assert_eq!(http.audited_bookings(&admin).await.get(id), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill9_during_concurrent_bookings() {
    kill_during_concurrent_bookings(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill9_during_concurrent_bookings() {
    kill_during_concurrent_bookings(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_failpoint_between_booking_and_audit() {
    failpoint_between_booking_and_audit(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failpoint_between_booking_and_audit() {
    failpoint_between_booking_and_audit(true).await;
}
