#!/usr/bin/env bash
# Clean + augmented background for the shipped back ends (issue #12): renders one channel copy of
# every background utterance under OUT/background-aug/aug/<speaker>/ (codec, noise, handset,
# packet loss in turn; babble from the background's read speakers), next to the clean files, with
# the same speaker in utt2spk and what each copy went through in channels.tsv. Then
#   quivox train-backend --data OUT/background-aug --ubm models/gmm-ubm.qvx --out-dir models/
# rebuilds models/{ivector-plda,embedding-plda,fusion}.qvx (see models/README.md).
#
# Usage: scripts/make-augmented-background.sh [BACKGROUND] [OUT] [SEED]
#   BACKGROUND  ../shared/corpus/background by default
#   OUT         /tmp/qvx-aug by default (~200 MB, outside the repo)
#   SEED        2026 by default (the shipped models)
# Needs sox with AMR-NB and GSM (Debian: sox libsox-fmt-all) for the mobile codecs; the runtime
# needs none of it. Deterministic: each utterance's channel comes from ChaCha8(SEED), own stream.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
BACKGROUND=${1:-$HERE/../shared/corpus/background}
OUT=${2:-/tmp/qvx-aug}
SEED=${3:-2026}
# shellcheck source=scripts/lib-prepare.sh
source "$HERE/scripts/lib-prepare.sh"
mkdir -p "$OUT"
"$QUIVOX" augment-set --set "$BACKGROUND" --out "$OUT" --seed "$SEED"
echo "clean + augmented background in $OUT/background-aug"
