#!/usr/bin/env bash
# Rebuilds the golden files of quivox's neural speaker encoder tests (src/embedding/testdata/)
# from Resemblyzer 0.1.4 itself (../shared/tools/resemblyzer_ref.py and scripts/embedding_goldens.py).
#
#   scripts/make-embedding-goldens.sh
#
# Needs sox and a Python with resemblyzer==0.1.4, torch, librosa, numpy (default /tmp/peers-venv,
# as in ../shared/tools/README.md). Deterministic (no dither, 1 torch thread).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PY=${PY:-/tmp/peers-venv/bin/python}
TOOLS=${TOOLS:-$ROOT/../../shared/tools}
[ -f "$TOOLS/resemblyzer_ref.py" ] || TOOLS=/work/shared/tools
CORPUS=${CORPUS:-/work/shared/corpus}
OUT=$ROOT/src/embedding/testdata
FIXTURES="so0120-t00 so0457-t01 so1027-t02"   # dev-read test segments, 7.000 s, speechocean762 (CC BY 4.0)

mkdir -p "$OUT"
for name in $FIXTURES; do
  spk=${name%-t*}
  # 1. the corpus stores G.711 mu-law (format tag 7); decode to 16-bit PCM, nothing else changed
  sox -D "$CORPUS/dev-read/test/$spk/$name.wav" -e signed-integer -b 16 "$OUT/$name.wav"
  # 2. the reference tool itself: full pipeline (resample soxr_hq, preprocess_wav, embed_utterance)
  "$PY" "$TOOLS/resemblyzer_ref.py" "$OUT/$name.wav" "$OUT/$name.emb.npy" --partials "$OUT/$name.partials.npy"
  # 3. encoder alone (no volume normalisation / trimming); the same run also dumps the exact mel
  #    frames the encoder received (the zero-padded waveform's melspectrogram), for the encoder test
  "$PY" "$TOOLS/resemblyzer_ref.py" "$OUT/$name.wav" "$OUT/$name.nopre.emb.npy" \
    --partials "$OUT/$name.nopre.partials.npy" --no-preprocess
  "$PY" "$HERE/embedding_goldens.py" encoder-input "$OUT/$name.wav" "$OUT/$name.nopre.mel.npy" \
    "$OUT/$name.nopre.emb.npy"
  # 4. the same full pipeline with webrtcvad replaced by quivox's energy VAD rule (isolates the VAD)
  "$PY" "$HERE/embedding_goldens.py" energy-vad "$OUT/$name.wav" "$OUT/$name.energyvad.emb.npy"
done
# 5. librosa's mel spectrogram of a synthetic signal given by a closed formula (regenerated in Rust)
"$PY" "$HERE/embedding_goldens.py" synthetic-mel "$OUT/synthetic.mel.npy"
ls -la "$OUT"
