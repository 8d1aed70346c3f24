//! The OpenAPI document's frame: title, tags and security schemes. The paths and schemas come
//! from the `#[utoipa::path]` attributes on the handlers (`http`), collected as routes register.
//!
//! Not here: any path list to keep in sync by hand.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::Ref;
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

/// Finish the document once every route's path is in it (`http` calls this after collecting
/// them; a `modifiers(...)` entry above runs before any path exists).
pub(crate) fn complete(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    MalformedRequests.modify(&mut openapi);
    openapi
}

/// Every operation may answer 400 `bad_request`: a path id that is not a UUID, a query string or
/// a body that is not JSON is refused by the extractors before any handler runs; an operation
/// with a body may answer 422 for JSON of the wrong shape. Documented once here rather than on each handler (schemathesis
/// found it undocumented on every operation; `tests/contract/run.sh`).
struct MalformedRequests;

impl Modify for MalformedRequests {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bad_request = ResponseBuilder::new()
            .description(
                "Malformed request: a path parameter, query string or body that does not parse \
                 (`bad_request`)",
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        // JSON of the wrong shape for the body's type is `validation_failed`, like the
        // domain's own checks.
        let wrong_body = ResponseBuilder::new()
            .description("A JSON body of the wrong shape or values (`validation_failed`)")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations: [&mut Option<Operation>; 5] = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                op.responses
                    .responses
                    .entry("400".to_string())
                    .or_insert_with(|| bad_request.clone().into());
                if op.request_body.is_some() {
                    op.responses
                        .responses
                        .entry("422".to_string())
                        .or_insert_with(|| wrong_body.clone().into());
                }
            }
        }
    }
}
