"""mssbook.allocator: inside the block, freed large tensors are reused without new page faults."""

import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mssbook
from mssbook import allocator
from mssbook.allocator import reuse_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="the setting exists on glibc (Linux) only")
BIG = 48 * 2**20 // 4  # float32 elements of a 48 MiB tensor: above glibc's largest mmap threshold (32 MiB)


def faults_of_big_tensor() -> int:
    """Minor page faults taken by allocating, writing and freeing one 48 MiB tensor."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensor = torch.empty(BIG)
    tensor.fill_(1.0)  # touch every page
    del tensor
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def steady_faults(rounds: int = 8) -> list[int]:
    """Faults of ``rounds`` 48 MiB tensors in a row (allocated, written, freed one after the other)."""
    return [faults_of_big_tensor() for _ in range(rounds)]


def settles_without_faults(faults: list[int]) -> bool:
    """True once two tensors in a row took (almost) no page faults: freed memory is being reused.

    The first few may still grow the heap or land in blocks that were handed back earlier (how many
    depends on what the process allocated before), so the test looks for the steady state.
    """
    few = BIG * 4 // 4096 // 10
    return any(a < few and b < few for a, b in zip(faults, faults[1:]))


FRESH_PROCESS = """
import json, sys
sys.path[:0] = {paths!r}
from test_allocator import steady_faults
from mssbook.allocator import reuse_freed_memory
outside = steady_faults(4)
with reuse_freed_memory():
    inside = steady_faults()
print(json.dumps({{"outside": outside, "inside": inside}}))
"""


@needs_glibc
def test_freed_tensors_are_reused_without_page_faults_inside_the_block(monkeypatch):
    """In a fresh process (where no earlier block left free blocks in the heap): outside the block
    every 48 MiB tensor is mapped and zero-filled afresh; inside, freed ones are reused."""
    monkeypatch.delenv("MSSBOOK_MALLOC", raising=False)
    here = Path(__file__).resolve().parent
    script = FRESH_PROCESS.format(paths=[str(here), str(here.parent)])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    faults = json.loads(done.stdout.strip().splitlines()[-1])
    pages = BIG * 4 // 4096
    assert min(faults["outside"]) > pages // 2, faults
    assert settles_without_faults(faults["inside"]), faults


@needs_glibc
def test_nested_blocks_restore_only_at_the_outermost(monkeypatch):
    monkeypatch.delenv("MSSBOOK_MALLOC", raising=False)
    with reuse_freed_memory():
        with reuse_freed_memory():
            assert allocator.active()
        assert allocator.active()  # the inner block did not restore the settings
        assert settles_without_faults(steady_faults())
    assert not allocator.active()


class _FakeLibc:
    """Records mallopt / malloc_trim calls instead of changing the process's allocator."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_turned_off_by_the_environment(monkeypatch):
    fake = _FakeLibc()
    monkeypatch.setattr(allocator, "_libc", fake)
    monkeypatch.setenv("MSSBOOK_MALLOC", "default")
    with reuse_freed_memory():
        assert not allocator.active()
    assert fake.calls == []  # the allocator was left alone


def test_an_exception_inside_leaves_the_defaults_restored(monkeypatch):
    monkeypatch.delenv("MSSBOOK_MALLOC", raising=False)
    with pytest.raises(RuntimeError, match="boom"):
        with reuse_freed_memory():
            raise RuntimeError("boom")
    assert not allocator.active()


class _Recorder(mssbook.models.base.SeparationModel):
    """A model that returns the mixture as its one target and notes whether the setting was on."""

    def __init__(self) -> None:
        super().__init__(targets=["vocals"], sample_rate=8000, nb_channels=2)
        self.seen: list[bool] = []

    def separate(self, mixture, **options):
        self.seen.append(allocator.active())
        return mixture[:, None].clone()


@needs_glibc
def test_the_separator_runs_models_inside_the_block(monkeypatch):
    monkeypatch.delenv("MSSBOOK_MALLOC", raising=False)
    model = _Recorder()
    audio = np.random.default_rng(0).standard_normal((2, 8000)).astype(np.float32) * 0.1
    out = mssbook.separate(audio, 8000, model=model)
    np.testing.assert_allclose(out["vocals"], audio, atol=1e-6)
    assert model.seen and all(model.seen)
    assert not allocator.active()  # and leaves it


def test_leaving_sets_the_thresholds_where_glibcs_sliding_threshold_settles(monkeypatch):
    """mallopt switches glibc's sliding threshold off; left at its initial 128 KiB, every later
    tensor above it would be mapped afresh (a separation would slow down the training after it)."""
    fake = _FakeLibc()
    monkeypatch.delenv("MSSBOOK_MALLOC", raising=False)
    monkeypatch.setattr(allocator, "_libc", fake)
    with reuse_freed_memory():
        assert fake.calls == [("mallopt", allocator.M_MMAP_MAX, 0),
                              ("mallopt", allocator.M_TRIM_THRESHOLD, allocator.KEEP_TRIM_THRESHOLD)]
        fake.calls.clear()
    assert fake.calls == [("mallopt", allocator.M_MMAP_MAX, 65536),
                          ("mallopt", allocator.M_MMAP_THRESHOLD, 32 * 2**20),  # 64-bit glibc's maximum
                          ("mallopt", allocator.M_TRIM_THRESHOLD, 64 * 2**20),
                          ("malloc_trim", 0)]
