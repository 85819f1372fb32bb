#!/usr/bin/env bash
# Block connection, natively and in headless Chromium, in one run: prints both rates and
# wasm ÷ native. Usage: scripts/bench-chain.sh
source "$(dirname "$0")/common.sh"
install_test_tools

step "native: cargo bench -p bitmesh-core --bench connect"
native_log="$TMPDIR/bench-native.log"
cargo bench -p bitmesh-core --bench connect | tee "$native_log"
native=$(sed -n 's/.*cold \([0-9]*\) inputs\/s.*/\1/p' "$native_log" | tail -1)

step "wasm: the same workload in headless Chromium (wasm-pack test --release)"
wasm_log="$TMPDIR/bench-wasm.log"
cargo fetch --quiet
CARGO_NET_OFFLINE=true in_loopback_namespace wasm-pack test --release --headless --chrome --mode no-install \
  crates/core --test bench_wasm -- --include-ignored --nocapture | tee "$wasm_log"
wasm=$(sed -n 's/.*cold \([0-9]*\) inputs\/s.*/\1/p' "$wasm_log" | tail -1)

[ -n "$native" ] && [ -n "$wasm" ] || { echo "error: a measurement is missing" >&2; exit 1; }
awk -v n="$native" -v w="$wasm" 'BEGIN {
  printf "\nblock connection, sigcache cold: native %d inputs/s, wasm (Chromium) %d inputs/s, wasm/native %.2f\n", n, w, w / n
}'
