#!/usr/bin/env bash
# The transport's figures in headless Chromium, in one run: channel open time, round trips and
# throughput through the framing beside a raw data channel (framed ÷ raw).
# Usage: scripts/bench-mesh.sh
source "$(dirname "$0")/common.sh"
install_test_tools

step "browser-browser: two connections in one page (wasm-pack test --release)"
log="$TMPDIR/bench-mesh.log"
cargo fetch --quiet
CARGO_NET_OFFLINE=true in_loopback_namespace wasm-pack test --release --headless --chrome --mode no-install \
  crates/mesh --test bench_browser -- --include-ignored --nocapture | tee "$log"
grep -q 'browser-browser: open' "$log" || { echo "error: the transport was not measured" >&2; exit 1; }
echo
grep 'browser-browser: open' "$log" | sed 's/^.*browser-browser/browser-browser/'
