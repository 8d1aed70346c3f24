//! Persistence: the only place with SQL. [`Store`] is the handle the rest of the crate holds;
//! its operations (one file per table or two: `users`, `sessions`, `robots`, `bookings`,
//! `audit_log`, `node` (deny list and room latches), `login_throttle`)
//! are written once, SQL text and row mapping shared by both databases.
//!
//! The databases differ in a few places only, and those make up the `backend::Backend` trait,
//! implemented by `sqlite` (the default) and `postgres`: how ids, times and JSON are bound and
//! read, how "no overlapping bookings" is made atomic, and which error codes say so. [`Store`]
//! (in `handle`) is an enum of the two that implements the same trait by matching: an enum
//! rather than `Arc<dyn …>` because the trait's methods return `impl Future + Send` (no boxing,
//! and the compiler checks each future is `Send`); a trait of our own rather than `sqlx::Any`
//! because `Any` binds and reads only strings and numbers, so PostgreSQL's `uuid` and
//! `timestamptz` columns would need casts in every statement and SQLite's encodings would leak
//! into the shared code.
//!
//! What still repeats, and why it stays (as `duplicates` lists it, 2026-12-01; the 26 repeated
//! runs of the two backends before `Backend` are down to these):
//! - `sqlite.rs` ~ `postgres.rs`: the bodies of `execute`, `fetch_all`, `migrate` and `close`,
//!   the `query()` fold over parameters and the tail of the booking transaction look alike but
//!   run on different types (`SqlitePool`/`PgPool`, `Sqlite`/`Postgres` arguments and rows);
//!   sharing them would take sqlx's generic `Database` bounds through every signature for a
//!   few lines each, and the binding lines are exactly where the dialects differ.
//! - `handle.rs` ~ each backend: the enum's dispatch, one `match` arm per backend (the price of
//!   the enum, above).
//! - row readers and statement builders of different tables (`audit_log`, `sessions`, `robots`,
//!   `users`, `bookings`, `node`, `login_throttle`) have the same shape with other columns: each
//!   maps its own table, and a macro would hide which column goes where.
//!
//! Operations take and return domain types (`model`) and say nothing about HTTP or
//! permissions. Not here: business rules (the domain modules decide; the store records), and
//! no UPDATE or DELETE of audit entries, ever.

mod audit_log;
mod backend;
mod bookings;
mod handle;
mod login_throttle;
mod migrations;
mod node;
mod postgres;
mod robots;
mod sessions;
mod sqlite;
mod users;

pub(crate) use handle::{create_dir_private, Store};
