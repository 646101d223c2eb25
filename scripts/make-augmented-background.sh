#!/usr/bin/env bash
# Clean + augmented background for the shipped models (issue #12): renders one channel copy of
# every background utterance under OUT/background-aug/aug/<speaker>/ (codec, noise, handset,
# packet loss in turn; babble from the background's read speakers), next to the clean files, with
# the same speaker in utt2spk and what each copy went through in channels.tsv. With COPIES = n > 1,
# copies 2..n (seeds SEED+1 .. SEED+n-1) go under OUT/background-aug/aug/x<k>/<speaker>/: training
# files of the same speakers; the held-out calibration trials use the first copy only.
#   quivox train-cohort --data OUT/background-aug ...          (COPIES = 1: models/gmm-ubm.qvx)
#   quivox train-backend --data OUT/background-aug --ubm models/gmm-ubm.qvx --out-dir models/
#                                                               (COPIES = 3: the back ends)
# rebuild the shipped files (exact commands in models/README.md).
#
# Usage: scripts/make-augmented-background.sh [BACKGROUND] [OUT] [SEED] [COPIES]
#   BACKGROUND  ../shared/corpus/background by default
#   OUT         /tmp/qvx-aug by default (~200 MB per copy, outside the repo)
#   SEED        2026 by default (the shipped models)
#   COPIES      1 by default
# Needs sox with AMR-NB and GSM (Debian: sox libsox-fmt-all) for the mobile codecs; the runtime
# needs none of it. Deterministic: each utterance's channel comes from ChaCha8(SEED), own stream.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
BACKGROUND=${1:-$HERE/../shared/corpus/background}
OUT=${2:-/tmp/qvx-aug}
SEED=${3:-2026}
COPIES=${4:-1}
# shellcheck source=scripts/lib-prepare.sh
source "$HERE/scripts/lib-prepare.sh"
mkdir -p "$OUT"
"$QUIVOX" augment-set --set "$BACKGROUND" --out "$OUT" --seed "$SEED"
for ((k = 2; k <= COPIES; k++)); do
  extra="$OUT/extra-$k"
  rm -rf "$extra" "$OUT/background-aug/aug/x$k"
  "$QUIVOX" augment-set --set "$BACKGROUND" --out "$extra" --seed $((SEED + k - 1))
  mv "$extra/background-aug/aug" "$OUT/background-aug/aug/x$k"
  grep '^aug/' "$extra/background-aug/utt2spk" | sed "s#^aug/#aug/x$k/#" >>"$OUT/background-aug/utt2spk"
  grep '^aug/' "$extra/background-aug/channels.tsv" | sed "s#^aug/#aug/x$k/#" >>"$OUT/background-aug/channels.tsv"
  rm -rf "$extra"
done
echo "clean + augmented background ($COPIES channel copies of each file) in $OUT/background-aug"
