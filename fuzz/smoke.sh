#!/usr/bin/env bash
# CI smoke run of every fuzz target: build them, then run each for a few seconds on the
# checked-in seed corpus only (no corpus is written back). It catches a target that no longer
# builds and a regression that the seeds or a few thousand mutations reach; the real campaign
# is fuzz/campaign.sh. FUZZ_SMOKE_SECS per target (default 10); FUZZ_SANITIZER (default address).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SMOKE_SECS:-10}
san=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked
fi
start=$(date +%s)
cargo fuzz build --fuzz-dir fuzz -s "$san"
built=$(date +%s)
echo "fuzz targets built in $((built - start)) s"
for t in $(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v bedside-fuzz); do
  work=$(mktemp -d)
  # Seeds are copied: libFuzzer adds to the first corpus directory, never to the repository.
  cp -r "fuzz/seeds/$t/." "$work/" 2>/dev/null || true
  found=$(mktemp -d)
  cargo fuzz run --fuzz-dir fuzz -s "$san" "$t" "$work" -- -max_total_time="$secs" \
    -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$found/" 2>&1 \
    | grep -E 'DONE|^Done|SUMMARY|panicked' || true
  rm -rf "$work"
  # Only this run's findings count (fuzz/artifacts may hold a campaign's old ones).
  if [ -n "$(ls -A "$found")" ]; then
    mkdir -p "fuzz/artifacts/$t"
    cp "$found"/* "fuzz/artifacts/$t/"
    echo "fuzz smoke: $t crashed, input in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  rm -rf "$found"
done
echo "fuzz smoke: every target ran ${secs} s without a crash; total $(( $(date +%s) - start )) s"
