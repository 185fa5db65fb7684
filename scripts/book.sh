#!/usr/bin/env bash
# The course book in one command: installs what is missing (scripts/setup.sh with the `book`
# extra), executes every chapter once with static widgets, renders the HTML into book/_build/html
# and prints the build time and the size of the HTML (scripts/build_book.py does the work).
#
#   bash scripts/book.sh                     # the ci profile (small sizes; $MSSBOOK_PROFILE if set)
#   bash scripts/book.sh --profile default   # the classroom sizes (about 30 minutes on 2 cores)
#   bash scripts/book.sh --reuse             # execute only the chapters whose cells or library changed
#
# Exits non-zero when a cell fails (the executed copies are left in book/chapters/ to look at).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MSSBOOK_EXTRAS=${MSSBOOK_EXTRAS:-torchaudio,notebooks,book}
bash "$ROOT/scripts/setup.sh"
VENV=${MSSBOOK_VENV:-$ROOT/.venv}
cd "$ROOT"
exec "$VENV/bin/python" scripts/build_book.py "$@"
