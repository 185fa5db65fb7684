"""Large tensors without page faults: keep freed memory in the process while a separation runs.

On Linux, glibc's ``malloc`` serves every request above its mmap threshold (128 KiB at first,
32 MiB at most) with a fresh ``mmap`` and gives it back to the kernel with ``munmap`` when the
tensor is freed. A spectrogram network allocates such tensors for every layer of every patch
(the paper D3Net: activations of 100-350 MB per layer), so the kernel maps, zero-fills and
unmaps hundreds of megabytes per network call: one page fault per 4 KiB. Measured for issue 16
on 2 CPU cores (``benchmarks/bench_models.py``): the paper D3Net spent 31 of its 142 CPU seconds
separating 30 s of audio in the kernel, and a 3×3 convolution of 13 → 52 channels on 256 × 1600
pixels ran at 36 % of the machine's convolution throughput instead of 70 %.

:func:`reuse_freed_memory` turns this off for the duration of a ``with`` block: freed blocks stay
in the process's heap and the next tensor of that size reuses them, already mapped
(``mallopt(M_MMAP_MAX, 0)``, ``mallopt(M_TRIM_THRESHOLD, 1 GiB)``). On leaving, large blocks are
mapped again, the thresholds are where glibc's own sliding threshold settles (32 MiB; see
:data:`SETTLED_MMAP_THRESHOLD`), and ``malloc_trim(0)`` returns the free memory to the system, so
the process does not keep the separation's peak. The cost is a higher peak *inside* the block
(freed blocks are reused only by requests they fit: a few hundred MB more for the paper models;
``benchmarks/bench_models.py`` prints it). The separator (:func:`mssbook.separate`,
:func:`mssbook.separate_file`) runs every model inside it.

Training does not: a training step keeps tensors of many sizes alive for the backward pass, and
reusing freed blocks fragmented the heap (measured: the tutorial BSRNN's step at batch 16 × 3 s
peaked at 10.7 GB instead of 5.1 and ran slower; D3Net's and the U-Nets' steps were 1.3-1.6×
faster but the U-Net's peak grew from 2.6 to 4.2 GB), so the trainer keeps glibc's defaults.

Elsewhere (macOS, Windows, musl) it does nothing: those allocators keep large blocks themselves
or differ, and nothing here is needed for correctness. ``MSSBOOK_MALLOC=default`` in the
environment turns it off (to compare, or where another allocator such as jemalloc is preloaded).

This module imports the standard library only.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from contextlib import contextmanager
from typing import Iterator

# mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
DEFAULT_MMAP_MAX = 65536  # glibc's default number of mappings, restored on leaving
KEEP_TRIM_THRESHOLD = 1 << 30  # 1 GiB: free memory at the top of the heap stays while inside
# Any mallopt call switches off glibc's sliding mmap threshold (which rises to the size of each
# freed mapping, up to 32 MiB on 64-bit, with the trim threshold at twice that). So on leaving,
# the thresholds are set where the sliding scheme ends up in a torch program: left at glibc's
# initial 128 KiB instead, every later tensor above it would be mapped afresh (measured: the
# tutorial D3Net then trained 1.6x slower after a separation than in a fresh process).
SETTLED_MMAP_THRESHOLD = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)  # DEFAULT_MMAP_THRESHOLD_MAX
SETTLED_TRIM_THRESHOLD = 2 * SETTLED_MMAP_THRESHOLD

_lock = threading.Lock()
_depth = 0  # nested blocks (a separation inside a separation's callback): only the outermost acts
_libc = None


def _glibc():
    """glibc's handle, or None where the process does not run on glibc (or it is turned off)."""
    global _libc
    if os.environ.get("MSSBOOK_MALLOC", "").strip().lower() == "default":
        return None
    if _libc is None:
        if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
            _libc = False
        else:
            try:
                libc = ctypes.CDLL(None)
                _libc = libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else False
            except OSError:
                _libc = False
    return _libc or None


def active() -> bool:
    """True inside a :func:`reuse_freed_memory` block that changed the allocator's settings."""
    return _depth > 0 and _glibc() is not None


@contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Inside the block, freed memory stays in the process for the next tensors (glibc only).

    ::

        with reuse_freed_memory():
            estimates = model.separate(mixture)

    Nested blocks are fine (the outermost one restores the settings). The settings are the
    process's, so another thread allocating meanwhile shares them for that time.
    """
    global _depth
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            libc.mallopt(M_MMAP_MAX, 0)  # no fresh mappings: large blocks come from the heap
            libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD)  # and stay there when freed
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_MMAP_THRESHOLD, SETTLED_MMAP_THRESHOLD)
                libc.mallopt(M_TRIM_THRESHOLD, SETTLED_TRIM_THRESHOLD)
                libc.malloc_trim(0)  # give the block's free memory back


__all__ = ["reuse_freed_memory", "active"]
