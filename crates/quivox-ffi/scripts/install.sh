#!/usr/bin/env bash
# Installs the built C library under PREFIX (default /usr/local): include/quivox.h,
# lib/libquivox.so, lib/libquivox.a and lib/pkgconfig/quivox.pc. Build first with
#   cargo build --release -p quivox-ffi
#   usage: install.sh [PREFIX]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
prefix="${1:-/usr/local}"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}/release"
for f in libquivox.so libquivox.a; do
  if [ ! -f "$target/$f" ]; then
    echo "$0: $target/$f missing: run 'cargo build --release -p quivox-ffi' first" >&2
    exit 1
  fi
done
install -d "$prefix/include" "$prefix/lib/pkgconfig"
install -m 644 "$here/../include/quivox.h" "$prefix/include/quivox.h"
install -m 755 "$target/libquivox.so" "$prefix/lib/libquivox.so"
install -m 644 "$target/libquivox.a" "$prefix/lib/libquivox.a"
bash "$here/gen-pkgconfig.sh" "$prefix" > "$prefix/lib/pkgconfig/quivox.pc"
echo "installed libquivox under $prefix (pkg-config: PKG_CONFIG_PATH=$prefix/lib/pkgconfig)"
