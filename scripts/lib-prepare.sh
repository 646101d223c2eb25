# Shared by the data-preparation scripts (sourced, not run): makes sure sox can render the mobile
# codecs (installing it with `scripts/setup-system.sh data` if needed) and sets QUIVOX to the quivox binary (built in release mode unless QUIVOX is given).
# Expects HERE = the repository root.
if ! command -v sox >/dev/null || ! sox -h 2>&1 | grep -q amr-nb; then
  bash "$HERE/scripts/setup-system.sh" data
fi
sox -h 2>&1 | grep -q amr-nb || { echo "this sox has no AMR-NB (Debian: libsox-fmt-all)"; exit 1; }
QUIVOX=${QUIVOX:-}
if [[ -z "$QUIVOX" ]]; then
  # The CLI links ALSA (microphone capture): a fresh machine needs the build packages too.
  bash "$HERE/scripts/setup-system.sh" build
  (cd "$HERE" && cargo build --release -p quivox-cli)
  QUIVOX=$HERE/target/release/quivox
fi
