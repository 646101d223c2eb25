#!/usr/bin/env bash
# Prints quivox.pc for a library installed under PREFIX (header in PREFIX/include, libquivox.so and
# libquivox.a in LIBDIR, default PREFIX/lib).
#   usage: gen-pkgconfig.sh PREFIX [LIBDIR] > quivox.pc
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 PREFIX [LIBDIR] > quivox.pc" >&2
  exit 2
fi
prefix="$1"
libdir="${2:-\${prefix\}/lib}"
case "$prefix" in
  /*) ;;
  *) echo "$0: PREFIX '$prefix': expected an absolute path" >&2; exit 2 ;;
esac
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$(dirname "$0")/../../../Cargo.toml" | head -n 1)"
if [ -z "$version" ]; then
  echo "$0: could not read the workspace version from Cargo.toml" >&2
  exit 1
fi
cat <<PC
prefix=$prefix
includedir=\${prefix}/include
libdir=$libdir

Name: quivox
Description: Voice-biometrics caller identification for 8 kHz telephone audio (C API)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lquivox
# What a static link (pkg-config --static) also needs: the Rust standard library's system
# dependencies, as printed by rustc --print native-static-libs for the staticlib.
Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
PC
