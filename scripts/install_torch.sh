#!/usr/bin/env bash
# Installs the torch/torchaudio pair into a virtual environment; scripts/setup.sh calls it.
#
# On Linux without an NVIDIA GPU, PyPI's default torch is a CUDA build of several GB that such a
# machine never uses. So, unless MSSBOOK_TORCH names the pair, this first asks PyTorch's CPU-only
# wheel index for the same versions with a "+cpu" build tag (a few hundred MB); when that index
# cannot be reached (offline, a proxy, only PyPI mirrors), it says so in one line and installs
# the PyPI pair instead.
#
#   install_torch.sh PYTHON            the virtual environment's interpreter
#
# Settings (environment variables):
#   MSSBOOK_TORCH            the pip requirements to install as they are (no CPU index tried)
#   MSSBOOK_TORCH_VERSION    the torch/torchaudio version (default 2.11.0; torchaudio must match torch)
#   MSSBOOK_TORCH_CPU_INDEX  the CPU-only index (default https://download.pytorch.org/whl/cpu)
#   MSSBOOK_GPU              1 or 0: force the GPU detection (default: `nvidia-smi -L` answers)
#   MSSBOOK_PIP              the pip command (default: PYTHON -m pip; the tests use a stand-in)
set -euo pipefail

PY=${1:?usage: install_torch.sh PYTHON}
VERSION=${MSSBOOK_TORCH_VERSION:-2.11.0}
CPU_INDEX=${MSSBOOK_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
read -r -a PIP <<< "${MSSBOOK_PIP:-$PY -m pip}"
PIP+=(--disable-pip-version-check -q)

log() { echo "[setup] $*" >&2; }
quiet_pip() { "${PIP[@]}" install "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

has_gpu() {
  case "${MSSBOOK_GPU:-}" in
    1) return 0 ;;
    0) return 1 ;;
  esac
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1
}

if [ -n "${MSSBOOK_TORCH:-}" ]; then
  log "installing $MSSBOOK_TORCH (MSSBOOK_TORCH)"
  # shellcheck disable=SC2086
  quiet_pip $MSSBOOK_TORCH
  exit $?
fi

if [ "$(uname -s)" = Linux ] && ! has_gpu; then
  log "no NVIDIA GPU: trying PyTorch's CPU-only wheels torch==$VERSION+cpu from $CPU_INDEX (a few hundred MB instead of the CUDA build's GB)"
  # pip's own resolver errors would bury the one line below: keep them out of the way
  if "${PIP[@]}" install --index-url "$CPU_INDEX" --timeout 15 --retries 0 \
      "torch==$VERSION+cpu" "torchaudio==$VERSION+cpu" 2>/dev/null; then
    exit 0
  fi
  log "the CPU-only index $CPU_INDEX did not serve torch $VERSION+cpu (offline or unreachable), so installing PyPI's torch==$VERSION instead (a CUDA build on Linux: larger, works the same on a CPU)"
else
  log "installing torch==$VERSION torchaudio==$VERSION from PyPI (a few GB on Linux: CUDA wheels)"
fi
quiet_pip "torch==$VERSION" "torchaudio==$VERSION"
