#!/usr/bin/env bash
# Run the end-to-end suite against one host of the gateway.
#   tests/e2e/run.sh GATEWAY_URL [extra pytest args...]
# Expects MOCK_URL (the mock provider's base URL) to be exported and the e2e
# venv's python on PATH (packages: tests/e2e/requirements.txt). The gateway
# itself must already run with tests/e2e/config.yaml. Exit code = pytest's.
set -u
if [ $# -lt 1 ] || [ -z "$1" ]; then
  echo "usage: $0 GATEWAY_URL [pytest args...]" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export TOLLGATE_URL="${1%/}"
shift
if [ -z "${MOCK_URL:-}" ]; then
  echo "run.sh: MOCK_URL must be exported (mock provider base URL)" >&2
  exit 2
fi
export MOCK_URL="${MOCK_URL%/}"
export TOLLGATE_MASTER_KEY="${TOLLGATE_MASTER_KEY:-sk-test-master}"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if command -v python >/dev/null 2>&1; then py=python; else py=python3; fi
fi
exec "$py" -m pytest -c "$here/pytest.ini" --rootdir "$here" -p no:cacheprovider "$here" "$@"
