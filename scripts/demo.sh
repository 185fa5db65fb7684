#!/usr/bin/env bash
# The main job, from nothing: installs what is missing (scripts/setup.sh), then runs `mssbook demo`.
# Any arguments go to `mssbook demo` (try --help).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh"
VENV=${MSSBOOK_VENV:-$ROOT/.venv}
cd "$ROOT"
exec "$VENV/bin/python" -m mssbook demo "$@"
