//! Which instants the API takes from clients: years 1 to 9999. Both databases store that range
//! (PostgreSQL's `timestamptz` stops short of chrono's), RFC 3339 writes it without a sign, and
//! adding the API's own durations (days, hours) to it cannot overflow.
//!
//! Not here: the rules on what a time must be (`booking`, `robots`, `audit` check order and
//! windows after this).

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::ApiError;

fn bounds() -> (DateTime<Utc>, DateTime<Utc>) {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    (
        day(1, 1, 1)
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc(),
        day(9999, 12, 31)
            .and_hms_opt(23, 59, 59)
            .unwrap_or_default()
            .and_utc(),
    )
}

fn check(name: &str, t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let (earliest, latest) = bounds();
    if t < earliest || t > latest {
        return Err(format!("{name} must be between the years 1 and 9999"));
    }
    Ok(t)
}

/// A query parameter's instant, or 400.
pub(crate) fn query(
    name: &str,
    t: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    t.map(|t| check(name, t).map_err(ApiError::BadRequest))
        .transpose()
}

/// A request body's instant, or 422.
pub(crate) fn body(name: &str, t: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    check(name, t).map_err(ApiError::Validation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_one_to_9999() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert!(query("from", Some(t("9999-12-31T23:59:59Z"))).is_ok());
        assert!(query("from", Some(t("0001-01-01T00:00:00Z"))).is_ok());
        assert!(query("from", None).unwrap().is_none());
        assert!(matches!(
            query("from", Some(DateTime::<Utc>::MAX_UTC)),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            body("starts_at", DateTime::<Utc>::MIN_UTC),
            Err(ApiError::Validation(_))
        ));
    }
}
