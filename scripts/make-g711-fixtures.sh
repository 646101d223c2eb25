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

# Small G.711 WAV files written by SoX (format tag 7 / 6 with a `fact` chunk) and SoX's own
# decoding of them to raw s16le, for the WAV reader's tests.
# Mono μ-law, 2001 samples (odd data length: the writer adds a pad byte), a 300-3400 Hz sweep.
sox -D -r 8000 -n -r 8000 -c 1 -e u-law -b 8 "$out/sweep_ulaw.wav" synth 2001s sine 300-3400 vol 0.8
sox -D "$out/sweep_ulaw.wav" -t raw -e signed -b 16 -L "$out/sweep_ulaw.s16le"
# Three-channel A-law, three tones (interleaved frames; odd data length again).
sox -D -r 8000 -n -r 8000 -c 3 -e a-law -b 8 "$out/tones_alaw_3ch.wav" synth 161s sine 300 sine 500 sine 700
sox -D "$out/tones_alaw_3ch.wav" -t raw -e signed -b 16 -L "$out/tones_alaw_3ch.s16le"

sox --version
sha256sum "$out"/all_i16.* "$out"/*.wav "$out"/*.s16le
