#!/usr/bin/env bash
# The whole test suite: Rust unit + integration tests (real UDP, str0m peers, SQLite, and
# PostgreSQL when BEDSIDE_TEST_POSTGRES_URL is set), then the browser end-to-end tests in
# headless Chromium against the real `bedside` binary built by the first step.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace"
cargo test --workspace --locked

if [ -f tests/e2e/package.json ]; then
  echo "== browser tests (headless Chromium)"
  if [ ! -x /usr/bin/chromium ]; then
    echo "Chromium is missing: install it with 'apt-get install -y chromium'" >&2
    exit 1
  fi
  cd tests/e2e
  [ -d node_modules ] || npm ci --no-audit --no-fund
  export BEDSIDE_BIN="$PWD/../../target/debug/bedside"
  npm run --silent typecheck
  npm test
fi
