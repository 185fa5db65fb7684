"""mssbook.allocator: inside the block, freed large tensors are reused without new page faults."""

import platform
import resource

import numpy as np
import pytest
import torch

import mssbook
from mssbook import allocator
from mssbook.allocator import reuse_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="the setting exists on glibc (Linux) only")
BIG = 48 * 2**20 // 4  # float32 elements of a 48 MiB tensor: above glibc's largest mmap threshold (32 MiB)


def faults_of_big_tensor(elements: int = BIG) -> int:
    """Minor page faults taken by allocating, writing and freeing one 48 MiB tensor."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensor = torch.empty(elements)
    tensor.fill_(1.0)  # touch every page
    del tensor
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@needs_glibc
def test_freed_tensors_are_reused_without_page_faults_inside_the_block(monkeypatch):
    monkeypatch.delenv("MSSBOOK_MALLOC", raising=False)
    pages = BIG * 4 // 4096
    outside = [faults_of_big_tensor() for _ in range(2)]
    assert min(outside) > pages // 2  # each one mapped afresh and zero-filled by the kernel
    with reuse_freed_memory():
        assert allocator.active()
        faults_of_big_tensor()  # the first one may still map (the heap grows)
        inside = faults_of_big_tensor()
    assert not allocator.active()
    assert inside < pages // 10, (inside, outside)
    assert min(faults_of_big_tensor() for _ in range(2)) > pages // 2  # the defaults are back after the block


@needs_glibc
def test_nested_blocks_restore_only_at_the_outermost(monkeypatch):
    monkeypatch.delenv("MSSBOOK_MALLOC", raising=False)
    with reuse_freed_memory():
        with reuse_freed_memory():
            assert allocator.active()
        assert allocator.active()  # the inner block did not restore the defaults
        faults_of_big_tensor()
        assert faults_of_big_tensor() < BIG * 4 // 4096 // 10
    assert not allocator.active()


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("MSSBOOK_MALLOC", "default")
    with reuse_freed_memory():
        assert not allocator.active()
        if GLIBC:
            faults_of_big_tensor()
            assert faults_of_big_tensor() > BIG * 4 // 4096 // 2


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
def test_the_separator_runs_models_inside_the_block(monkeypatch, tmp_path):
    monkeypatch.delenv("MSSBOOK_MALLOC", raising=False)
    model = _Recorder()
    audio = np.random.default_rng(0).standard_normal((2, 8000)).astype(np.float32) * 0.1
    out = mssbook.separate(audio, 8000, model=model)
    np.testing.assert_allclose(out["vocals"], audio, atol=1e-6)
    assert model.seen and all(model.seen)
    assert not allocator.active()  # and leaves it


@needs_glibc
def test_after_the_block_tensors_up_to_32_mib_still_reuse_the_heap(monkeypatch):
    """mallopt switches glibc's sliding threshold off; left at 128 KiB, every later 16 MiB tensor
    would be mapped afresh (a separation would slow down the training that follows it)."""
    monkeypatch.delenv("MSSBOOK_MALLOC", raising=False)
    with reuse_freed_memory():
        faults_of_big_tensor()
    medium = 16 * 2**20 // 4  # 16 MiB
    for _ in range(2):
        faults_of_big_tensor(medium)
    assert faults_of_big_tensor(medium) < medium * 4 // 4096 // 10
