//! The audit log as a CSV file, for an administrator to keep or open in a spreadsheet.
//!
//! RFC 4180: comma-separated, CRLF line ends, every field quoted (quotes doubled), UTF-8 with no
//! byte-order mark. Names and details come from people (a display name, a booking note in a
//! detail), so a cell that a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
//! `@`, a tab or a carriage return) gets a leading `'` and is shown as text instead (OWASP's
//! advice against CSV injection).
//!
//! Not here: which entries (`audit::filter_of`, the same filter as the JSON listing), HTTP.

use chrono::SecondsFormat;

use crate::audit::{filter_of, name_entries, AuditQuery};
use crate::error::ApiError;
use crate::model::AuditEntry;
use crate::store::Store;

/// The most rows one export holds; narrow the filter (by time) for more.
pub const MAX_ROWS: usize = 50_000;
/// Rows read per query.
const PAGE: u32 = 1000;

const HEADER: [&str; 9] = [
    "id",
    "at",
    "kind",
    "actor_id",
    "actor_name",
    "actor_kind",
    "robot_id",
    "robot_name",
    "detail",
];

/// The CSV text of the entries `q` selects, newest first, and whether it stopped at
/// [`MAX_ROWS`] with more left. `q.limit` is ignored; `q.before` is where it starts.
pub(crate) async fn export(store: &Store, q: AuditQuery) -> Result<(String, bool), ApiError> {
    let mut filter = filter_of(&q, PAGE)?;
    let mut out = String::new();
    line(&mut out, HEADER.iter().map(|h| h.to_string()));
    let mut rows = 0;
    loop {
        let mut page = store.list_audit(&filter).await?;
        name_entries(store, &mut page).await?;
        let full = page.len() == PAGE as usize;
        for e in &page {
            if rows == MAX_ROWS {
                return Ok((out, true));
            }
            line(&mut out, fields(e));
            rows += 1;
        }
        match (full, page.last()) {
            (true, Some(last)) => filter.before = Some(last.id),
            _ => return Ok((out, false)),
        }
    }
}

fn fields(e: &AuditEntry) -> impl Iterator<Item = String> {
    [
        e.id.to_string(),
        e.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        e.kind.clone(),
        e.actor.clone().unwrap_or_default(),
        e.actor_name.clone().unwrap_or_default(),
        e.actor_kind.clone().unwrap_or_default(),
        e.room.clone().unwrap_or_default(),
        e.robot_name.clone().unwrap_or_default(),
        e.detail.to_string(),
    ]
    .into_iter()
}

fn line(out: &mut String, fields: impl Iterator<Item = String>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        cell(out, &f);
    }
    out.push_str("\r\n");
}

/// One quoted cell, defused if a spreadsheet would take it for a formula.
fn cell(out: &mut String, value: &str) {
    out.push('"');
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> String {
        let mut s = String::new();
        cell(&mut s, v);
        s
    }

    #[test]
    fn cells_are_quoted_and_defused() {
        assert_eq!(one("plain"), "\"plain\"");
        assert_eq!(one(""), "\"\"");
        assert_eq!(one("a,b"), "\"a,b\"");
        assert_eq!(one("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(one("two\r\nlines"), "\"two\r\nlines\"");
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=x", "\r=x"] {
            assert_eq!(one(formula), format!("\"'{}\"", formula), "{formula:?}");
        }
        // Only the first character counts.
        assert_eq!(one("a=1"), "\"a=1\"");
    }

    #[test]
    fn lines_end_in_crlf() {
        let mut s = String::new();
        line(&mut s, ["a", "=b"].iter().map(|v| v.to_string()));
        assert_eq!(s, "\"a\",\"'=b\"\r\n");
    }
}
