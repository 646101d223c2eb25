#!/usr/bin/env bash
# Degraded development set (issue #12): renders the TEST segments of a development set (never
# its enrollment) through random phone channels with a fixed seed, one set per channel kind
# plus their union, each laid out like ../shared/corpus/dev-read (enroll -> link to the clean
# enrollment, enroll.lst, trials.txt, ident lists, test/, channels.tsv = what each test went
# through), so `quivox eval --corpus OUT --sets dev-read-noise` reads it like any other set.
#
# Usage: scripts/make-degraded-dev.sh [CORPUS] [OUT] [SEED]
#   CORPUS  ../shared/corpus by default (the set is CORPUS/$SET, babble from CORPUS/background)
#   OUT     /work/degraded by default (outside the repo; ~40 MB)
#   SEED    2026 by default
# Environment: SET=dev-read  KINDS=codec,noise,handset,packet-loss  QUIVOX=<quivox binary>
# Channels (see quivox::augment::ChannelKind::draw): codec = AMR-NB 4.75/7.95/12.2 kbit/s,
# GSM 06.10 (both via sox, Debian `sox libsox-fmt-all`), A-law/μ-law tandems; noise = babble of
# 3-7 background talkers, white, pink or brown noise at 5-20 dB SNR; handset = band limits
# 200-3600 ... 500-2800 Hz, tilts, a narrower quieter handset, level -12...+6 dB; packet loss =
# 1-5 % of 20-ms packets zeroed or repeated. Every channel ends at a μ-law endpoint.
# Deterministic: each test's channel and noise come from ChaCha8(SEED) on its own stream.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$HERE/../shared/corpus}
OUT=${2:-/work/degraded}
SEED=${3:-2026}
SET=${SET:-dev-read}
KINDS=${KINDS:-codec,noise,handset,packet-loss}
# shellcheck source=scripts/lib-prepare.sh
source "$HERE/scripts/lib-prepare.sh"
mkdir -p "$OUT"
"$QUIVOX" augment-set --set "$CORPUS/$SET" --babble "$CORPUS/background" --out "$OUT" \
  --kinds "$KINDS" --seed "$SEED"
echo "evaluate with: $QUIVOX eval --corpus $OUT --sets $(echo "$KINDS" | sed "s/\([^,]*\)/$SET-\1/g"),$SET-all"
