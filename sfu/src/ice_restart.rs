//! ICE restarts by WHIP/WHEP `PATCH` (RFC 9725 §4.3), as text: reading a client's SDP fragment,
//! splicing its new credentials into the session's offer, and writing ours back.
//!
//! A robot roaming between access points, or a laptop moving from Wi-Fi to cable, keeps its
//! session (its lease, its slots, its DTLS association) by restarting ICE: it sends
//! `PATCH /sessions/{key}` with `Content-Type: application/trickle-ice-sdpfrag` carrying new
//! `a=ice-ufrag`/`a=ice-pwd`, and gets the server's new ones back. str0m restarts ICE when an
//! offer arrives with new remote credentials, so the server re-offers the session's own stored
//! offer with the new credentials spliced in (and the `o=` version bumped), and answers with the
//! fragment of the answer's new credentials and candidates.
//!
//! Everything here is plain string work on untrusted input: bounded, no panics, errors say what
//! was wrong.
//!
//! Not here: the session's `Rtc` (`peer.rs`) or re-keying the session table (the switchboard).

/// ICE credentials: username fragment and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
}

/// The largest fragment accepted (a few lines; anything near this is not a fragment).
pub const MAX_FRAG_BYTES: usize = 8 * 1024;

fn lines(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.split('\n').map(|l| l.trim_end_matches('\r'))
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.strip_prefix("a=")?
        .strip_prefix(name)?
        .strip_prefix(':')
}

