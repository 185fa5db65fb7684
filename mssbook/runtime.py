"""Faster CPU inference for a model's network: ONNX export run by onnxruntime.

The spectrogram models (D3Net, Open-Unmix) spend almost all their separation time in one
network call per patch or segment, magnitude in → magnitude out. With ``runtime="onnx"`` that
call goes through onnxruntime instead of eager PyTorch; the STFT, patching, channel swap and
Wiener filter stay in torch, so only the network's arithmetic changes (float32 rounding: the
outputs agree with eager PyTorch to the last few bits, as two eager runs on other CPUs would).

    >>> stems = mssbook.separate(audio, sr, model=d3net, runtime="onnx")    # D3Net, UMX, X-UMX

:class:`OnnxRunner` exports a network with the TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``: it needs the ``onnx`` package, not ``onnxscript``) on
the first call for an input shape, and keeps one onnxruntime session per shape (and thread count)
for the next calls, so the patches of a song, and later songs of the same length, reuse it. The
export takes a few seconds (about 15 s for the paper D3Net) once per model instance; changing the
weights (training, ``load_state_dict``) makes the runner export again. Inference only: no
gradients flow through it, and the network must be in eval mode on the CPU.

This module imports torch and :mod:`mssbook.errors` only (the models use it).
"""

from __future__ import annotations

import io
import warnings
from typing import Sequence

import torch
from torch import nn

from .errors import MissingDependencyError

RUNTIMES = ("torch", "onnx")
ONNX_HINT = "install them with `pip install onnxruntime onnx` (or `pip install \"mssbook[onnx]\"`)"
OPSET = 17


def check_runtime(runtime: str) -> str:
    """``runtime`` if it is one of :data:`RUNTIMES`, else a ValueError listing them."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(map(repr, RUNTIMES))}")
    return runtime


def import_onnxruntime():
    """Import onnxruntime (and check that onnx, which the exporter needs, imports too)."""
    missing = []
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
        missing.append("onnxruntime")
    try:
        import onnx  # noqa: F401  (torch.onnx.export writes the model with it)
    except ImportError:
        missing.append("onnx")
    if missing:
        raise MissingDependencyError(
            f"runtime='onnx' needs the optional package(s) {' and '.join(missing)}, which could not be "
            f"imported; {ONNX_HINT}. runtime='torch' (the default) needs neither."
        )
    return onnxruntime


def _signature(module: nn.Module) -> tuple:
    """Identity and in-place version of every parameter and buffer: changes when the weights do."""
    return tuple((id(t), t._version) for t in [*module.parameters(), *module.buffers()])


class _Plain(nn.Module):
    """``network(x)`` with no other arguments (what the exporter traces)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class OnnxRunner:
    """Runs ``network(x)`` (one tensor in, one out) through onnxruntime, exporting on demand.

    Args:
        network: the module to run; read at every call, so the runner follows its weights.
        dynamic_axes: input axes whose size may change without a new export (e.g. ``(3,)`` for the
            frames of a network that takes any length); other axes key the session cache.
        max_sessions: sessions kept (least recently used dropped first).

    Not part of the model's state: copies and pickles of a runner start with an empty cache.
    """

    def __init__(self, network: nn.Module, dynamic_axes: Sequence[int] = (), max_sessions: int = 4) -> None:
        self.network = network
        self.dynamic_axes = tuple(int(a) for a in dynamic_axes)
        self.max_sessions = int(max_sessions)
        self.sessions: dict[tuple, object] = {}
        self.exports = 0  # how many times the network was exported (for tests and benchmarks)
        self._signature: tuple | None = None

    # copies (copy.deepcopy of the model, pickling) leave the sessions behind
    def __getstate__(self) -> dict:
        return {**self.__dict__, "sessions": {}, "_signature": None}

    def __deepcopy__(self, memo):
        import copy

        new = OnnxRunner.__new__(OnnxRunner)
        new.__dict__.update(self.__getstate__())
        new.network = copy.deepcopy(self.network, memo)
        return new

    def _key(self, x: torch.Tensor) -> tuple:
        shape = tuple(None if axis in self.dynamic_axes else size for axis, size in enumerate(x.shape))
        return shape, x.dtype, torch.get_num_threads()

    def session(self, x: torch.Tensor):
        """The onnxruntime session for inputs shaped like ``x`` (exported now if there is none)."""
        ort = import_onnxruntime()
        if self.network.training:
            raise ValueError("runtime='onnx' runs the network in eval mode only; call model.eval() first")
        if x.device.type != "cpu":
            raise ValueError(f"runtime='onnx' runs on the CPU; the input is on {x.device}. "
                             "Use runtime='torch' on a GPU (or device='cpu')")
        signature = _signature(self.network)
        if signature != self._signature:  # new weights: the exported graphs hold the old ones
            self.sessions.clear()
            self._signature = signature
        key = self._key(x)
        if key in self.sessions:
            self.sessions[key] = self.sessions.pop(key)  # most recently used last
            return self.sessions[key]
        buffer = io.BytesIO()
        axes = {"input": {a: f"axis{a}" for a in self.dynamic_axes}, "output": {a: f"axis{a}" for a in self.dynamic_axes}}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about the shape checks, exporter deprecations
            torch.onnx.export(_Plain(self.network).eval(), (x.detach(),), buffer, dynamo=False, opset_version=OPSET,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes=axes if self.dynamic_axes else None)
        self.exports += 1
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        while len(self.sessions) >= self.max_sessions:
            self.sessions.pop(next(iter(self.sessions)))
        self.sessions[key] = session
        return session

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        session = self.session(x)
        out = session.run(None, {"input": x.detach().contiguous().numpy()})[0]
        return torch.from_numpy(out)


def network_runner(model: nn.Module, name: str, runtime: str, network: nn.Module, **kwargs):
    """``network`` itself for ``runtime="torch"``, else the model's cached :class:`OnnxRunner` for it.

    The runners live in ``model._runtime_runners`` (a plain dict, not a submodule: nothing enters
    the state dict), one per ``name`` (the target).
    """
    if check_runtime(runtime) == "torch":
        return network
    import_onnxruntime()  # the clear error before any work
    runners = model.__dict__.setdefault("_runtime_runners", {})
    runner = runners.get(name)
    if runner is None or runner.network is not network:
        runner = runners[name] = OnnxRunner(network, **kwargs)
    return runner


__all__ = ["RUNTIMES", "OnnxRunner", "check_runtime", "import_onnxruntime", "network_runner"]
