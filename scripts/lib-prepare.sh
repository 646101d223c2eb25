# Shared by the data-preparation scripts (sourced, not run): checks sox can render the mobile
# codecs and sets QUIVOX to the quivox binary (built in release mode unless QUIVOX is given).
# Expects HERE = the repository root.
command -v sox >/dev/null || { echo "sox is needed for AMR-NB / GSM (apt-get install sox libsox-fmt-all)"; exit 1; }
sox -h 2>&1 | grep -q amr-nb || { echo "this sox has no AMR-NB: apt-get install libsox-fmt-all"; exit 1; }
QUIVOX=${QUIVOX:-}
if [[ -z "$QUIVOX" ]]; then
  (cd "$HERE" && cargo build --release -p quivox-cli)
  QUIVOX=$HERE/target/release/quivox
fi
