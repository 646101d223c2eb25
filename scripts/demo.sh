#!/usr/bin/env bash
# The README's first command: installs the system packages the build needs if they are missing
# (pkg-config and ALSA's headers for cpal, scripts/setup-system.sh build), then enrolls the demo
# speakers from audio-fixtures/demo/ and streams the demo calls against the shipped models:
#
#     cargo run --release -p quivox-cli -- demo [ARGS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh build
exec cargo run --release -p quivox-cli -- demo "$@"
