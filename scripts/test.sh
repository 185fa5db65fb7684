#!/usr/bin/env bash
# The whole test suite, from nothing: installs what is missing (scripts/setup.sh), then runs pytest
# on tests/ and the notebooks at the small `ci` profile. Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# the `browser` extra adds chromium and Voila for tests/test_browser.py, the `book` extra
# jupyter-book for tests/test_book.py (exported, so that the run of scripts/setup.sh inside the
# tests checks the same things)
export MSSBOOK_EXTRAS=${MSSBOOK_EXTRAS:-torchaudio,notebooks,test,browser,book}
bash "$ROOT/scripts/setup.sh"
VENV=${MSSBOOK_VENV:-$ROOT/.venv}
cd "$ROOT"
export MSSBOOK_PROFILE=${MSSBOOK_PROFILE:-ci}
exec "$VENV/bin/python" -m pytest "$@"
