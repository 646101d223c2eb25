#!/usr/bin/env bash
# Installs the Debian packages quivox needs, only those missing (`apt-get update` first when there
# are any). Idempotent; run as root (CI) or with sudo.
#
#   scripts/setup-system.sh           everything the build and the test suite need (what .ci/run does)
#   scripts/setup-system.sh build     only what building the binaries needs (scripts/demo.sh)
#   scripts/setup-system.sh data      sox with AMR-NB / GSM, for the data-preparation scripts
#                                     (channel augmentation, degraded sets, whole-call channel trials)
set -euo pipefail
GROUPS_WANTED=("${@:-tests}")
PKGS=()
need() { dpkg -s "$1" >/dev/null 2>&1 || PKGS+=("$1"); }
for group in "${GROUPS_WANTED[@]}"; do
  case "$group" in
    build | tests)
      need pkg-config
      # The CLI's microphone capture and quivoxd's sound-card ingress (cpal) link ALSA.
      need libasound2-dev
      ;;&
    tests)
      # The store's PostgreSQL backend is tested against a real server (scripts/start-test-postgres.sh).
      need postgresql
      # quivoxd's RTP integration test drives SIPp (Debian package sip-tester) as the SIP/RTP peer.
      need sip-tester
      ;;
    build) ;;
    data)
      need sox
      need libsox-fmt-all
      ;;
    *)
      echo "setup-system.sh: unknown group \"$group\"; expected build, tests or data" >&2
      exit 2
      ;;
  esac
done
if ((${#PKGS[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${PKGS[@]}"
fi
