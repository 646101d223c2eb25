#!/usr/bin/env bash
# Builds libquivox, installs it into a scratch prefix (header, .so, .a, quivox.pc), compiles the C
# tests in tests/c/ with -std=c11 -Wall -Wextra -Werror and AddressSanitizer + UBSan, and runs them:
#   - misuse: every misuse of the API returns an error status (linked against the .so, rpath);
#   - gateway: enrolls two speakers, two calls on two threads in 20-ms mu-law frames, checks who
#     is identified (linked against the .so through pkg-config, and again against the .a);
#   - the C example of crates/quivox-ffi/README.md compiles and links.
# Usage: crates/quivox-ffi/tests/run-c-tests.sh   (from anywhere; needs gcc and pkg-config)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"

cargo build --release -p quivox-ffi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
bash crates/quivox-ffi/scripts/install.sh "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

CFLAGS=(-std=c11 -Wall -Wextra -Werror -g -O1 -fno-omit-frame-pointer
        -fsanitize=address,undefined -fno-sanitize-recover=undefined)
# Leak detection stays on: the tests free every handle they get, each handle owns everything the
# library allocated for it, and the Rust runtime's own process-lifetime allocations were not
# reported (no LD_PRELOAD needed either: the executables are built with -fsanitize, so the ASan
# runtime is loaded first and also sees the Rust library's malloc/free).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

models="$root/models/gmm-ubm.qvx"
fixtures="$root/audio-fixtures/demo"

echo "== misuse (libquivox.so, rpath)"
gcc "${CFLAGS[@]}" -I "$prefix/include" crates/quivox-ffi/tests/c/misuse.c \
  -L "$prefix/lib" -Wl,-rpath,"$prefix/lib" -lquivox -o "$work/misuse"
mkdir "$work/misuse-scratch"
"$work/misuse" "$models" "$work/misuse-scratch"

echo "== gateway (libquivox.so through pkg-config)"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
gcc "${CFLAGS[@]}" $(pkg-config --cflags quivox) crates/quivox-ffi/tests/c/gateway.c \
  $(pkg-config --libs quivox) -Wl,-rpath,"$prefix/lib" -o "$work/gateway"
# With an encrypted SQLite store (a fresh random key in a key file).
mkdir "$work/store"
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$work/store/store.key"
"$work/gateway" "$models" "$fixtures" "$work/store"

echo "== gateway (libquivox.a, static)"
gcc "${CFLAGS[@]}" -I "$prefix/include" crates/quivox-ffi/tests/c/gateway.c \
  "$prefix/lib/libquivox.a" -lm -lpthread -ldl -o "$work/gateway-static"
# Without a store (in memory only).
"$work/gateway-static" "$models" "$fixtures"

echo "== the README's C example compiles and links (not run: it needs a real store path)"
awk '/^```c$/ {inside = 1; next} /^```$/ {if (inside) exit} inside' \
  crates/quivox-ffi/README.md > "$work/readme_example.c"
# shellcheck disable=SC2046
gcc "${CFLAGS[@]}" "$work/readme_example.c" $(pkg-config --cflags --libs quivox) \
  -Wl,-rpath,"$prefix/lib" -o "$work/readme_example"

echo "C tests: 4 passed, 0 failed"