/// RFC 8445 §5.3: ufrag 4..=256 and pwd 22..=256 characters of `ice-char` (ALPHA / DIGIT / "+" / "/").
fn valid(s: &str, min: usize) -> bool {
    (min..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The credentials of an SDP or SDP fragment, if it carries (valid) ones. All of them must be
/// the same: a fragment that restarts some m-lines and not others is refused.
pub fn credentials(sdp: &str) -> Result<Option<IceCredentials>, String> {
    let mut ufrag: Option<&str> = None;
    let mut pwd: Option<&str> = None;
    for l in lines(sdp) {
        if let Some(u) = attr(l, "ice-ufrag") {
            if ufrag.is_some_and(|x| x != u) {
                return Err("different ice-ufrag values".into());
            }
            ufrag = Some(u);
        }
        if let Some(p) = attr(l, "ice-pwd") {
            if pwd.is_some_and(|x| x != p) {
                return Err("different ice-pwd values".into());
            }
            pwd = Some(p);
        }
    }
    match (ufrag, pwd) {
        (None, None) => Ok(None),
        (Some(u), Some(p)) if valid(u, 4) && valid(p, 22) => Ok(Some(IceCredentials {
            ufrag: u.to_string(),
            pwd: p.to_string(),
        })),
        (Some(_), Some(_)) => Err("ice-ufrag or ice-pwd is not valid (RFC 8445)".into()),
        _ => Err("ice-ufrag and ice-pwd must come together".into()),
    }
}

/// `offer` with every `a=ice-ufrag`/`a=ice-pwd` replaced by `creds` and the `o=` line's
/// session version raised by one (a new offer of the same session).
pub fn respliced(offer: &str, creds: &IceCredentials) -> String {
    let mut out = String::with_capacity(offer.len() + 32);
    for l in lines(offer) {
        if l.is_empty() {
            continue;
        }
        if attr(l, "ice-ufrag").is_some() {
            out.push_str(&format!("a=ice-ufrag:{}\r\n", creds.ufrag));
        } else if attr(l, "ice-pwd").is_some() {
            out.push_str(&format!("a=ice-pwd:{}\r\n", creds.pwd));
        } else if let Some(o) = l.strip_prefix("o=") {
            out.push_str(&format!("o={}\r\n", bump_version(o)));
        } else if l.starts_with("a=candidate:") {
            // A candidate names its generation's ufrag: an old one would be ignored.
            out.push_str(&with_ufrag(l, &creds.ufrag));
            out.push_str("\r\n");
        } else {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out
}

/// A candidate line whose `ufrag` extension attribute, if any, is `ufrag`.
fn with_ufrag(candidate: &str, ufrag: &str) -> String {
    let mut parts: Vec<&str> = candidate.split(' ').collect();
    if let Some(i) = parts.iter().position(|p| *p == "ufrag") {
        if i + 1 < parts.len() {
            parts[i + 1] = ufrag;
        }
    }
    parts.join(" ")
}

/// `username sess-id sess-version nettype addrtype address` with the version plus one.
fn bump_version(o: &str) -> String {
    let mut parts: Vec<String> = o.split(' ').map(str::to_string).collect();
    if let Some(v) = parts.get_mut(2) {
        if let Ok(n) = v.parse::<u64>() {
            *v = n.wrapping_add(1).to_string();
        }
    }
    parts.join(" ")
}

/// The `a=candidate:` lines of an SDP.
pub fn candidates(sdp: &str) -> Vec<String> {
    lines(sdp)
        .filter(|l| l.starts_with("a=candidate:"))
        .map(str::to_string)
        .collect()
}

/// The fragment answering a restart: our new credentials and our candidates.
pub fn answer_fragment(creds: &IceCredentials, candidates: &[String]) -> String {
    let mut f = format!("a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n", creds.ufrag, creds.pwd);
    for c in candidates {
        f.push_str(c);
        f.push_str("\r\n");
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 123 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=candidate:1 1 udp 2 10.0.0.1 5000 typ host ufrag oldU\r\na=ice-ufrag:oldU\r\na=ice-pwd:oldpassword0123456789ab\r\na=mid:0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:oldU\r\na=ice-pwd:oldpassword0123456789ab\r\na=mid:1\r\n";

    #[test]
    fn a_fragment_gives_its_credentials_or_a_reason() {
        let frag = "a=ice-ufrag:newU\r\na=ice-pwd:newpassword0123456789ab\r\na=mid:0\r\na=candidate:1 1 udp 1 10.0.0.2 5000 typ host\r\n";
        assert_eq!(
            credentials(frag).unwrap(),
            Some(IceCredentials {
                ufrag: "newU".into(),
                pwd: "newpassword0123456789ab".into()
            })
        );
        assert_eq!(
            credentials("a=candidate:1 1 udp 1 10.0.0.2 5000 typ host\r\n"),
            Ok(None)
        );
        assert!(credentials("a=ice-ufrag:newU\r\n").is_err());
        assert!(credentials("a=ice-ufrag:a\r\na=ice-pwd:short\r\n").is_err());
        assert!(credentials(
            "a=ice-ufrag:newU\r\na=ice-pwd:newpassword0123456789ab\r\na=ice-ufrag:otherU\r\n"
        )
        .is_err());
        assert!(credentials("a=ice-ufrag:ne\"U\r\na=ice-pwd:newpassword0123456789ab\r\n").is_err());
    }

    #[test]
    fn the_offer_is_respliced_with_a_new_version() {
        let creds = IceCredentials {
            ufrag: "newU".into(),
            pwd: "newpassword0123456789ab".into(),
        };
        let again = respliced(OFFER, &creds);
        assert!(
            again.starts_with("v=0\r\no=- 123 3 IN IP4 127.0.0.1\r\n"),
            "{again}"
        );
        assert_eq!(again.matches("a=ice-ufrag:newU\r\n").count(), 2);
        assert!(!again.contains("oldU") && !again.contains("oldpassword"));
        assert_eq!(credentials(&again).unwrap(), Some(creds.clone()));
        let frag = answer_fragment(
            &creds,
            &["a=candidate:1 1 udp 2 10.0.0.1 5000 typ host".into()],
        );
        assert_eq!(candidates(&frag).len(), 1);
        assert_eq!(credentials(&frag).unwrap(), Some(creds));
    }
}
