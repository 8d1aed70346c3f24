#!/usr/bin/env bash
# A fuzzing campaign: every target (or the ones named) for a time box each, on a working corpus
# seeded from the checked-in seeds, at the lowest CPU priority. Prints and writes (to
# fuzz/campaign-results.md) one row per target: executions, libFuzzer's final `cov:` (edges
# covered) and `ft:` (features), corpus size, crashes. A crash leaves its input in
# fuzz/artifacts/<target>/ and makes the script exit non-zero.
#
#   fuzz/campaign.sh [SECONDS_PER_TARGET] [TARGET[:SECONDS]...]   default 240 s, every target
#
# FUZZ_RUNS=N also stops each target after N executions (whichever comes first: the time box
# or the count), e.g. FUZZ_RUNS=10000000 for the "10 million each" aim.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); runs on stable Rust through
# RUSTC_BOOTSTRAP=1 (libFuzzer needs -Z flags). FUZZ_SANITIZER=address|none (default address).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-240}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v bedside-fuzz)
san=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1
# Build once (skip with FUZZ_SKIP_BUILD=1 when built already, e.g. under a build lock), then run
# the binaries directly: `cargo fuzz run` would start a cargo build per target.
[ "${FUZZ_SKIP_BUILD:-0}" = 1 ] || cargo fuzz build --fuzz-dir fuzz -s "$san" >/dev/null
bins=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release
out=fuzz/campaign-results.md
status=0
{
  echo "| target | seconds | executions | exec/s | cov | ft | corpus | crashes |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
} > "$out"
for item in "${targets[@]}"; do
  t=${item%%:*}
  secs_t=$secs
  [ "$t" = "$item" ] || secs_t=${item#*:}
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  log=$(mktemp)
  set +e
  runs_arg=()
  [ -z "${FUZZ_RUNS:-}" ] || runs_arg=(-runs="$FUZZ_RUNS")
  nice -n 19 "$bins/$t" "$corpus" "fuzz/seeds/$t" "${runs_arg[@]}" \
    -max_total_time="$secs_t" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep -E ' cov: ' | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  files=$(find "$corpus" -type f | wc -l)
  crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
  row="| $t | $secs_t | ${runs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $files | $crashes |"
  echo "$row" | tee -a "$out"
  if [ $rc -ne 0 ]; then
    status=1
    echo "!! $t exited $rc; last lines:" >&2
    tail -30 "$log" >&2
  fi
  rm -f "$log"
done
exit $status
