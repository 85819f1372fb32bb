#!/usr/bin/env bash
# The transport's figures, each beside the raw data channel measured in the same run (framed ÷
# raw): browser ↔ browser (two connections in one Chromium page) and native ↔ browser (the
# webrtc-rs bench peer and a page, meeting through a node's signaling server).
# Usage: scripts/bench-mesh.sh
source "$(dirname "$0")/common.sh"
install_test_tools

log="$TMPDIR/bench-mesh.log"
cargo fetch --quiet
step "build: the node and the native bench peer (release)"
cargo build --release -p bitmesh-node
cargo build --release -p bitmesh-mesh --features native --example bench_peer

step "browser-browser and native-browser (wasm-pack test --release, loopback namespace)"
port=18431
export BITMESH_BENCH_SIGNAL="ws://127.0.0.1:$port/signal"
# The benchmarks run for minutes, beyond the test runner's default 20 s.
export WASM_BINDGEN_TEST_TIMEOUT=600
CARGO_NET_OFFLINE=true in_loopback_namespace bash -c '
  set -euo pipefail
  mkdir -p "$TMPDIR/bench-dist" && echo "<title>bench</title>" > "$TMPDIR/bench-dist/index.html"
  target/release/bitmesh-node --network test --port '"$port"' --dist "$TMPDIR/bench-dist" --log warn &
  node=$!
  trap "kill \$node \${peer:-} 2>/dev/null || true" EXIT
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/'"$port"') 2>/dev/null && break
    sleep 0.1
  done
  target/release/examples/bench_peer "$BITMESH_BENCH_SIGNAL" test > "$TMPDIR/bench-peer.out" &
  peer=$!
  # The page may only offer once the bench peer is registered.
  for _ in $(seq 300); do
    grep -q "bench peer" "$TMPDIR/bench-peer.out" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "bench peer" "$TMPDIR/bench-peer.out" || { echo "error: the bench peer did not register" >&2; exit 1; }
  wasm-pack test --release --headless --chrome --mode no-install crates/mesh \
    --test bench_browser --test bench_native -- --include-ignored --nocapture
' | tee "$log"
for figure in 'browser-browser: open' 'native-browser: open'; do
  grep -q "$figure" "$log" || { echo "error: no \"$figure\" figure was measured" >&2; exit 1; }
done
echo
grep -E '(browser|native)-browser: open' "$log" | sed 's/^.*\(browser-browser\|native-browser\)/\1/'
