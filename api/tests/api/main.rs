//! Integration tests of the control plane: real HTTP on loopback, real SQLite in a temporary
//! directory per test, and the same tests against PostgreSQL (a fresh database per test) when
//! `BEDSIDE_TEST_POSTGRES_URL` is set. When it is not, each PostgreSQL half says so on stderr
//! (and fails if `BEDSIDE_REQUIRE_POSTGRES=1`).
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
mod live;
mod login;
mod matrix;
mod node_channel;
mod revocation;
mod robots_admin;
mod roster;
mod setup;
mod startup;
mod turn;
mod users;

/// Scenarios in this binary (each runs on both databases).
pub const SCENARIOS: usize = audit::SCENARIOS
    + auth::SCENARIOS
    + bookings::SCENARIOS
    + concurrency::SCENARIOS
    + errors::SCENARIOS
    + join::SCENARIOS
    + live::SCENARIOS
    + login::SCENARIOS
    + matrix::SCENARIOS
    + node_channel::SCENARIOS
    + revocation::SCENARIOS
    + robots_admin::SCENARIOS
    + roster::SCENARIOS
    + setup::SCENARIOS
    + startup::SCENARIOS
    + turn::SCENARIOS
    + users::SCENARIOS;
