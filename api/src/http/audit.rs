//! HTTP handlers for reading the audit log (admins): filtered pages by id, and the same filter
//! as a CSV download.
//!
//! Thin: extract, call the domain (`crate::audit`, `crate::audit_export`). Not here: writing
//! entries, the CSV format.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{AdminUser, QueryParams};
use crate::api::Api;
use crate::audit::{self, kinds, AuditPage, AuditQuery};
use crate::audit_export;
use crate::error::{ApiError, ErrorBody};

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(export_audit))
}

/// Audit entries, newest first, with the names of the actors and robots they concern (admins).
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

/// The entries the filter selects as a CSV file, newest first (admins); at most 50,000 rows
/// (`X-Bedside-Truncated: true` when more matched: narrow the time range). Columns: `id`, `at`,
/// `kind`, `actor_id`, `actor_name`, `actor_kind`, `robot_id`, `robot_name`, `detail` (JSON).
/// Every cell is quoted; one a spreadsheet would run as a formula starts with `'`. The export
/// itself is audited (`audit.exported`).
#[utoipa::path(get, path = "/api/audit.csv", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses(
        (status = 200, description = "RFC 4180 CSV, UTF-8", content_type = "text/csv", body = String,
            headers(("X-Bedside-Truncated" = String, description = "`true` when more rows matched than the file holds"))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn export_audit(
    State(api): State<Api>,
    AdminUser(admin): AdminUser,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<(HeaderMap, String), ApiError> {
    let now = api.now();
    let (csv, truncated) = audit_export::export(api.store(), q.clone()).await?;
    api.audit()
        .record(
            kinds::AUDIT_EXPORTED,
            Some(admin.user.id),
            None,
            serde_json::json!({
                "kind": q.kind, "actor": q.actor, "room": q.room,
                "since": q.since, "until": q.until, "truncated": truncated,
            }),
        )
        .await?;
    let mut headers = HeaderMap::new();
    let name = format!(
        "attachment; filename=\"bedside-audit-{}.csv\"",
        now.format("%Y%m%d-%H%M%S")
    );
    headers.insert(
        CONTENT_TYPE,
        "text/csv; charset=utf-8"
            .parse()
            .map_err(|_| ApiError::internal("header"))?,
    );
    headers.insert(
        CONTENT_DISPOSITION,
        name.parse().map_err(|_| ApiError::internal("header"))?,
    );
    headers.insert(
        CACHE_CONTROL,
        "no-store"
            .parse()
            .map_err(|_| ApiError::internal("header"))?,
    );
    if truncated {
        headers.insert(
            "x-bedside-truncated",
            "true".parse().map_err(|_| ApiError::internal("header"))?,
        );
    }
    Ok((headers, csv))
}
