//! The OpenAPI document's frame: title, tags and security schemes. The paths and schemas come
//! from the `#[utoipa::path]` attributes on the handlers (`http`), collected as routes register.
//!
//! Not here: any path list to keep in sync by hand.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bedside API",
        description = "Control plane of Bedside: users, robots, bookings, join tokens and the audit log. \
                       Errors are `{\"error\": \"<code>\", \"message\": \"<text>\"}`.",
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Login, refresh, logout"),
        (name = "users", description = "Accounts (admins)"),
        (name = "robots", description = "Robots, their credentials and publish tokens"),
        (name = "bookings", description = "Bookings, invitations and join tokens"),
        (name = "live", description = "Live status of robots and rooms, from the media nodes"),
        (name = "audit", description = "The append-only audit log (admins)"),
        (name = "setup", description = "First-run setup: the first administrator, with the one-time code from the server's log"),
        (name = "meta", description = "Health, JWKS, this document"),
    )
)]
pub(crate) struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Access token from POST /api/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "robot_credential",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Robot <credential>`, the credential shown when the robot was registered",
            ))),
        );
    }
}
