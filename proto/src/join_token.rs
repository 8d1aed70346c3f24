//! Join tokens: EdDSA (Ed25519) JWTs that admit one participant to one room.
//!
//! The API signs ([`TokenSigner`]); the SFU verifies with public keys only ([`TokenVerifier`]),
//! which it gets from the API's JWKS document ([`KeyPair::jwks`]). Claims carry opaque ids only:
//! no names, no e-mail, nothing personal, because tokens end up in logs and browser storage.
//!
//! Not here: who may get which token (the API's booking rules) or what a role may do in a room
//! (the SFU's room and lease logic).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Seconds of clock skew tolerated on `nbf` (not on `exp`, see [`TokenVerifier::verify`]).
pub const LEEWAY_SECS: u64 = 5;

/// What a participant is in a room. "Controller" is not a role: it is the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Publishes media over WHIP and receives control frames; one per room.
    Robot,
    /// Watches over WHEP; may drive when `can_control` or when handed the lease.
    Doctor,
    /// Watches over WHEP (a student); never drives, sends no events.
    Observer,
}

impl Role {
    /// The claim's spelling, also used as a metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Robot => "robot",
            Role::Doctor => "doctor",
            Role::Observer => "observer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "robot" => Ok(Role::Robot),
            "doctor" => Ok(Role::Doctor),
            "observer" => Ok(Role::Observer),
            other => Err(format!("unknown role {other:?} (robot, doctor, observer)")),
        }
    }
}

/// The claims of a join token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Opaque participant id (a user's or robot's UUID).
    pub sub: String,
    /// The room, which is the robot's id.
    pub room: String,
    /// Decides WHIP or WHEP and what the participant may send.
    pub role: Role,
    /// May this participant hold the control lease (the booking's doctor, within the slot).
    #[serde(default)]
    pub can_control: bool,
    /// The booking this token was issued for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<String>,
    /// Issued at, seconds since the epoch: a deny cut in time (a user disabled, a credential
    /// rotated) refuses tokens issued up to then. A token without it counts as issued at 0.
    #[serde(default)]
    pub iat: u64,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// Expiry, seconds since the epoch; never later than the booking's end.
    pub exp: u64,
    /// Unique token id.
    pub jti: String,
}

impl Claims {
    /// Claims valid from now for `ttl_secs`, with a fresh `jti`.
    pub fn new(sub: impl Into<String>, room: impl Into<String>, role: Role, ttl_secs: u64) -> Self {
        let now = unix_now();
        Claims {
            sub: sub.into(),
            room: room.into(),
            role,
            can_control: false,
            booking: None,
            iat: now,
            nbf: now,
            exp: now + ttl_secs,
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// Why a token was refused. Each maps to 401 except [`TokenError::WrongRoom`] (403).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// Not a JWT, or claims missing or of the wrong type.
    #[error("malformed token")]
    Malformed,
    /// Signature does not verify, or an algorithm other than EdDSA.
    #[error("token signature is not valid")]
    BadSignature,
    /// Past `exp` (plus [`LEEWAY_SECS`]).
    #[error("token has expired")]
    Expired,
    /// Before `nbf` (minus [`LEEWAY_SECS`]).
    #[error("token is not valid yet")]
    NotYetValid,
    /// Valid, but for another room (403 rather than 401: the token itself is good).
    #[error("token is for another room")]
    WrongRoom,
    /// The `kid` names no key we hold (a foreign issuer, or a rotation not yet fetched).
    #[error("unknown signing key")]
    UnknownKey,
}

/// Failure to create, load or parse keys.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The key material (PKCS#8, PEM, JWK) is unusable; the text says why.
    #[error("invalid key: {0}")]
    Invalid(String),
}

/// Seconds since the Unix epoch, the unit of `nbf` and `exp` (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An Ed25519 signing key pair, stored as PKCS#8.
pub struct KeyPair {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    kid: String,
}

impl KeyPair {
    /// A fresh key from the system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Load a key stored as PKCS#8 DER: v1, v2, and the non-compliant v2 of older ring.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let kp = Ed25519KeyPair::from_pkcs8(der)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(der))
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        let public = kp.public_key().as_ref().to_vec();
        Ok(KeyPair {
            pkcs8: der.to_vec(),
            kid: key_id(&public),
            public,
        })
    }

