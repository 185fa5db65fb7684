#!/usr/bin/env bash
# Installs what mssbook needs, idempotently, then exits. scripts/demo.sh and scripts/test.sh run it
# first, so a new user never has to. A second run does nothing when everything is in place.
#
#   1. ffmpeg/ffprobe (musdb/stempeg and mp3/mp4 decoding need them): apt-get when available;
#      otherwise a message naming conda or brew.
#   2. a virtual environment in .venv (python3 -m venv; on Debian/Ubuntu python3-venv is
#      installed with apt-get when venv is missing).
#   3. a torch/torchaudio pair that loads together (on PyPI torchaudio 2.11 loads only with torch
#      2.11), unless the environment already has a working pair: on Linux without an NVIDIA GPU
#      PyTorch's CPU-only wheels first, PyPI's (CUDA) pair when that index does not answer
#      (scripts/install_torch.sh).
#   4. mssbook itself, editable, with its extras.
#   5. only with the `browser` extra (scripts/test.sh asks for it, scripts/demo.sh does not):
#      Debian's chromium and chromium-driver with apt-get, for the end-to-end widget test
#      tests/test_browser.py. Where they cannot be installed, one line says so and that test skips
#      (setup does not try again until .venv/.mssbook-no-chromium is deleted).
#
# Settings (environment variables):
#   MSSBOOK_VENV     where the virtual environment lives (default: <checkout>/.venv)
#   MSSBOOK_PYTHON   the Python interpreter to build it with (default: newest python3.1x found)
#   MSSBOOK_TORCH    the pip requirements for torch/torchaudio, installed as they are (default: 2.11.0,
#                    the CPU-only build where there is no NVIDIA GPU; see scripts/install_torch.sh)
#   MSSBOOK_EXTRAS   mssbook's extras to install (default: torchaudio,notebooks,test; scripts/test.sh
#                    uses torchaudio,notebooks,test,browser,book, scripts/book.sh
#                    torchaudio,notebooks,book). Extras add up: a later run with fewer
#                    extras keeps what is installed and returns at once.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MSSBOOK_VENV:-$ROOT/.venv}
TORCH_PAIR=${MSSBOOK_TORCH:-"torch==2.11.0 torchaudio==2.11.0"}
EXTRAS=${MSSBOOK_EXTRAS:-torchaudio,notebooks,test}

log() { echo "[setup] $*" >&2; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }

# Run a system command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 1
  fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$APT_UPDATED" = 0 ]; then
    as_root apt-get update -qq >/dev/null || return 1
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# 1. ffmpeg and ffprobe --------------------------------------------------------------------------
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    log "installing ffmpeg with apt-get (needs root or sudo)"
    apt_install ffmpeg || die "could not install ffmpeg with apt-get. Run \`sudo apt-get install ffmpeg\` yourself, then run this again."
  else
    die "ffmpeg/ffprobe not found and apt-get is not available. Install ffmpeg with \`conda install -c conda-forge ffmpeg\` (conda) or \`brew install ffmpeg\` (macOS), then run this again."
  fi
fi

# 2. Python and the virtual environment ----------------------------------------------------------
python_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; }

if [ ! -x "$VENV/bin/python" ]; then
  PY=${MSSBOOK_PYTHON:-}
  if [ -z "$PY" ]; then
    for candidate in python3.12 python3.11 python3.10 python3.13 python3; do
      if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then PY=$candidate; break; fi
    done
  fi
  [ -n "$PY" ] || die "no Python 3.10 or newer found. Install one (e.g. \`sudo apt-get install python3\`) or set MSSBOOK_PYTHON."
  python_ok "$PY" || die "$PY is older than Python 3.10; set MSSBOOK_PYTHON to a newer interpreter."
  log "creating the virtual environment $VENV with $($PY --version 2>&1)"
  if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    # Debian and Ubuntu ship venv (and ensurepip) in a separate package.
    pyver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    log "python venv is missing; installing python${pyver}-venv with apt-get"
    apt_install "python${pyver}-venv" || apt_install python3-venv \
      || die "could not create a virtual environment with $PY. Install the venv module (\`sudo apt-get install python3-venv\`) and run this again."
    "$PY" -m venv "$VENV" || die "could not create the virtual environment $VENV with $PY."
  fi
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check -q)

