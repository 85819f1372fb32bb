#!/usr/bin/env bash
# The core's benchmarks natively and in headless Chromium, in one run: block connection, vault
# unlock, the order book (beside two order-book crates) and the node's message handling, each
# printed with wasm ÷ native; the book under adversarial arrival orders (native only); then the
# book natively and in Chromium in turns, seconds apart.
# Usage: scripts/bench-core.sh
source "$(dirname "$0")/common.sh"
install_test_tools
# Browser runs of the book, each between two native ones (BOOK_TURNS=5 by default).
BOOK_TURNS="${BOOK_TURNS:-5}"
# The browser benchmarks run for minutes (the runner's default gives a run 20 s).
export WASM_BINDGEN_TEST_TIMEOUT=600

step "native: cargo bench -p bitmesh-core (connect, vault, book, relay, book_arrival)"
native_log="$TMPDIR/bench-native.log"
cargo bench -p bitmesh-core --bench connect --bench vault --bench book --bench relay \
  --bench book_arrival | tee "$native_log"

# The browser benchmarks, built as the page is: its cargo profile (wasm-release), then
# `wasm-opt -Oz` as Trunk runs it (www/index.html). `wasm-pack test` knows only the dev and
# release profiles and no wasm-opt, so the script builds, optimizes and hands the module to
# wasm-bindgen's test runner itself, as wasm-pack would.
bench_wasm="$TMPDIR/bench_wasm.wasm"
build_wasm_bench() {
  local built
  built=$(cd crates/core && cargo test --profile wasm-release --target wasm32-unknown-unknown \
    --test bench_wasm --no-run --message-format=json \
    | sed -n 's/.*"executable":"\([^"]*\.wasm\)".*/\1/p' | tail -1)
  [ -n "$built" ] || { echo "error: no bench_wasm module was built" >&2; exit 1; }
  wasm-opt -Oz "$built" -o "$bench_wasm"
}
# Runs the browser benchmarks named in "$@" (or all) in headless Chromium.
wasm_bench() {
  (cd crates/core && CHROMEDRIVER="$(command -v chromedriver)" in_loopback_namespace \
    wasm-bindgen-test-runner "$bench_wasm" --include-ignored --nocapture "$@")
}

step "wasm: the same work in headless Chromium, built as the page is (wasm-release, wasm-opt -Oz)"
wasm_log="$TMPDIR/bench-wasm.log"
cargo fetch --quiet
build_wasm_bench
wasm_bench | tee "$wasm_log"

# The book's wasm/native figure again, from runs seconds apart: this machine's speed drifts by
# more than the goal's margin between the native and browser runs above, minutes apart. Native
# and browser take turns (native first and last), and each browser run is set against the mean
# of the native runs on either side of it; the median of those ratios is the figure.
step "the order book natively and in Chromium in turns, $BOOK_TURNS browser runs"
cargo build --release -p bitmesh-core --example book_rounds
rounds_bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/book_rounds"
book_log="$TMPDIR/bench-book.log"
: >"$book_log"
for turn in $(seq "$BOOK_TURNS"); do
  ROUNDS=15 "$rounds_bin" | sed "s/^/native $turn: /" | tee -a "$book_log"
  wasm_bench book_benchmark | sed -n "s/^wasm order book: /wasm $turn: /p" | tee -a "$book_log"
done
ROUNDS=15 "$rounds_bin" | sed "s/^/native $((BOOK_TURNS + 1)): /" | tee -a "$book_log"

value() { sed -n "s/.*$1.*/\\1/p" "$2" | tail -1; }
native_connect=$(value 'native, one core: cold \([0-9]*\) inputs\/s' "$native_log")
wasm_connect=$(value 'wasm connect.*cold \([0-9]*\) inputs\/s' "$wasm_log")
native_unlock=$(value 'vault unlock, native: \([0-9.]*\) ms' "$native_log")
wasm_unlock=$(value 'wasm vault unlock: \([0-9.]*\) ms' "$wasm_log")
native_book=$(value 'order book, native: bitmesh \([0-9]*\) ops\/s' "$native_log")
matchcore_book=$(value 'order book, native:.*matchcore \([0-9]*\) ops\/s' "$native_log")
lobster_book=$(value 'order book, native:.*lobster \([0-9]*\) ops\/s' "$native_log")
wasm_book=$(value 'wasm order book: \([0-9]*\) ops\/s' "$wasm_log")
native_relay=$(value 'message handling, native: \([0-9]*\) messages\/s' "$native_log")
wasm_relay=$(value 'wasm message handling: \([0-9]*\) messages\/s' "$wasm_log")
turns=$(awk -v turns="$BOOK_TURNS" '
  /^native [0-9]+: .*ops\/s\)$/ { n[$2 + 0] = substr($(NF - 1), 2) + 0 }
  /^wasm [0-9]+: [0-9]+ ops\/s$/ { w[$2 + 0] = $3 }
  END {
    for (i = 1; i <= turns; i++) {
      if (!n[i] || !w[i] || !n[i + 1]) exit 1
      r[i] = w[i] / ((n[i] + n[i + 1]) / 2)
      line = line sprintf("%s%.2f", i > 1 ? ", " : "", r[i])
    }
    # Insertion sort of the ratios, then the middle one (the mean of the middle two).
    for (i = 2; i <= turns; i++) for (j = i; j > 1 && r[j - 1] > r[j]; j--) { t = r[j]; r[j] = r[j - 1]; r[j - 1] = t }
    m = turns % 2 ? r[(turns + 1) / 2] : (r[turns / 2] + r[turns / 2 + 1]) / 2
    printf "wasm/native in turns: %s; median %.2f (goal >= 0.8)", line, m
  }' "$book_log") || turns=""
for figure in native_connect wasm_connect native_unlock wasm_unlock native_book matchcore_book lobster_book wasm_book native_relay wasm_relay turns; do
  [ -n "${!figure}" ] || { echo "error: $figure was not measured" >&2; exit 1; }
done
awk -v nc="$native_connect" -v wc="$wasm_connect" -v nu="$native_unlock" -v wu="$wasm_unlock" \
  -v nb="$native_book" -v mb="$matchcore_book" -v lb="$lobster_book" -v wb="$wasm_book" \
  -v nr="$native_relay" -v wr="$wasm_relay" \
  -v turns="$turns" 'BEGIN {
  printf "\nblock connection, sigcache cold: native %d inputs/s, wasm (Chromium) %d inputs/s, wasm/native %.2f\n", nc, wc, wc / nc
  printf "vault unlock (Argon2id 19 MiB, t=2): native %.1f ms, wasm (Chromium) %.1f ms, wasm/native %.2f x slower; goal <= 250 ms in the browser\n", nu, wu, wu / nu
  fastest = mb > lb ? mb : lb
  printf "order book 70/20/10: native %d ops/s, wasm (Chromium) %d ops/s, wasm/native %.2f (goal >= 0.8); matchcore %d, lobster %d ops/s, bitmesh/fastest %.2f (goal >= 2); goal >= 10M ops/s native\n", nb, wb, wb / nb, mb, lb, nb / fastest
  printf "order book %s\n", turns
  printf "message handling (8 neighbours, tx and order gossip): native %d messages/s, wasm (Chromium) %d messages/s, wasm/native %.2f\n", nr, wr, wr / nr
}'
