#!/usr/bin/env bash
# Fails if bitmesh-core depends, on any target, on a crate that does I/O or reaches the host:
# the core is sans-I/O, with time and randomness as inputs.
set -euo pipefail
cd "$(dirname "$0")/.."

FORBIDDEN='tokio|mio|async-std|smol|hyper|reqwest|axum|tower|webrtc|web-sys|js-sys|wasm-bindgen|gloo|idb|getrandom|redb|rusqlite|socket2'
tree=$(cargo tree -p bitmesh-core --edges normal,build --target all --prefix none --format '{p}')
found=$(printf '%s\n' "$tree" | awk '{print $1}' | grep -Ex "$FORBIDDEN" | sort -u || true)
if [ -n "$found" ]; then
  echo "error: bitmesh-core must not depend on I/O crates, but its tree has: $(echo $found)" >&2
  echo "$found" | while read -r crate; do cargo tree -p bitmesh-core --target all -i "$crate" >&2; done
  exit 1
fi
echo "bitmesh-core depends on no I/O crate ($(printf '%s\n' "$tree" | sort -u | wc -l) crates checked)"
