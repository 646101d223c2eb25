#!/usr/bin/env bash
# The README's test command (and .ci/run's): installs what the tests need if it is missing
# (scripts/setup-system.sh), starts a throw-away PostgreSQL on loopback for the store tests
# (scripts/start-test-postgres.sh, exports QUIVOX_TEST_PG_URL), then runs
#
#     cargo test --workspace --release [ARGS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
# Assigned first so that a failure of the script stops here (`eval "$(...)"` alone would hide it).
PG_ENV="$(bash scripts/start-test-postgres.sh)"
eval "$PG_ENV"
cargo test --workspace --release "$@"
