//! Join-token verification (`TokenVerifier::verify`, what the SFU runs on every WHIP/WHEP
//! request) against a real Ed25519 key. Structure-aware: the input builds a header and a claims
//! object field by field (or replaces either with raw bytes) and, when it says so, signs the
//! result with the real private key, so mutated claims get past the signature check and reach
//! the claims' own validation (times, required fields, room). The rules checked on every input:
//! never a panic; a token passes only if the real key signed exactly these bytes, for this room,
//! within its time window.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bedside_proto::join_token::unix_now;
use bedside_proto::{KeyPair, TokenVerifier};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

const ROOM: &str = "3f6c2a1e-room";

struct Keys {
    signing: Ed25519KeyPair,
    kid: String,
    verifier: TokenVerifier,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let der = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let pair = KeyPair::from_pkcs8(der.as_ref()).expect("key pair");
        let signing = Ed25519KeyPair::from_pkcs8(der.as_ref()).expect("signing key");
        assert_eq!(signing.public_key().as_ref(), pair.public_key());
        Keys {
            signing,
            kid: pair.kid().to_string(),
            verifier: pair.verifier(),
        }
    })
}

/// A JSON value of the shape a field should have, or not.
#[derive(Arbitrary, Debug)]
enum Field {
    Absent,
    Str(String),
    Int(i64),
    /// Seconds from now (times), so the fuzzer reaches both sides of nbf/exp.
    FromNow(i32),
    Bool(bool),
    Null,
    Array(Vec<u8>),
}

impl Field {
    fn value(&self, now: i64) -> Option<Value> {
        Some(match self {
            Field::Absent => return None,
            Field::Str(s) => json!(s),
            Field::Int(n) => json!(n),
            Field::FromNow(d) => json!(now + i64::from(*d)),
            Field::Bool(b) => json!(b),
            Field::Null => Value::Null,
            Field::Array(a) => json!(a),
        })
    }
}

#[derive(Arbitrary, Debug)]
enum Alg {
    EdDsa,
    Hs256,
    None,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Kid {
    Ours,
    Absent,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum RoleField {
    Robot,
    Doctor,
    Observer,
    Other(Field),
}

#[derive(Arbitrary, Debug)]
struct Input {
    alg: Alg,
    kid: Kid,
    typ: Field,
    header_extra: Option<(String, Field)>,
    /// Replaces the header JSON entirely.
    raw_header: Option<Vec<u8>>,
    sub: Field,
    our_room: bool,
    room: Field,
    role: RoleField,
    can_control: Field,
    booking: Field,
    iat: Field,
    nbf: Field,
    exp: Field,
    jti: Field,
    claims_extra: Option<(String, Field)>,
    /// Replaces the claims JSON entirely.
    raw_claims: Option<Vec<u8>>,
    /// Sign with the real key (else the signature is `forged`).
    sign: bool,
    forged: Vec<u8>,
    /// Flip one bit of the signature after signing.
    flip: Option<u16>,
    /// Appended to the token as is (extra segments, whitespace, ...).
    tail: String,
    /// Verify for a room other than the token's.
    other_room: bool,
}

fn object(fields: &[(&str, Option<Value>)], extra: &Option<(String, Field)>, now: i64) -> Vec<u8> {
    let mut m = Map::new();
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert((*k).to_string(), v.clone());
        }
    }
    if let Some((k, f)) = extra {
        if let Some(v) = f.value(now) {
            m.insert(k.clone(), v);
        }
    }
    serde_json::to_vec(&Value::Object(m)).expect("json")
}

fuzz_target!(|input: Input| {
    let k = keys();
    let now = unix_now() as i64;
    let header = input.raw_header.clone().unwrap_or_else(|| {
        let alg = match &input.alg {
            Alg::EdDsa => json!("EdDSA"),
            Alg::Hs256 => json!("HS256"),
            Alg::None => json!("none"),
            Alg::Other(s) => json!(s),
        };
        let kid = match &input.kid {
            Kid::Ours => Some(json!(k.kid)),
            Kid::Absent => None,
            Kid::Other(s) => Some(json!(s)),
        };
        object(
            &[("alg", Some(alg)), ("kid", kid), ("typ", input.typ.value(now))],
            &input.header_extra,
            now,
        )
    });
    let claims = input.raw_claims.clone().unwrap_or_else(|| {
        let room = if input.our_room { Some(json!(ROOM)) } else { input.room.value(now) };
        let role = match &input.role {
            RoleField::Robot => Some(json!("robot")),
            RoleField::Doctor => Some(json!("doctor")),
            RoleField::Observer => Some(json!("observer")),
            RoleField::Other(f) => f.value(now),
        };
        object(
            &[
                ("sub", input.sub.value(now)),
                ("room", room),
                ("role", role),
                ("can_control", input.can_control.value(now)),
                ("booking", input.booking.value(now)),
                ("iat", input.iat.value(now)),
                ("nbf", input.nbf.value(now)),
                ("exp", input.exp.value(now)),
                ("jti", input.jti.value(now)),
            ],
            &input.claims_extra,
            now,
        )
    });
    let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(&header), URL_SAFE_NO_PAD.encode(&claims));
    let mut sig = if input.sign {
        k.signing.sign(signed.as_bytes()).as_ref().to_vec()
    } else {
        input.forged.clone()
    };
    let mut genuine = input.sign;
    if let Some(bit) = input.flip {
        if !sig.is_empty() {
            let i = usize::from(bit / 8) % sig.len();
            sig[i] ^= 1 << (bit % 8);
            genuine = false;
        }
    }
    let token = format!("{signed}.{}{}", URL_SAFE_NO_PAD.encode(&sig), input.tail);
    let room = if input.other_room { "another-room" } else { ROOM };
    if let Ok(c) = k.verifier.verify(&token, room) {
        // Ed25519 signatures cannot be forged: anything that passes is what we signed.
        assert!(genuine, "a token the key did not sign passed: {token}");
        assert_eq!(c.room, room, "a token for another room passed");
        let slack = 120; // the verifier's leeway is smaller
        assert!((c.exp as i64) > now - slack, "an expired token passed");
        assert!((c.nbf as i64) <= now + slack, "a not-yet-valid token passed");
    }
});
