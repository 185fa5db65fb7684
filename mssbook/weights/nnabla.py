"""nnabla parameter files (``nn.save_parameters``, ``.h5``): Sony's Open-Unmix, X-UMX and D3Net.

The file is HDF5 with one dataset per parameter, named by its scope path. This module reads it and
hands the arrays to the family's mapping table: :mod:`.nnabla_umx` (Open-Unmix and X-UMX) or
:mod:`.nnabla_d3net`.
"""

from __future__ import annotations

from pathlib import Path

from .common import ConversionError, find_target_files, read_h5

SUFFIXES = (".h5",)


def family_of(arrays: dict) -> str:
    """"d3net", "xumx" or "umx", from the parameter names of one file."""
    names = list(arrays)
    if any("dense_band" in n or "features_init" in n for n in names):
        return "d3net"
    from .nnabla_umx import family_of as umx_family

    return umx_family(arrays)


def convert(source: str | Path, model: str | None = None, targets=None):
    """An mssbook model with the weights of nnabla ``.h5`` file(s): one file, or a folder."""
    source = Path(source)
    probe = source if source.is_file() else next(iter(sorted(source.rglob("*.h5"))), None)
    if probe is None:
        raise ConversionError(f"{source} holds no nnabla .h5 parameter file.")
    found = family_of(read_h5(probe))
    if model is not None and model != found:
        raise ConversionError(f"{probe} holds nnabla {found} weights, not {model}: pass --model {found} "
                              "(mssbook.pretrained finds the family by itself).")
    family = found
    if family == "d3net":
        from .nnabla_d3net import convert_d3net

        return convert_d3net(source, targets)
    if family in ("umx", "xumx"):
        from . import nnabla_umx

        return nnabla_umx.convert_umx(source, targets) if family == "umx" else nnabla_umx.convert_xumx(source, targets)
    raise ConversionError(f"nnabla weights convert to umx, xumx or d3net, not {family!r}.")


def _releases():
    from .nnabla_d3net import RELEASES as d3
    from .nnabla_umx import RELEASES as umx

    return tuple(umx) + tuple(d3)


def __getattr__(name):
    if name == "RELEASES":
        return _releases()
    raise AttributeError(name)


__all__ = ["SUFFIXES", "convert", "family_of", "find_target_files"]
