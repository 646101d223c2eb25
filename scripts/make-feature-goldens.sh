#!/usr/bin/env bash
# Rebuilds the MFCC test fixtures and their golden features in audio-fixtures/.
#
# Stage 1: copies two 4.000-s speech excerpts from the development corpus (16-bit PCM files).
# Stage 2: synthesises three deterministic signals (numpy, fixed seed): near-silence, a tone sweep, noise.
# Stage 3: runs the external reference (kaldi-native-fbank via /work/shared/tools/kaldi_mfcc_ref.py)
#          on every fixture: plain (20 ceps), --use-energy, and --deltas --cmn. Float32 .npy outputs.
#
# Usage: scripts/make-feature-goldens.sh   (from the repository root)
# Env:   PY (default /tmp/peers-venv/bin/python: numpy + kaldi-native-fbank),
#        CORPUS (default /work/shared/corpus), TOOLS (default /work/shared/tools).
set -euo pipefail

PY=${PY:-/tmp/peers-venv/bin/python}
CORPUS=${CORPUS:-/work/shared/corpus}
TOOLS=${TOOLS:-/work/shared/tools}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=$ROOT/audio-fixtures
GOLD=$FIX/golden
mkdir -p "$GOLD"

# --- stage 1 + 2: fixture WAVs (8 kHz, mono, 16-bit PCM) -------------------------------------
"$PY" - "$CORPUS" "$FIX" <<'PYEOF'
import sys, wave
import numpy as np

corpus, fix = sys.argv[1], sys.argv[2]
RATE = 8000

def write(path, samples):
    x = np.clip(np.round(samples), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(RATE); w.writeframes(x.tobytes())

def read(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == RATE, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)

# Stage 1: speech excerpts, the first 4.000 s (32 000 samples) of two dev test segments.
for src, dst in [("dev/test/sc0cb74144/sc0cb74144-t00.wav", "speech_sc0cb74144_t00.wav"),
                 ("dev/test/fsddgeorge/fsddgeorge-t00.wav", "speech_fsddgeorge_t00.wav")]:
    write(f"{fix}/{dst}", read(f"{corpus}/{src}")[:4 * RATE])

# Stage 2: synthetic signals, 2.000 s each, seed 20261123.
rng = np.random.default_rng(20261123)
n = 2 * RATE
t = np.arange(n) / RATE
# near-silence: 0.5 s of exact digital zero, then Gaussian noise of 1 LSB rms
silence = np.concatenate([np.zeros(RATE // 2), rng.normal(0.0, 1.0, n - RATE // 2)])
write(f"{fix}/synth_silence.wav", silence)
# white Gaussian noise, 3000 rms
write(f"{fix}/synth_noise.wav", rng.normal(0.0, 3000.0, n))
# exponential sine sweep 100 -> 3800 Hz, amplitude 8000, over a 100-LSB-rms noise floor (35 dB SNR). Without
# the floor, mel bands far from the tone sit ~27 nats below it, at float32 FFT round-off level,
# where float32 implementations (the reference included) disagree with float64 by up to 0.13
# (0.01 with a 10-LSB floor): a test of round-off, not of the algorithm.
f0, f1 = 100.0, 3800.0
k = np.log(f1 / f0) / 2.0
sweep = 8000.0 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1.0) / k)
write(f"{fix}/synth_sweep.wav", sweep + rng.normal(0.0, 100.0, n))
PYEOF

# --- stage 3: golden features from the external reference ------------------------------------
for wav in "$FIX"/speech_*.wav "$FIX"/synth_*.wav; do
  base=$(basename "$wav" .wav)
  "$PY" "$TOOLS/kaldi_mfcc_ref.py" "$wav" "$GOLD/$base.mfcc.npy"
  "$PY" "$TOOLS/kaldi_mfcc_ref.py" "$wav" "$GOLD/$base.mfcc_energy.npy" --use-energy
  "$PY" "$TOOLS/kaldi_mfcc_ref.py" "$wav" "$GOLD/$base.mfcc_deltas_cmn.npy" --deltas --cmn
done
# The speaker-ID front end's energy floor (quivox DIGITAL_SILENCE_ENERGY_FLOOR = 200) on the fixtures
# with digital silence and near-silence: the reference's own options with --energy-floor=200.
for base in synth_silence speech_sc0cb74144_t00; do
  "$PY" - "$TOOLS" "$FIX/$base.wav" "$GOLD/$base.mfcc_energy_floor200.npy" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
import kaldi_mfcc_ref as K
_, x = K.read_wav_int16(sys.argv[2])
o = K.make_opts(num_ceps=20, use_energy=True)
o.energy_floor = 200.0
K.save(K.mfcc(x, o), sys.argv[3])
PYEOF
done
"$PY" "$TOOLS/kaldi_mfcc_ref.py" --print-options > "$GOLD/reference-options.txt"
echo "goldens written to $GOLD"
