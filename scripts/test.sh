#!/usr/bin/env bash
# The test command: installs what is missing and runs every check and test bitmesh has.
source "$(dirname "$0")/common.sh"

install_test_tools

step "cargo fmt --check"
cargo fmt --all -- --check

step "core depends on no I/O crate"
scripts/check-core-deps.sh

build_page

step "cargo clippy (native, then wasm32)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p bitmesh-core -p bitmesh-mesh -p bitmesh-web --lib --bins --tests --target wasm32-unknown-unknown -- -D warnings

step "the fuzz targets compile (run them with cargo fuzz, see fuzz/README.md)"
cargo check --quiet --manifest-path fuzz/Cargo.toml --target-dir target --bins

step "cargo build -p bitmesh-core --target wasm32-unknown-unknown"
cargo build -p bitmesh-core --target wasm32-unknown-unknown

# Everything that starts a browser or a server runs with loopback only, offline.
export CARGO_NET_OFFLINE=true

step "cargo test --workspace (unit, integration and end-to-end)"
in_loopback_namespace cargo test --workspace

# The runner's default bound per test is 20 s; the mesh's megabyte-and-ten-thousand-messages
# test has come close to it on this 2-core machine while it also compiles, and timed out twice.
export WASM_BINDGEN_TEST_TIMEOUT=120
for crate in crates/core crates/mesh web; do
  step "wasm-pack test --headless --chrome $crate"
  in_loopback_namespace wasm-pack test --headless --chrome --mode no-install "$crate"
done

step "all checks passed"
