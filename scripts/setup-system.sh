#!/usr/bin/env bash
# Installs the Debian packages quivox's build and tests need. Idempotent; run as root (CI) or with sudo.
set -euo pipefail
PKGS=()
need() { dpkg -s "$1" >/dev/null 2>&1 || PKGS+=("$1"); }
need pkg-config
# The store's PostgreSQL backend is tested against a real server (scripts/start-test-postgres.sh).
need postgresql
# The CLI's microphone capture and quivoxd's sound-card ingress (cpal) link ALSA.
need libasound2-dev
# quivoxd's RTP integration test drives SIPp (Debian package sip-tester) as the SIP/RTP peer.
need sip-tester
if ((${#PKGS[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${PKGS[@]}"
fi
