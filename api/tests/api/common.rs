//! Test harness: the `backend_tests!` macro that runs each scenario on SQLite and on PostgreSQL,
//! and the shared test support (`bedside_api::testing`) re-exported for the scenario files.
//!
//! Not for assertions about behaviour; those live in the scenario files.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use bedside_api::testing::*;

/// Make a `sqlite` and a `postgres` test of each listed `async fn(Backend)`, and count them in
/// `SCENARIOS` (summed in `main.rs`).
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        /// Scenarios in this file.
        pub const SCENARIOS: usize = [$(stringify!($name)),+].len();
        $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::common::Backend::postgres().await {
                    Some(backend) => super::$name(backend).await,
                    None => $crate::common::postgres_skipped(module_path!()),
                }
            }
        }
        )+
    };
}

static SKIPPED: AtomicUsize = AtomicUsize::new(0);

/// A PostgreSQL scenario could not run: fail if PostgreSQL is required, else say so where it is
/// seen (straight to stderr: the test harness hides a passing test's own output).
pub fn postgres_skipped(scenario: &str) {
    let required = std::env::var(REQUIRE_POSTGRES_ENV).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_ENV} is unset: {scenario} cannot run on PostgreSQL"
    );
    let n = SKIPPED.fetch_add(1, Ordering::SeqCst) + 1;
    let _ = writeln!(
        std::io::stderr(),
        "!! PostgreSQL NOT TESTED: {n} of {} scenarios skipped so far ({scenario}); \
         set {POSTGRES_ENV} to run them",
        crate::SCENARIOS
    );
}
