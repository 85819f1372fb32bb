#!/usr/bin/env bash
# The run command: installs what is missing, builds the page in release, starts the node and
# prints the URL to open. Arguments go to bitmesh-node (e.g. `scripts/run.sh --port 9000`).
source "$(dirname "$0")/common.sh"

install_build_tools
build_page
step "cargo build --release -p bitmesh-node"
cargo build --release --quiet -p bitmesh-node
step "starting bitmesh-node (Ctrl-C stops it)"
exec target/release/bitmesh-node --dist dist "$@"
