# Shared by scripts/run.sh and scripts/test.sh: installs what bitmesh needs, idempotently (every
# tool is checked before it is installed, so a second run installs nothing), from the package
# registries only: Debian's apt, crates.io and npm. Nothing downloads binaries from elsewhere.
# shellcheck shell=bash

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TRUNK_VERSION=0.21.14
WASM_PACK_VERSION=0.15.1
BINARYEN_VERSION=132.0.0
# Tools installed from npm live outside the checkout, so fresh clones share them.
TOOLS_DIR=${BITMESH_TOOLS_DIR:-$HOME/.cache/bitmesh-tools}

export PATH="$TOOLS_DIR/npm/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Chromium and the test harness put their temporary profiles here, cleaned with target/.
export TMPDIR="${CARGO_TARGET_DIR:-$ROOT/target}/tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"

step() { printf '\n==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages among "$@" that are not installed yet.
apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# cargo_tool BIN "VERSION TEXT" CRATE [cargo install flags...]: installs CRATE unless BIN
# --version already prints VERSION TEXT.
cargo_tool() {
  local bin=$1 want=$2
  shift 2
  if command -v "$bin" >/dev/null 2>&1 && "$bin" --version 2>/dev/null | grep -qF "$want"; then
    return 0
  fi
  step "cargo install $*"
  # The tools' own release profiles (Trunk's: fat LTO, one codegen unit) cost minutes of
  # compilation on two cores and buy nothing measurable for a build tool.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --quiet "$@"
}

# The wasm-bindgen version Cargo.lock holds: the CLI must be exactly this one.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

# Everything needed to build the page: the wasm target, clang for secp256k1 on wasm32, Trunk,
# wasm-bindgen-cli and a modern wasm-opt.
install_build_tools() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown \
    || { step "rustup target add wasm32-unknown-unknown"; rustup target add wasm32-unknown-unknown; }
  apt_packages clang llvm lld
  # Node.js runs npm (for wasm-opt) and scripts/check-wasm.mjs; some machines have it from
  # another source than Debian's packages, so look for the commands.
  command -v node >/dev/null 2>&1 || apt_packages nodejs
  command -v npm >/dev/null 2>&1 || apt_packages npm
  local bindgen
  bindgen=$(wasm_bindgen_version)
  [ -n "$bindgen" ] || { echo "error: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
  cargo_tool wasm-bindgen "wasm-bindgen $bindgen" wasm-bindgen-cli --version "$bindgen"
  cargo_tool trunk "trunk $TRUNK_VERSION" trunk --version "$TRUNK_VERSION" --locked
  if ! wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
    step "npm install binaryen@$BINARYEN_VERSION"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR/npm" "binaryen@$BINARYEN_VERSION"
  fi
}

# What the tests need beyond the build: Chromium, chromedriver, wasm-pack, rustfmt and clippy.
install_test_tools() {
  install_build_tools
  apt_packages chromium chromium-driver iproute2 util-linux
  local component
  for component in rustfmt clippy; do
    rustup component list --installed | grep -q "^$component" \
      || { step "rustup component add $component"; rustup component add "$component"; }
  done
  cargo_tool wasm-pack "wasm-pack $WASM_PACK_VERSION" wasm-pack --version "$WASM_PACK_VERSION" --locked
}

# Builds the page in release into dist/ and checks the wasm it produced.
build_page() {
  step "cargo fetch"
  cargo fetch --quiet
  step "trunk build --release"
  trunk build --release
  node scripts/check-wasm.mjs dist
}

# Runs "$@" in a fresh network namespace that has only loopback, so nothing a test starts
# (node, chromedriver, Chromium, WebRTC) can reach or be reached from another interface.
in_loopback_namespace() {
  local unshare=(unshare --net)
  [ "$(id -u)" -eq 0 ] || unshare+=(--map-root-user)
  "${unshare[@]}" sh -c 'ip link set lo up && exec "$@"' sh "$@"
}
