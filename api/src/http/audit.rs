//! HTTP handler for reading the audit log (admins), filtered and paged by id.
//!
//! Thin: extract, call the domain (`crate::audit`). Not here: writing entries.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{AdminUser, QueryParams};
use crate::api::Api;
use crate::audit::{self, AuditPage, AuditQuery};
use crate::error::{ApiError, ErrorBody};

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// Audit entries, newest first (admins).
#[utoipa::path(get, path = "/api/audit", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn list_audit(
    State(api): State<Api>,
    AdminUser(_admin): AdminUser,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    audit::list(api.store(), q).await.map(Json)
}
