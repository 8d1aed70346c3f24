//! Integration tests of the control plane: real HTTP on loopback, real SQLite in a temporary
//! directory per test, and the same tests against PostgreSQL (a fresh database per test) when
//! `BEDSIDE_TEST_POSTGRES_URL` is set.
//!
//! Each scenario is an `async fn(Backend)` listed in `backend_tests!`, which makes a `sqlite`
//! and a `postgres` test of it. One test binary, so there is one link, not one per file.

#[macro_use]
mod common;

mod audit;
mod auth;
mod bookings;
mod concurrency;
mod errors;
mod join;
mod matrix;
mod startup;
