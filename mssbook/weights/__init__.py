"""Converters from the official weight formats to mssbook models, one small module per format.

==============  ===========================================  =============================
module          format                                       families
==============  ===========================================  =============================
openunmix       PyTorch state dict per target (``.pth``)     umx
nnabla          nnabla parameters (``.h5``)                  umx, xumx, d3net
asteroid        asteroid's PyTorch checkpoint                xumx
lightning       PyTorch Lightning ``.ckpt`` (ws-choi)        tfc_tdf_net (and the family)
keras           Keras 2 / Theano HDF5 (``.hdf5``)            wavenet
==============  ===========================================  =============================

Each module has ``convert(source, model=None, targets=None) -> SeparationModel`` (``source``: a
file, or a folder of per-target files), ``SUFFIXES`` and ``RELEASES`` (the official files it
reads, :class:`~mssbook.weights.common.Release`). :func:`convert` picks the module from the file;
:func:`mssbook.hub.load_pretrained` downloads a release and calls it.
"""

from __future__ import annotations

import importlib

from .common import ConversionError, Release

FORMATS = ("openunmix", "nnabla", "asteroid", "lightning", "keras")


def module(fmt: str):
    """The converter module of format ``fmt``."""
    if fmt not in FORMATS:
        raise ConversionError(f"unknown weight format {fmt!r}; known: {', '.join(FORMATS)}")
    return importlib.import_module(f"{__name__}.{fmt}")


__all__ = ["FORMATS", "module", "ConversionError", "Release"]