    /// Parse a `-----BEGIN PRIVATE KEY-----` PEM document.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| KeyError::Invalid("PEM body is not base64".into()))?;
        Self::from_pkcs8(&der)
    }

    /// The key as `-----BEGIN PRIVATE KEY-----` PEM, the form it is stored in.
    pub fn to_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.pkcs8);
        let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        out
    }

    /// Key id: base64url of the first 12 bytes of SHA-256 of the public key, so every process
    /// derives the same id from the same key without storing it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// A signer that puts this key's `kid` in every token header.
    pub fn signer(&self) -> TokenSigner {
        TokenSigner {
            key: EncodingKey::from_ed_der(&self.pkcs8),
            kid: self.kid.clone(),
        }
    }

    /// A verifier for this key only (the all-in-one binary, tests).
    pub fn verifier(&self) -> TokenVerifier {
        let mut v = TokenVerifier::empty();
        v.add_key(self.kid.clone(), &self.public);
        v
    }

    /// The public half as a JWKS document (RFC 7517, OKP key type of RFC 8037).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": self.kid,
                "x": URL_SAFE_NO_PAD.encode(&self.public),
            }]
        })
    }
}

fn key_id(public: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public);
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12])
}

/// Signs join tokens. Held by the API only.
#[derive(Clone)]
pub struct TokenSigner {
    key: EncodingKey,
    kid: String,
}

impl TokenSigner {
    /// A compact JWT: header `{"alg":"EdDSA","typ":"JWT","kid":…}`, these claims.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| KeyError::Invalid(e.to_string()))
    }
}

