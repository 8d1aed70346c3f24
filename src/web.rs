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
