#!/usr/bin/env bash
# The book benchmark's timed part under callgrind: instructions and simulated cache misses of
# one round (10,000 seed orders, then 200,000 operations), which repeat exactly from run to run,
# unlike the clock on this machine, for bitmesh's book and then for matchcore (the fastest
# reference crate) on the same operations. Compare two commits with it before trusting a small
# speed-up. Writes target/book.callgrind and target/matchcore.callgrind; `callgrind_annotate`
# on them shows where they go.
# Usage: scripts/book-instructions.sh
source "$(dirname "$0")/common.sh"
apt_packages valgrind

CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release -p bitmesh-core --example book_rounds
target="${CARGO_TARGET_DIR:-$ROOT/target}"
for book in bitmesh matchcore; do
  case "$book" in
    bitmesh) out="$target/book.callgrind"; timed=book_rounds::timed ;;
    matchcore) out="$target/matchcore.callgrind"; timed=book_rounds::matchcore ;;
  esac
  echo "$book:"
  BOOK=$book ROUNDS=1 valgrind --tool=callgrind --cache-sim=yes --LL=33554432,16,64 \
    --toggle-collect="$timed" --callgrind-out-file="$out" \
    "$target/release/examples/book_rounds" 2>&1 | grep -E '^==[0-9]+== (Collected|LL misses)'
  echo "callgrind_annotate $out  # where they go"
done