/// Verifies join tokens with public keys only. Held by the SFU.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl TokenVerifier {
    /// A verifier with no keys (refuses everything until [`add_key`](Self::add_key)).
    pub fn empty() -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
        TokenVerifier {
            keys: HashMap::new(),
            validation,
        }
    }

    /// Trust a raw 32-byte Ed25519 public key under `kid`. Several keys allow rotation.
    pub fn add_key(&mut self, kid: String, public_raw: &[u8]) {
        self.keys.insert(kid, DecodingKey::from_ed_der(public_raw));
    }

    /// Build from a JWKS document as served by the API.
    pub fn from_jwks(jwks: &serde_json::Value) -> Result<Self, KeyError> {
        let mut v = Self::empty();
        let keys = jwks
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| KeyError::Invalid("JWKS has no keys array".into()))?;
        for k in keys {
            if k.get("kty").and_then(|x| x.as_str()) != Some("OKP")
                || k.get("crv").and_then(|x| x.as_str()) != Some("Ed25519")
            {
                continue;
            }
            let kid = k.get("kid").and_then(|x| x.as_str()).unwrap_or_default();
            let x = k
                .get("x")
                .and_then(|x| x.as_str())
                .ok_or_else(|| KeyError::Invalid("JWK has no x".into()))?;
            let raw = URL_SAFE_NO_PAD
                .decode(x)
                .map_err(|_| KeyError::Invalid("JWK x is not base64url".into()))?;
            if raw.len() != 32 {
                return Err(KeyError::Invalid(
                    "Ed25519 public key must be 32 bytes".into(),
                ));
            }
            v.add_key(kid.to_string(), &raw);
        }
        if v.keys.is_empty() {
            return Err(KeyError::Invalid("JWKS has no Ed25519 key".into()));
        }
        Ok(v)
    }

    /// Verify signature, time window and room. `room` is the room the request is for.
    pub fn verify(&self, token: &str, room: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::BadSignature);
        }
        let key = match header.kid.as_deref() {
            Some(kid) => self.keys.get(kid).ok_or(TokenError::UnknownKey)?,
            None if self.keys.len() == 1 => {
                self.keys.values().next().ok_or(TokenError::UnknownKey)?
            }
            None => return Err(TokenError::UnknownKey),
        };
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidSignature
                | K::InvalidAlgorithm
                | K::InvalidEcdsaKey
                | K::InvalidKeyFormat => TokenError::BadSignature,
                _ => TokenError::Malformed,
            }
        })?;
        // The leeway is for `nbf` (a minted token must not bounce off a clock a little behind the
        // API's); `exp` gets none: a token past its end must not open a room or take a lease,
        // even for a few seconds.
        if data.claims.exp <= unix_now() {
            return Err(TokenError::Expired);
        }
        if data.claims.room != room {
            return Err(TokenError::WrongRoom);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_roundtrip() {
        let kp = KeyPair::generate().unwrap();
        let mut c = Claims::new("u1", "room-1", Role::Doctor, 60);
        c.can_control = true;
        let t = kp.signer().sign(&c).unwrap();
        assert_eq!(kp.verifier().verify(&t, "room-1"), Ok(c));
    }

    #[test]
    fn rejects_wrong_room_expired_future_and_foreign_key() {
        let kp = KeyPair::generate().unwrap();
        let v = kp.verifier();
        let c = Claims::new("u1", "room-1", Role::Observer, 60);
        let t = kp.signer().sign(&c).unwrap();
        assert_eq!(v.verify(&t, "room-2"), Err(TokenError::WrongRoom));

        let mut old = c.clone();
        old.nbf -= 1000;
        old.exp = unix_now() - 100;
        assert_eq!(
            v.verify(&kp.signer().sign(&old).unwrap(), "room-1"),
            Err(TokenError::Expired)
        );

        let mut future = c.clone();
        future.nbf = unix_now() + 600;
        future.exp = future.nbf + 60;
        assert_eq!(
            v.verify(&kp.signer().sign(&future).unwrap(), "room-1"),
            Err(TokenError::NotYetValid)
        );

        let other = KeyPair::generate().unwrap();
        assert_eq!(
            v.verify(&other.signer().sign(&c).unwrap(), "room-1"),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(v.verify("garbage", "room-1"), Err(TokenError::Malformed));
    }

    #[test]
    fn forged_signature_with_known_kid_is_refused() {
        let kp = KeyPair::generate().unwrap();
        let t = kp
            .signer()
            .sign(&Claims::new("u", "r", Role::Doctor, 60))
            .unwrap();
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        // Swap the payload for one claiming control; the signature no longer matches.
        let mut forged = Claims::new("u", "r", Role::Doctor, 60);
        forged.can_control = true;
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            kp.verifier().verify(&parts.join("."), "r"),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn pem_and_jwks_roundtrip() {
        let kp = KeyPair::generate().unwrap();
        let again = KeyPair::from_pem(&kp.to_pem()).unwrap();
        assert_eq!(again.public_key(), kp.public_key());
        let c = Claims::new("u", "r", Role::Robot, 60);
        let t = again.signer().sign(&c).unwrap();
        let v = TokenVerifier::from_jwks(&kp.jwks()).unwrap();
        assert_eq!(v.verify(&t, "r").unwrap().role, Role::Robot);
        assert!(TokenVerifier::from_jwks(&serde_json::json!({"keys": []})).is_err());
    }

    /// The verifier accepts EdDSA only: a token claiming `none`, or HMAC keyed with the public
    /// key (the classic algorithm confusion), is refused whatever its payload says.
    #[test]
    fn the_algorithm_is_pinned_to_eddsa() {
        let kp = KeyPair::generate().unwrap();
        let v = kp.verifier();
        let mut c = Claims::new("u", "r", Role::Doctor, 60);
        c.can_control = true;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let none = format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(format!(
                r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
                kp.kid()
            ))
        );
        assert!(v.verify(&none, "r").is_err());
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kp.kid().to_string());
        let hmac =
            jsonwebtoken::encode(&header, &c, &EncodingKey::from_secret(kp.public_key())).unwrap();
        assert_eq!(v.verify(&hmac, "r"), Err(TokenError::BadSignature));
        // The same claims, properly signed, pass: the refusals were about the algorithm.
        assert!(v.verify(&kp.signer().sign(&c).unwrap(), "r").is_ok());
    }

    /// Clock skew is tolerated on `nbf`, never on `exp`.
    #[test]
    fn leeway_on_not_before_but_none_on_expiry() {
        let kp = KeyPair::generate().unwrap();
        let v = kp.verifier();
        let mut early = Claims::new("u", "r", Role::Doctor, 60);
        early.nbf = unix_now() + LEEWAY_SECS - 2;
        assert!(v.verify(&kp.signer().sign(&early).unwrap(), "r").is_ok());
        let mut just_expired = Claims::new("u", "r", Role::Doctor, 60);
        just_expired.nbf -= 100;
        just_expired.exp = unix_now() - 2;
        assert_eq!(
            v.verify(&kp.signer().sign(&just_expired).unwrap(), "r"),
            Err(TokenError::Expired)
        );
    }
}
