#!/usr/bin/env bash
# No import cycles between the modules of a crate: arrows one way.
#
# `cargo modules dependencies --acyclic` (cargo-modules 0.27) also counts a type and its own
# methods as a cycle (the type "owns" the method, the method "uses" Self), so every crate with
# an `impl` fails it. This script asks cargo-modules for the module-level "uses" graph instead
# (functions, types and traits folded into their modules, "owns" edges left out) and fails on
# any cycle in it, printing the modules on the cycle.
#
# Usage: .ci/check-cycles.sh [CRATE ...]   (default: every library crate of the workspace)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-modules >/dev/null || cargo install cargo-modules --locked --version 0.27.0
crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(bedside-proto bedside-sfu bedside-api bedside)
status=0
for c in "${crates[@]}"; do
  dot=$(RUST_BACKTRACE=0 cargo modules dependencies --lib -p "$c" --no-externs --no-sysroot \
        --no-fns --no-types --no-traits --no-owns 2>/dev/null) || {
    echo "cargo modules failed on $c" >&2; status=1; continue; }
  python3 .ci/cycles.py "$c" <<<"$dot" || status=1
done
exit $status
