//! The browser client (`web/`), embedded in the binary and served at `/`.
//!
//! `/` is the doctor's console (`index.html`), `/robot` the robot page (`robot.html`), anything
//! else a file under `web/` if it exists. Files are compiled into the binary so a new user runs
//! one thing; there is no bundler (plain ES modules).
//!
//! Every page carries a strict Content-Security-Policy: scripts, styles and connections from this
//! origin only, no inline script or style, and `frame-ancestors 'none'` (with `X-Frame-Options`)
//! so that no other site can frame the console and trick a doctor into pressing "Take control"
//! or "E-STOP" through an invisible overlay.
//!
//! Not here: API or media routes (they are matched before this fallback).

use axum::http::{header, HeaderName, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
#[exclude = "node_modules/*"]
#[exclude = "*.json"]
struct Assets;

/// The console's Content-Security-Policy (see the module docs). `media-src blob:` is for the
/// WebRTC streams attached to `<video>`; `worker-src 'self'` for the robot page's watchdog timer.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; worker-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Fallback handler: serve an embedded file or 404.
pub async fn asset(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = match path {
        "" => "index.html",
        "robot" => "robot.html",
        p => p,
    };
    match Assets::get(path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_string();
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, "no-cache".to_string()),
                    (header::CONTENT_SECURITY_POLICY, CSP.to_string()),
                    (header::X_FRAME_OPTIONS, "DENY".to_string()),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                    (header::REFERRER_POLICY, "no-referrer".to_string()),
                    (
                        HeaderName::from_static("permissions-policy"),
                        "camera=(self), microphone=(self), geolocation=()".to_string(),
                    ),
                ],
                file.data.into_owned(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use axum::Router;
    use tower::ServiceExt;

    /// The pages, through a router wired as `serve` wires it (the web client as the fallback).
    async fn get(path: &str) -> Response {
        Router::new()
            .fallback(asset)
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn the_console_and_the_robot_page_cannot_be_framed() {
        for path in ["/", "/robot"] {
            let resp = get(path).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let h = resp.headers();
            let csp = h
                .get(header::CONTENT_SECURITY_POLICY)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path} has a Content-Security-Policy"));
            for directive in [
                "frame-ancestors 'none'",
                "script-src 'self'",
                "default-src 'self'",
                "object-src 'none'",
            ] {
                assert!(csp.contains(directive), "{path}: {directive} in {csp}");
            }
            assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
            assert_eq!(
                h.get(header::X_FRAME_OPTIONS).map(|v| v.as_bytes()),
                Some(&b"DENY"[..]),
                "{path}: X-Frame-Options"
            );
            let ty = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            assert!(
                ty.is_some_and(|t| t.starts_with("text/html")),
                "{path}: {ty:?}"
            );
        }
        // A page that does not exist is not served as a page.
        assert_eq!(get("/no-such-page").await.status(), StatusCode::NOT_FOUND);
    }
}