# 5. chromium and chromedriver for the browser test (`browser` extra only) -------------------------
# Checked on every run (two lookups), installed when missing; a failed install is tried only once.
if [[ ",$EXTRAS," == *",browser,"* ]]; then
  NO_CHROMIUM="$VENV/.mssbook-no-chromium"
  has_chromium() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
  if ! has_chromium && [ ! -f "$NO_CHROMIUM" ]; then
    log "installing chromium and chromium-driver with apt-get (for tests/test_browser.py)"
    if apt_install chromium chromium-driver 2> >(grep -v "^debconf: delaying" >&2) && has_chromium; then
      rm -f "$NO_CHROMIUM"
    else
      touch "$NO_CHROMIUM"
      log "could not install chromium and chromium-driver with apt-get, so tests/test_browser.py will skip; install them yourself (\`sudo apt-get install chromium chromium-driver\`), or delete $NO_CHROMIUM to let this script try again."
    fi
  fi
fi

# 3 + 4. packages: skipped when nothing changed since the last successful run ---------------------
# The stamp holds a checksum of pyproject.toml and the torch pair, then the extras installed with
# them: a run is done at once when the checksum matches and every extra it asks for is installed.
STAMP="$VENV/.mssbook-setup"
want=$(cat "$ROOT/pyproject.toml" <(echo "$TORCH_PAIR") | cksum | cut -d' ' -f1)
have_sum="" have_extras=""
if [ -f "$STAMP" ]; then read -r have_sum have_extras < "$STAMP" || true; fi
extras_installed() {
  [ "$have_sum" = "$want" ] || return 1
  local extra
  for extra in ${EXTRAS//,/ }; do [[ ",$have_extras," == *",$extra,"* ]] || return 1; done
}
if extras_installed && "$VPY" -c 'import mssbook, torch' >/dev/null 2>&1; then
  exit 0
fi

pair_loads() { "$VPY" -c 'import torch, torchaudio, torchaudio.functional' >/dev/null 2>&1; }
if [[ ",$EXTRAS," == *",torchaudio,"* ]] && ! pair_loads; then
  # CPU-only wheels first on a Linux machine without an NVIDIA GPU, else (or when that index does
  # not answer) PyPI's pair; MSSBOOK_TORCH overrides both (scripts/install_torch.sh)
  bash "$ROOT/scripts/install_torch.sh" "$VPY" \
    || die "pip could not install $TORCH_PAIR. Check your network, or set MSSBOOK_TORCH to a pair your platform has."
  pair_loads || die "torch and torchaudio were installed but do not load together; set MSSBOOK_TORCH to a matching pair."
fi

log "installing mssbook[$EXTRAS] (editable) into $VENV"
"${PIP[@]}" install -e "$ROOT[$EXTRAS]" 2> >(grep -v "is ignored: it is neither" >&2) \
  || die "pip could not install mssbook's dependencies (see the messages above)."
if [[ ",$EXTRAS," == *",torchaudio,"* ]] && ! pair_loads; then
  die "after installing mssbook, torch and torchaudio no longer load together; report this with the output of \`$VENV/bin/mssbook doctor\`."
fi
# what was installed before with the same pyproject.toml and torch pair stays installed
installed=$EXTRAS
if [ "$have_sum" = "$want" ]; then
  for extra in ${have_extras//,/ }; do
    [[ ",$installed," == *",$extra,"* ]] || installed="$installed,$extra"
  done
fi
echo "$want ${installed#,}" > "$STAMP"
log "done: $("$VPY" -c 'import mssbook, torch; print("mssbook", mssbook.__version__, "with torch", torch.__version__)')"
