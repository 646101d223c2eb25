#!/usr/bin/env bash
# Regenerates audio-fixtures/g711/{all_i16.ulaw,all_i16.alaw}: every 16-bit sample value,
# in order -32768, -32767, ..., 32767 (65536 samples), encoded by sox to raw G.711.
# -D disables dither (sox would otherwise dither when going to 8-bit codes).
# Needs sox (Debian package `sox`) and python3. Deterministic: re-running must not change the files.
set -euo pipefail
cd "$(dirname "$0")/.."
out=audio-fixtures/g711
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# All i16 values, little-endian, ascending.
python3 -c 'import struct,sys; sys.stdout.buffer.write(b"".join(struct.pack("<h", v) for v in range(-32768, 32768)))' > "$tmp/all_i16.s16le"
sox -D -t raw -r 8000 -e signed -b 16 -c 1 -L "$tmp/all_i16.s16le" -t raw -e u-law -b 8 "$out/all_i16.ulaw"
sox -D -t raw -r 8000 -e signed -b 16 -c 1 -L "$tmp/all_i16.s16le" -t raw -e a-law -b 8 "$out/all_i16.alaw"
sox --version
sha256sum "$out/all_i16.ulaw" "$out/all_i16.alaw"
