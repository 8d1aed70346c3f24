//! The browser client (`web/`), embedded in the binary and served at `/`.
//!
//! `/` is the doctor's console (`index.html`), `/robot` the robot page (`robot.html`), anything
//! else a file under `web/` if it exists. Files are compiled into the binary so a new user runs
//! one thing; there is no bundler (plain ES modules).
//!
//! Not here: API or media routes (they are matched before this fallback).

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
#[exclude = "node_modules/*"]
#[exclude = "*.json"]
struct Assets;

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
                ],
                file.data.into_owned(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}
