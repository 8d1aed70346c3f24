#!/usr/bin/env bash
# API contract test: schemathesis against the OpenAPI document a real `bedside serve` serves
# (/api/openapi.json), once per role: admin, doctor, student, anonymous. Checks: no 5xx, every
# response matches the document (status codes, content types, headers, body schemas), plus
# schemathesis's other checks (negative data rejected, positive data accepted, ...).
#
#   tests/contract/run.sh [MAX_EXAMPLES]          (default 50 per operation and phase)
#
# Needs the binary (cargo build -p bedside --bin bedside) and schemathesis at the pinned version
# (tests/contract/requirements.txt; a virtualenv is made in target/contract-venv if absent).
# The admin schemathesis logs in as is a second administrator, and logout is left out for every
# role, so no run can disable or log out the account it is testing with.
# Writes JUnit reports to target/contract/<role>.xml; exits non-zero if any role failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
examples=${1:-50}
bin=${BEDSIDE_BIN:-target/debug/bedside}
venv=target/contract-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r tests/contract/requirements.txt
fi
work=$(mktemp -d)
out=target/contract
mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
pass='contract test password'
BEDSIDE_ADMIN_USERNAME=root BEDSIDE_ADMIN_PASSWORD="$pass" RUST_LOG=warn \
  "$bin" serve --data-dir "$work/data" --http "127.0.0.1:$port" --udp-port 0 --no-ice-tcp \
  >"$work/serve.out" 2>"$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
login() {
  curl -fsS -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$pass\"}" "$base/api/auth/login" | json "['access_token']"
}
root=$(login root)
mk() {
  curl -fsS -H "authorization: Bearer $root" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"display_name\":\"Contract $2\",\"password\":\"$pass\",\"role\":\"$2\"}" \
    "$base/api/users" >/dev/null
}
mk admin2 admin; mk doctor1 doctor; mk student1 student
curl -fsS -H "authorization: Bearer $root" -H 'content-type: application/json' \
  -d '{"name":"Contract robot","ward":"W1"}' "$base/api/robots" >/dev/null

status=0
for role in admin doctor student anonymous; do
  auth=()
  case $role in
    admin) auth=(-H "Authorization: Bearer $(login admin2)") ;;
    doctor) auth=(-H "Authorization: Bearer $(login doctor1)") ;;
    student) auth=(-H "Authorization: Bearer $(login student1)") ;;
  esac
  echo "== schemathesis as $role"
  if ! "$venv/bin/schemathesis" --config-file tests/contract/schemathesis.toml run "$base/api/openapi.json" --url "$base" "${auth[@]}" \
      --checks all --exclude-path /api/auth/logout --max-examples "$examples" --seed 14 \
      --workers 1 --phases examples,coverage,fuzzing --suppress-health-check all \
      --request-timeout 10 --report junit --report-junit-path "$out/$role.xml" \
      --output-truncate true 2>&1 | tee "$out/$role.txt" | tail -40; then
    status=1
  fi
done
grep -q . "$out/serve.log" && { echo "== server log (warnings and errors)"; grep -iE 'panic|error' "$out/serve.log" | head -20 || true; }
exit $status
