//! The SFU's offer path, end to end as a client reaches it: `POST /whep/{room}` or
//! `POST /whip/{room}` on the real signalling router of a started SFU (real UDP socket, real
//! worker), with a valid join token, so every input reaches str0m's SDP parser and our own checks
//! (receive-only rewriting for observers, the m-line layout, codecs). Structure-aware: the input
//! is a list of line edits applied to a real Chromium 156 WHEP offer (`fuzz/seeds/`), so most
//! inputs are nearly valid offers rather than bytes str0m refuses at the first line. Rules: never
//! a panic, never a 5xx except 503 (a full worker); a 201 carries an SDP answer and a
//! `Location`, which is then deleted so sessions do not pile up.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use bedside_proto::{Claims, KeyPair, Role};
use bedside_sfu::{Metrics, Sfu, SfuConfig};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const SEED: &str = include_str!("../seeds/chromium_whep_offer.sdp");
const ROOM: &str = "fuzz-room";

struct World {
    rt: tokio::runtime::Runtime,
    router: Router,
    keys: KeyPair,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let keys = KeyPair::generate().expect("keys");
        let sfu = rt
            .block_on(Sfu::start(SfuConfig::default(), keys.verifier(), Metrics::new(), None))
            .expect("sfu");
        World {
            rt,
            router: bedside_sfu::signalling::router(sfu),
            keys,
        }
    })
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Delete(u16),
    Duplicate(u16),
    Swap(u16, u16),
    Insert(u16, String),
    Replace(u16, String),
    /// Keep the line's `x=name:` and replace what follows.
    Value(u16, String),
    /// Cut the line after this many bytes.
    Truncate(u16, u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// 0: robot (WHIP), 1: doctor, 2: observer (WHEP).
    role: u8,
    edits: Vec<Edit>,
    /// Join lines with `\n` instead of `\r\n`.
    lf_only: bool,
    /// Replace the whole body with these bytes instead.
    raw: Option<Vec<u8>>,
}

fn apply(lines: &mut Vec<String>, edit: &Edit) {
    if lines.is_empty() {
        return;
    }
    let at = |i: &u16| usize::from(*i) % lines.len();
    match edit {
        Edit::Delete(i) => {
            let i = at(i);
            lines.remove(i);
        }
        Edit::Duplicate(i) => {
            let i = at(i);
            let l = lines[i].clone();
            lines.insert(i, l);
        }
        Edit::Swap(a, b) => {
            let (a, b) = (at(a), at(b));
            lines.swap(a, b);
        }
        Edit::Insert(i, s) => {
            let i = at(i);
            lines.insert(i, s.clone());
        }
        Edit::Replace(i, s) => {
            let i = at(i);
            lines[i] = s.clone();
        }
        Edit::Value(i, s) => {
            let i = at(i);
            let keep = lines[i].find(':').map(|p| p + 1).unwrap_or(2.min(lines[i].len()));
            let head = lines[i][..keep].to_string();
            lines[i] = head + s;
        }
        Edit::Truncate(i, n) => {
            let i = at(i);
            let mut cut = usize::from(*n).min(lines[i].len());
            while !lines[i].is_char_boundary(cut) {
                cut -= 1;
            }
            lines[i].truncate(cut);
        }
    }
}

fuzz_target!(|input: Input| {
    let w = world();
    let body = match &input.raw {
        Some(raw) => raw.clone(),
        None => {
            let mut lines: Vec<String> = SEED.lines().map(|l| l.trim_end_matches('\r').to_string()).collect();
            for e in input.edits.iter().take(16) {
                apply(&mut lines, e);
            }
            let sep = if input.lf_only { "\n" } else { "\r\n" };
            let mut text = lines.join(sep);
            text.push_str(sep);
            text.into_bytes()
        }
    };
    let (role, endpoint) = match input.role % 3 {
        0 => (Role::Robot, "whip"),
        1 => (Role::Doctor, "whep"),
        _ => (Role::Observer, "whep"),
    };
    // A fresh subject per input: a token may hold only two pending sessions.
    let mut claims = Claims::new(uuid::Uuid::new_v4().to_string(), ROOM, role, 600);
    claims.can_control = role == Role::Doctor;
    let token = w.keys.signer().sign(&claims).expect("sign");
    w.rt.block_on(async {
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("/{endpoint}/{ROOM}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/sdp")
            .body(Body::from(body))
            .expect("request");
        let resp = w.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        assert!(
            !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} for an offer"
        );
        if status == StatusCode::CREATED {
            let location = resp.headers().get(header::LOCATION).expect("Location").to_str().expect("ascii").to_string();
            let answer = resp.into_body().collect().await.expect("body").to_bytes();
            assert!(answer.starts_with(b"v=0"), "an SDP answer");
            let del = Request::builder()
                .method(Method::DELETE)
                .uri(location)
                .body(Body::empty())
                .expect("request");
            let _ = w.router.clone().oneshot(del).await;
        }
    });
});
