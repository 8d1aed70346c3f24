//! Failpoints: named places where a test build kills its own process on purpose, so that a test
//! can show what a crash at exactly that point leaves in the database (`tests/crash.rs`).
//!
//! Compiled in only with the `failpoints` feature, which the root crate's tests turn on (so the
//! `bedside` binary that `cargo test` builds has them) and no release build does; without the
//! feature [`hit`] is empty and `BEDSIDE_FAILPOINT` means nothing. With it, `BEDSIDE_FAILPOINT=<name>`
//! arms one failpoint; the variable is read once, when the store opens ([`arm_from_env`]).
//!
//! Not here: fault injection on the network (nftables in the tests) or a general fault framework:
//! a failpoint is a process abort (no destructors, no rollback sent), nothing softer.

/// Between the booking's INSERT and its audit row's INSERT, inside the booking's transaction.
pub(crate) const AFTER_BOOKING_INSERT: &str = "after_booking_insert";

/// The environment variable naming the armed failpoint.
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
pub(crate) const ENV: &str = "BEDSIDE_FAILPOINT";

#[cfg(feature = "failpoints")]
static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Read `BEDSIDE_FAILPOINT` (once per process) and say loudly when one is armed.
pub(crate) fn arm_from_env() {
    #[cfg(feature = "failpoints")]
    ARMED.get_or_init(|| {
        let armed = std::env::var(ENV).ok().filter(|s| !s.is_empty());
        if let Some(name) = &armed {
            tracing::warn!(failpoint = %name, "failpoint armed: this process will abort there");
        }
        armed
    });
}

/// Abort the process here if `name` is the armed failpoint.
#[inline]
pub(crate) fn hit(name: &str) {
    #[cfg(feature = "failpoints")]
    {
        arm_from_env();
        if ARMED.get().and_then(|a| a.as_deref()) == Some(name) {
            eprintln!("failpoint {name}: aborting the process");
            std::process::abort();
        }
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
